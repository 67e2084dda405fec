//! Python: `requirements*.txt` (PEP 508 lines, pip options skipped) and `pyproject.toml`
//! (`[project]` dependencies and optional groups, PEP 735 `[dependency-groups]`,
//! `[build-system].requires`, and Poetry's tables).

use std::str::FromStr;

use pep508_rs::{Requirement, VersionOrUrl};
use toml::{Table, Value};

use super::{Dependency, Ecosystem, Manifest, Package, Scope};

/// Optional-dependency and group names that mean "for developers, not at run time".
const DEV_GROUPS: &[&str] = &[
    "dev",
    "develop",
    "development",
    "test",
    "tests",
    "testing",
    "lint",
    "docs",
    "doc",
    "typing",
];

fn group_scope(name: &str) -> Scope {
    if DEV_GROUPS.contains(&name.to_ascii_lowercase().as_str()) {
        Scope::Dev
    } else {
        Scope::Runtime
    }
}

fn pep508(line: &str, scope: Scope, path: &str) -> Result<Dependency, String> {
    // pep508_rs 0.9.2 panics on a name or extra that ends in `.`, `-` or `_` and is followed by
    // more text (`l_ x`, `y[a- b`; cargo-fuzz found the second); check them first, and never let
    // a parser bug take the process down.
    let identifier = |s: &str| -> String {
        s.trim_start()
            .chars()
            .take_while(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_'))
            .collect()
    };
    let badly_bounded = |id: &str| id.ends_with(['.', '-', '_']) || id.starts_with(['.', '-', '_']);
    // pep508_rs 0.9.2 also slices marker text at character counts as if they were byte offsets
    // and panics on non-ASCII (cargo-fuzz found three such places). Names, versions and marker
    // names are ASCII by the standard; only exotic marker values or unencoded URLs are not.
    if let Some(c) = line.chars().find(|c| !c.is_ascii()) {
        return Err(format!(
            "{line:?}: {c:?} is not ASCII; requirements are read as ASCII (percent-encode URLs)"
        ));
    }
    let name = identifier(line);
    if badly_bounded(&name) {
        return Err(format!(
            "{line:?}: package name {name:?} must start and end with a letter or digit"
        ));
    }
    if let Some(extras) = line.trim_start()[name.len()..]
        .trim_start()
        .strip_prefix('[')
    {
        let extras = extras.split(']').next().unwrap_or_default();
        if let Some(extra) = extras.split(',').map(identifier).find(|e| badly_bounded(e)) {
            return Err(format!(
                "{line:?}: extra {extra:?} must start and end with a letter or digit"
            ));
        }
    }
    let parsed = std::panic::catch_unwind(|| Requirement::<pep508_rs::VerbatimUrl>::from_str(line))
        .map_err(|_| format!("{line:?}: the requirement parser failed on this line"))?;
    // Not `{e}`: pep508_rs 0.9.2's Display slices the line by a character index as if it were
    // a byte index, and panics on non-ASCII text before the error (found by cargo-fuzz).
    let req = parsed.map_err(|e| {
        format!(
            "{line:?}: {} (at character {})",
            e.message,
            e.start.saturating_add(1)
        )
    })?;
    let requirement = match &req.version_or_url {
        None => String::new(),
        Some(VersionOrUrl::VersionSpecifier(v)) => v.to_string(),
        Some(VersionOrUrl::Url(u)) => u.to_string(),
    };
    Ok(Dependency {
        ecosystem: Ecosystem::Pypi,
        package: req.name.to_string(),
        requirement,
        scope,
        file: path.to_string(),
    })
}

pub(super) fn parse_requirements(path: &str, text: &str) -> Result<Manifest, String> {
    let name = path.rsplit('/').next().unwrap_or(path).to_ascii_lowercase();
    let scope = if ["dev", "test", "lint", "doc", "ci"]
        .iter()
        .any(|k| name.contains(k))
    {
        Scope::Dev
    } else if name.contains("build") {
        Scope::Build
    } else {
        Scope::Runtime
    };
    let mut out = Manifest::default();
    // Backslash-newline continues a line.
    let joined = text.replace("\\\r\n", " ").replace("\\\n", " ");
    for (i, raw) in joined.lines().enumerate() {
        let mut line = raw.trim();
        if let Some(pos) = line.find(" #") {
            line = line[..pos].trim();
        }
        if line.is_empty() || line.starts_with('#') || line.starts_with('-') {
            // Comments, and pip options (-r other.txt, -e ., --index-url, ...).
            continue;
        }
        // Per-requirement options (--hash=...) follow the requirement.
        if let Some(pos) = line.find(" --") {
            line = line[..pos].trim();
        }
        // Bare URLs and local paths are not PEP 508 names; pip accepts them, we skip them.
        if line.starts_with('.')
            || line.starts_with('/')
            || line.contains("://") && !line.contains('@')
        {
            continue;
        }
        out.dependencies
            .push(pep508(line, scope, path).map_err(|e| format!("line {}: {e}", i + 1))?);
    }
    Ok(out)
}

pub(super) fn parse_pyproject(path: &str, text: &str) -> Result<Manifest, String> {
    let root: Table = text
        .parse()
        .map_err(|e: toml::de::Error| format!("invalid TOML: {}", e.message()))?;
    let mut out = Manifest::default();
    let list = |v: Option<&Value>, what: &str| -> Result<Vec<String>, String> {
        match v {
            None => Ok(Vec::new()),
            Some(Value::Array(items)) => items
                .iter()
                .map(|i| {
                    i.as_str()
                        .map(str::to_string)
                        .ok_or_else(|| format!("`{what}` must hold strings"))
                })
                .collect(),
            Some(_) => Err(format!("`{what}` must be an array")),
        }
    };

    if let Some(project) = table(root.get("project")) {
        out.produces.extend(package_named(project));
        for line in list(project.get("dependencies"), "project.dependencies")? {
            out.dependencies.push(pep508(&line, Scope::Runtime, path)?);
        }
        if let Some(groups) = table(project.get("optional-dependencies")) {
            for (group, deps) in groups {
                for line in list(
                    Some(deps),
                    &format!("project.optional-dependencies.{group}"),
                )? {
                    out.dependencies
                        .push(pep508(&line, group_scope(group), path)?);
                }
            }
        }
    }
    if let Some(groups) = table(root.get("dependency-groups")) {
        for (group, deps) in groups {
            let Some(items) = deps.as_array() else {
                continue;
            };
            // Entries may be `{include-group = "..."}` tables; only strings are requirements.
            for line in items.iter().filter_map(Value::as_str) {
                out.dependencies.push(
                    pep508(line, Scope::Dev, path)
                        .map_err(|e| format!("dependency-groups.{group}: {e}"))?,
                );
            }
        }
    }
    if let Some(build) = table(root.get("build-system")) {
        for line in list(build.get("requires"), "build-system.requires")? {
            out.dependencies.push(pep508(&line, Scope::Build, path)?);
        }
    }
    if let Some(poetry) = table(table(root.get("tool")).and_then(|t| t.get("poetry"))) {
        if out.produces.is_empty() {
            out.produces.extend(package_named(poetry));
        }
        poetry_deps(
            &mut out,
            table(poetry.get("dependencies")),
            Scope::Runtime,
            path,
        );
        poetry_deps(
            &mut out,
            table(poetry.get("dev-dependencies")),
            Scope::Dev,
            path,
        );
        if let Some(groups) = table(poetry.get("group")) {
            for (group, g) in groups {
                let deps = table(g.as_table().and_then(|t| t.get("dependencies")));
                let scope = if group == "main" {
                    Scope::Runtime
                } else {
                    Scope::Dev
                };
                poetry_deps(&mut out, deps, scope, path);
            }
        }
    }
    Ok(out)
}

/// The PyPI package a table's `name` names, unless it is blank.
fn package_named(t: &Table) -> Option<Package> {
    t.get("name")
        .and_then(Value::as_str)
        .filter(|n| !n.trim().is_empty())
        .map(|n| Package {
            ecosystem: Ecosystem::Pypi,
            name: n.to_string(),
        })
}

fn table(v: Option<&Value>) -> Option<&Table> {
    v.and_then(Value::as_table)
}

fn poetry_deps(out: &mut Manifest, deps: Option<&Table>, scope: Scope, path: &str) {
    for (name, spec) in deps.into_iter().flatten() {
        if name.eq_ignore_ascii_case("python") {
            continue;
        }
        let requirement = match spec {
            Value::String(s) => s.clone(),
            Value::Table(t) => t
                .get("version")
                .and_then(Value::as_str)
                .map(str::to_string)
                .or_else(|| {
                    t.get("git")
                        .and_then(Value::as_str)
                        .map(|g| format!("git+{g}"))
                })
                .or_else(|| {
                    t.get("path")
                        .and_then(Value::as_str)
                        .map(|p| format!("path:{p}"))
                })
                .unwrap_or_default(),
            _ => String::new(),
        };
        out.dependencies.push(Dependency {
            ecosystem: Ecosystem::Pypi,
            package: name.clone(),
            requirement,
            scope,
            file: path.to_string(),
        });
    }
}
