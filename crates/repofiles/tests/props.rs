//! Property tests (proptest, in CI) mirroring the fuzz targets `codeowners` and `manifest_*`:
//! arbitrary bytes never panic; files generated from a model parse back to that model.
//! (The unit tests already feed arbitrary printable strings; these add raw bytes, invalid
//! UTF-8 and structured files whose meaning is known.)

use std::collections::BTreeMap;

use proptest::prelude::*;
use surveyor_repofiles::manifests::MANIFEST_FILES;
use surveyor_repofiles::{
    CodeOwners, Ecosystem, Flavor, Owner, Scope, parse_manifest, parse_manifest_bytes,
};

proptest! {
    #[test]
    fn arbitrary_bytes_never_panic(bytes in prop::collection::vec(any::<u8>(), 0..800)) {
        for path in MANIFEST_FILES.iter().chain(&["requirements-dev.txt"]) {
            match parse_manifest_bytes(path, &bytes) {
                Ok(m) => prop_assert!(m.dependencies.iter().all(|d| d.file == *path)),
                Err(e) => {
                    prop_assert_eq!(&e.file, path);
                    prop_assert!(!e.message.is_empty());
                }
            }
        }
        for flavor in [Flavor::GitHub, Flavor::GitLab] {
            let c = CodeOwners::parse_bytes(&bytes, flavor);
            let _ = c.repo_owners();
            prop_assert!(c.errors.iter().all(|e| !e.message.is_empty()));
            if std::str::from_utf8(&bytes).is_err() {
                prop_assert_eq!(c.errors.len(), 1);
                prop_assert!(c.repo_owners().is_empty());
            }
        }
    }
}

/// One GitHub rule: `*.<ext> <owner>`, so which rules match a file is known.
fn rule() -> impl Strategy<Value = (String, String)> {
    (
        prop::sample::select(vec!["rs", "go", "md", "js"]),
        "[a-z][a-z0-9]{0,6}",
    )
        .prop_map(|(ext, owner)| (ext.to_string(), owner))
}

proptest! {
    #[test]
    fn github_codeowners_last_matching_rule_wins(
        rules in prop::collection::vec(rule(), 1..12),
        dir in "[a-z]{1,5}(/[a-z]{1,5}){0,2}",
        noise in prop::collection::vec("(# [a-z ]{0,10}|)", 0..4),
    ) {
        let mut text = String::new();
        for (i, (ext, owner)) in rules.iter().enumerate() {
            if let Some(n) = noise.get(i) {
                text.push_str(n);
                text.push('\n');
            }
            text.push_str(&format!("*.{ext} @{owner}\n"));
        }
        let c = CodeOwners::parse(&text, Flavor::GitHub);
        prop_assert!(c.errors.is_empty(), "{:?}", c.errors);
        for ext in ["rs", "go", "md", "js"] {
            let path = format!("{dir}/file.{ext}");
            let expected: Vec<Owner> = rules
                .iter()
                .rev()
                .find(|(e, _)| e == ext)
                .map(|(_, o)| vec![Owner::User(o.clone())])
                .unwrap_or_default();
            prop_assert_eq!(c.owners_of(&path), expected, "{}\n{}", text, path);
        }
        prop_assert!(c.repo_owners().is_empty(), "no rule matches an extensionless root file");
    }

    #[test]
    fn gitlab_sections_each_contribute_their_last_match(
        sections in prop::collection::vec(prop::collection::vec(rule(), 1..4), 1..4),
    ) {
        let mut text = String::new();
        for (i, rules) in sections.iter().enumerate() {
            text.push_str(&format!("[Section{i}]\n"));
            for (ext, owner) in rules {
                text.push_str(&format!("*.{ext} @{owner}\n"));
            }
        }
        let c = CodeOwners::parse(&text, Flavor::GitLab);
        prop_assert!(c.errors.is_empty(), "{:?}", c.errors);
        for ext in ["rs", "go", "md", "js"] {
            let mut expected: Vec<Owner> = Vec::new();
            for rules in &sections {
                if let Some((_, o)) = rules.iter().rev().find(|(e, _)| e == ext) {
                    let o = Owner::User(o.clone());
                    if !expected.contains(&o) {
                        expected.push(o);
                    }
                }
            }
            prop_assert_eq!(c.owners_of(&format!("a/b.{ext}")), expected, "{}", text);
        }
    }
}

/// A package name valid in every ecosystem generated here.
fn package() -> impl Strategy<Value = String> {
    "[a-z][a-z0-9]{0,8}(-[a-z0-9]{1,5}){0,2}"
}

fn version() -> impl Strategy<Value = String> {
    (0u32..20, 0u32..50, 0u32..100).prop_map(|(a, b, c)| format!("{a}.{b}.{c}"))
}

/// Dependencies by name (unique), each with a version and whether it is for development.
fn deps() -> impl Strategy<Value = BTreeMap<String, (String, bool)>> {
    prop::collection::btree_map(package(), (version(), any::<bool>()), 0..8)
}

fn scope(dev: bool) -> Scope {
    if dev { Scope::Dev } else { Scope::Runtime }
}

/// (package, requirement, scope) as parsed, sorted.
fn parsed(path: &str, text: &str) -> Result<Vec<(String, String, Scope)>, TestCaseError> {
    let m = parse_manifest(path, text).map_err(|e| TestCaseError::fail(format!("{e}\n{text}")))?;
    let mut out: Vec<_> = m
        .dependencies
        .into_iter()
        .map(|d| (d.package, d.requirement, d.scope))
        .collect();
    out.sort();
    Ok(out)
}

/// What the parser should find for `deps`, each as `entry` makes it of (package, version,
/// dev), sorted.
fn expected_as(
    deps: &BTreeMap<String, (String, bool)>,
    entry: impl Fn(&str, &str, bool) -> (String, String, Scope),
) -> Vec<(String, String, Scope)> {
    let mut out: Vec<_> = deps.iter().map(|(p, (v, dev))| entry(p, v, *dev)).collect();
    out.sort();
    out
}

/// The packages as named, each with `requirement` of its version, in its scope.
fn expected(
    deps: &BTreeMap<String, (String, bool)>,
    requirement: impl Fn(&str) -> String,
) -> Vec<(String, String, Scope)> {
    expected_as(deps, |p, v, dev| {
        (p.to_string(), requirement(v), scope(dev))
    })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(96))]

    #[test]
    fn package_json_round_trips(name in package(), deps in deps(), private in any::<bool>()) {
        let section = |dev: bool| -> serde_json::Map<String, serde_json::Value> {
            deps.iter()
                .filter(|(_, (_, d))| *d == dev)
                .map(|(p, (v, _))| (p.clone(), serde_json::Value::String(format!("^{v}"))))
                .collect()
        };
        let text = serde_json::json!({
            "name": name, "private": private,
            "dependencies": section(false), "devDependencies": section(true),
        })
        .to_string();
        prop_assert_eq!(parsed("package.json", &text)?, expected(&deps, |v| format!("^{v}")));
        let m = parse_manifest("package.json", &text).map_err(|e| TestCaseError::fail(e.to_string()))?;
        prop_assert_eq!(m.produces.len(), usize::from(!private));
        prop_assert!(m.produces.iter().all(|p| p.ecosystem == Ecosystem::Npm && p.name == name));
    }

    #[test]
    fn cargo_toml_round_trips(name in package(), deps in deps()) {
        let mut text = format!("[package]\nname = \"{name}\"\nversion = \"0.1.0\"\n\n[dependencies]\n");
        for (p, (v, dev)) in &deps {
            if !dev {
                text.push_str(&format!("{p} = \"{v}\"\n"));
            }
        }
        text.push_str("\n[dev-dependencies]\n");
        for (p, (v, dev)) in &deps {
            if *dev {
                text.push_str(&format!("{p} = {{ version = \"{v}\", features = [] }}\n"));
            }
        }
        // Cargo reads a bare version as a caret requirement, and so does the parser.
        prop_assert_eq!(parsed("Cargo.toml", &text)?, expected(&deps, |v| format!("^{v}")));
    }

    #[test]
    fn go_mod_round_trips(deps in deps(), block in any::<bool>()) {
        let module = |p: &str| format!("example.com/{p}");
        let mut text = String::from("module example.com/me\n\ngo 1.22\n\n");
        if block {
            text.push_str("require (\n");
            for (p, (v, _)) in &deps {
                text.push_str(&format!("\t{} v{v} // a comment\n", module(p)));
            }
            text.push_str(")\n");
        } else {
            for (p, (v, _)) in &deps {
                text.push_str(&format!("require {} v{v}\n", module(p)));
            }
        }
        let want = expected_as(&deps, |p, v, _| (module(p), format!("v{v}"), Scope::Runtime));
        prop_assert_eq!(parsed("go.mod", &text)?, want);
    }

    #[test]
    fn requirements_txt_round_trips(deps in deps(), continued in any::<bool>()) {
        let mut text = String::from("# pinned\n--index-url https://pypi.example/simple\n");
        for (p, (v, _)) in &deps {
            if continued {
                text.push_str(&format!("{p}=={v} \\\n    --hash=sha256:00\n"));
            } else {
                text.push_str(&format!("{p}=={v}  # why\n"));
            }
        }
        let want = expected_as(&deps, |p, v, _| (p.to_string(), format!("=={v}"), Scope::Runtime));
        prop_assert_eq!(parsed("requirements.txt", &text)?, want);
    }

    #[test]
    fn pom_xml_round_trips(deps in deps(), via_property in any::<bool>()) {
        let mut text = String::from("<project><groupId>com.acme</groupId><artifactId>me</artifactId><properties><v>9.9.9</v></properties><dependencies>");
        for (p, (v, dev)) in &deps {
            let version = if via_property { "${v}".to_string() } else { v.clone() };
            let scope = if *dev { "<scope>test</scope>" } else { "" };
            text.push_str(&format!(
                "<dependency><groupId>org.{p}</groupId><artifactId>{p}</artifactId><version>{version}</version>{scope}</dependency>"
            ));
        }
        text.push_str("</dependencies></project>");
        let want = expected_as(&deps, |p, v, dev| {
            let v = if via_property { "9.9.9" } else { v };
            (format!("org.{p}:{p}"), v.to_string(), scope(dev))
        });
        prop_assert_eq!(parsed("pom.xml", &text)?, want);
    }
}
