//! The tech stack from what the manifests and the primary language say (`typescript/react`,
//! `java/spring-boot`, `rust`), and the runtime from Kubernetes images where it is known.

use std::collections::BTreeMap;

use serde_json::Value;

use crate::evidence::{Claim, Evidence, supplier};

/// Tags that name a language (GitHub's and GitLab's primary language arrive as one).
const LANGUAGES: &[&str] = &[
    "rust",
    "go",
    "java",
    "kotlin",
    "scala",
    "typescript",
    "javascript",
    "python",
    "ruby",
    "php",
    "csharp",
    "c-sharp",
    "elixir",
    "swift",
];

/// Frameworks by ecosystem: a package (or a group prefix ending in `:`) and the name shown.
const FRAMEWORKS: &[(&str, &str, &str)] = &[
    ("npm", "react", "react"),
    ("npm", "next", "next"),
    ("npm", "vue", "vue"),
    ("npm", "@angular/core", "angular"),
    ("npm", "svelte", "svelte"),
    ("npm", "express", "express"),
    ("npm", "@nestjs/core", "nestjs"),
    ("npm", "fastify", "fastify"),
    ("maven", "org.springframework.boot:", "spring-boot"),
    ("maven", "io.quarkus:", "quarkus"),
    ("maven", "io.micronaut:", "micronaut"),
    ("pypi", "django", "django"),
    ("pypi", "flask", "flask"),
    ("pypi", "fastapi", "fastapi"),
    ("cargo", "axum", "axum"),
    ("cargo", "actix-web", "actix-web"),
    ("cargo", "rocket", "rocket"),
    ("go", "github.com/gin-gonic/gin", "gin"),
    ("go", "github.com/labstack/echo/v4", "echo"),
    ("go", "github.com/gofiber/fiber/v2", "fiber"),
];

/// The languages an ecosystem's manifests are written for, the first the default.
fn family(ecosystem: &str) -> &'static [&'static str] {
    match ecosystem {
        "npm" => &["javascript", "typescript"],
        "maven" => &["java", "kotlin", "scala"],
        "pypi" => &["python"],
        "cargo" => &["rust"],
        "go" => &["go"],
        _ => &[],
    }
}

/// Each stack with its evidence: a language, and `language/framework` for each framework.
pub(crate) fn stacks(body: &Value, claims: &[Claim]) -> Vec<(String, Vec<Evidence>)> {
    let tags_by = supplier(claims, "/metadata/tags").map_or("", |c| c.source.as_str());
    let deps_by = supplier(claims, "/spec/packageDependencies").map_or("", |c| c.source.as_str());
    // language -> evidence
    let mut languages: BTreeMap<String, Vec<Evidence>> = BTreeMap::new();
    for tag in body["metadata"]["tags"].as_array().into_iter().flatten() {
        if let Some(t) = tag.as_str().filter(|t| LANGUAGES.contains(t)) {
            languages
                .entry(t.to_string())
                .or_default()
                .push(Evidence::new(tags_by, &format!("language {t}")));
        }
    }
    let deps: Vec<&Value> = body["spec"]["packageDependencies"]
        .as_array()
        .into_iter()
        .flatten()
        .collect();
    let field = |d: &Value, k: &str| d[k].as_str().unwrap_or_default().to_string();
    // ecosystem -> (frameworks, manifest evidence)
    let mut ecosystems: BTreeMap<String, (BTreeMap<&str, Evidence>, Vec<Evidence>)> =
        BTreeMap::new();
    for d in &deps {
        let (eco, package, file) = (field(d, "ecosystem"), field(d, "package"), field(d, "file"));
        if family(&eco).is_empty() {
            continue;
        }
        let entry = ecosystems.entry(eco.clone()).or_default();
        if entry.1.is_empty() {
            entry
                .1
                .push(Evidence::new(deps_by, &format!("manifest {file}")));
        }
        if eco == "npm" && package == "typescript" {
            languages
                .entry("typescript".into())
                .or_default()
                .push(Evidence::new(
                    deps_by,
                    &format!("{file} depends on typescript"),
                ));
        }
        if field(d, "scope") == "dev" {
            continue;
        }
        for (e, pattern, name) in FRAMEWORKS {
            let hit = if pattern.ends_with(':') {
                package.starts_with(pattern)
            } else {
                package == *pattern
            };
            if *e == eco && hit {
                let req = field(d, "requirement");
                entry.0.entry(name).or_insert_with(|| {
                    Evidence::new(deps_by, &format!("{file} depends on {package} {req}"))
                });
            }
        }
    }
    let mut out: BTreeMap<String, Vec<Evidence>> = BTreeMap::new();
    for (eco, (frameworks, manifest)) in ecosystems {
        let fam = family(&eco);
        let language = fam
            .iter()
            .find(|l| languages.contains_key(**l))
            .copied()
            .unwrap_or(fam[0]);
        let mut base = languages.remove(language).unwrap_or_default();
        base.extend(manifest);
        if frameworks.is_empty() {
            out.entry(language.to_string()).or_default().extend(base);
            continue;
        }
        for (name, why) in frameworks {
            let mut evidence = base.clone();
            evidence.push(why);
            out.insert(format!("{language}/{name}"), evidence);
        }
    }
    // Languages no manifest explains (a Go repository whose go.mod was not read).
    for (language, evidence) in languages {
        out.entry(language).or_default().extend(evidence);
    }
    out.into_iter().collect()
}

/// Images whose repository names a runtime: (repository's last segment, runtime).
const RUNTIMES: &[(&str, &str)] = &[
    ("node", "node"),
    ("python", "python"),
    ("openjdk", "jvm"),
    ("eclipse-temurin", "jvm"),
    ("amazoncorretto", "jvm"),
    ("golang", "go"),
    ("ruby", "ruby"),
    ("php", "php"),
    ("aspnet", "dotnet"),
    ("runtime", "dotnet"),
    ("nginx", "nginx"),
    ("deno", "deno"),
    ("bun", "bun"),
];

/// The runtimes the workloads' images name, with the workload and image for each.
pub(crate) fn runtimes<'a>(
    workloads: impl Iterator<Item = (&'a String, &'a Vec<String>, &'a String)>,
) -> Vec<(String, Vec<Evidence>)> {
    let mut out: BTreeMap<String, Vec<Evidence>> = BTreeMap::new();
    for (title, images, source) in workloads {
        for image in images {
            let repository = image.split(['@']).next().unwrap_or(image);
            let repository = match repository.rsplit_once(':') {
                Some((r, tag)) if !tag.contains('/') => r,
                _ => repository,
            };
            let last = repository.rsplit('/').next().unwrap_or(repository);
            // `runtime` is only .NET's under mcr.microsoft.com/dotnet.
            let dotnet = repository.contains("dotnet/");
            if let Some((_, runtime)) = RUNTIMES
                .iter()
                .find(|(name, _)| *name == last && (*name != "runtime" || dotnet))
            {
                out.entry(runtime.to_string())
                    .or_default()
                    .push(Evidence::new(source, &format!("{title} runs {image}")));
            }
        }
    }
    out.into_iter().collect()
}
