//! From a repository's files to catalog fields, the same for every forge: packages a
//! repository produces and uses, its declared descriptor laid over what was discovered, and
//! the `dependsOn` links between repositories that use each other's packages.

use std::collections::{BTreeMap, BTreeSet};

use serde_json::{Map, Value};
use surveyor_model::Entity;

use crate::manifests::{Dependency, Ecosystem, Package, is_manifest, parse_manifest};

/// What a repository's manifests say.
#[derive(Debug, Default, Clone)]
pub struct Packages {
    pub produces: Vec<Package>,
    pub dependencies: Vec<Dependency>,
    /// Manifests that could not be read, with why.
    pub errors: Vec<String>,
}

/// Reads every manifest among `files` (`(path, text)`; other files are ignored).
pub fn packages<'a>(files: impl IntoIterator<Item = (&'a str, &'a str)>) -> Packages {
    let mut out = Packages::default();
    for (path, text) in files {
        if !is_manifest(path) {
            continue;
        }
        match parse_manifest(path, text) {
            Ok(m) => {
                out.produces.extend(m.produces);
                out.dependencies.extend(m.dependencies);
            }
            Err(e) => out.errors.push(e.to_string()),
        }
    }
    out.dependencies.sort();
    out.dependencies.dedup();
    out
}

/// `declared` over `discovered`: objects merge key by key, anything else is replaced. Kind and
/// name are the declaration's: a descriptor may call its repository's component what it likes.
pub fn overlay(discovered: &Entity, declared: &Entity) -> Result<Entity, String> {
    let mut base = discovered.to_value();
    merge_values(&mut base, declared.to_value());
    Entity::from_value(base).map_err(|e| e.to_string())
}

fn merge_values(base: &mut Value, top: Value) {
    match (base, top) {
        (Value::Object(b), Value::Object(t)) => merge_maps(b, t),
        (b, t) => *b = t,
    }
}

fn merge_maps(base: &mut Map<String, Value>, top: Map<String, Value>) {
    for (k, v) in top {
        match base.get_mut(&k) {
            Some(existing) => merge_values(existing, v),
            None => {
                base.insert(k, v);
            }
        }
    }
}

/// One repository for [`link_dependencies`]: its entity, its ref and its packages.
pub struct Linkable<'a> {
    pub entity: &'a mut Entity,
    pub entity_ref: &'a str,
    pub produces: &'a [Package],
    pub dependencies: &'a [(Ecosystem, String)],
}

/// Which repository (by its component's ref) produces each package.
pub type Producers = BTreeMap<(Ecosystem, String), String>;

/// The producers among `repos`.
pub fn producers<'r>(repos: impl IntoIterator<Item = (&'r str, &'r [Package])>) -> Producers {
    repos
        .into_iter()
        .flat_map(|(entity_ref, produces)| {
            produces
                .iter()
                .map(move |p| ((p.ecosystem, p.name.clone()), entity_ref.to_string()))
        })
        .collect()
}

/// Adds to each entity's `spec.dependsOn` the other repositories whose packages it uses.
pub fn link_dependencies(repos: &mut [Linkable<'_>]) {
    let producers = producers(repos.iter().map(|r| (r.entity_ref, r.produces)));
    for r in repos.iter_mut() {
        link_to(r, &producers);
    }
}

/// Adds to `repo`'s `spec.dependsOn` the repositories of `producers` whose packages it uses.
pub fn link_to(repo: &mut Linkable<'_>, producers: &Producers) {
    let depends: BTreeSet<String> = repo
        .dependencies
        .iter()
        .filter_map(|(eco, pkg)| producers.get(&(*eco, pkg.clone())))
        .filter(|target| target.as_str() != repo.entity_ref)
        .cloned()
        .collect();
    if depends.is_empty() {
        return;
    }
    let mut all: BTreeSet<String> = repo
        .entity
        .spec
        .get("dependsOn")
        .and_then(|v| serde_json::from_value::<Vec<String>>(v.clone()).ok())
        .unwrap_or_default()
        .into_iter()
        .collect();
    all.extend(depends);
    repo.entity
        .spec
        .insert("dependsOn".into(), serde_json::json!(all));
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn declared_fields_win_and_discovered_ones_stay() {
        let mut discovered = Entity::new("Component", "default", "repo");
        discovered
            .spec
            .insert("owner".into(), json!("group:default/a"));
        discovered
            .spec
            .insert("packageDependencies".into(), json!([{"package": "x"}]));
        discovered
            .metadata
            .annotations
            .insert("github.com/project-slug".into(), "acme/repo".into());
        let declared = Entity::from_value(json!({
            "apiVersion": "backstage.io/v1alpha1", "kind": "Component",
            "metadata": {"name": "payments", "annotations": {"pagerduty.com/service-id": "P1"}},
            "spec": {"owner": "group:default/b", "type": "service", "lifecycle": "production"}
        }))
        .unwrap();
        let merged = overlay(&discovered, &declared).unwrap();
        assert_eq!(merged.metadata.name, "payments");
        assert_eq!(merged.spec_str("owner"), Some("group:default/b"));
        assert!(merged.spec.contains_key("packageDependencies"));
        assert_eq!(merged.metadata.annotations.len(), 2);
    }

    #[test]
    fn manifests_give_packages_and_users_link_to_producers() {
        let p = packages([
            ("README.md", "# not a manifest"),
            (
                "package.json",
                r#"{"name": "@acme/ui", "dependencies": {"@acme/core": "^1"}}"#,
            ),
            ("go.mod", "this is not go.mod syntax {{{"),
        ]);
        assert_eq!(p.produces.len(), 1);
        assert_eq!(p.dependencies.len(), 1);
        assert_eq!(p.errors.len(), 1);

        let core = Package {
            ecosystem: Ecosystem::Npm,
            name: "@acme/core".into(),
        };
        let mut ui = Entity::new("Component", "default", "ui");
        ui.spec
            .insert("dependsOn".into(), json!(["component:default/declared"]));
        let mut core_entity = Entity::new("Component", "default", "core");
        let deps = [
            (Ecosystem::Npm, "@acme/core".to_string()),
            (Ecosystem::Npm, "react".to_string()),
        ];
        let produces = [core];
        link_dependencies(&mut [
            Linkable {
                entity: &mut ui,
                entity_ref: "component:default/ui",
                produces: &[],
                dependencies: &deps,
            },
            Linkable {
                entity: &mut core_entity,
                entity_ref: "component:default/core",
                produces: &produces,
                dependencies: &deps,
            },
        ]);
        assert_eq!(
            ui.spec["dependsOn"],
            json!(["component:default/core", "component:default/declared"])
        );
        assert!(
            !core_entity.spec.contains_key("dependsOn"),
            "a repository does not depend on itself"
        );
    }
}
