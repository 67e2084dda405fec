//! From GitHub's shapes to catalog entities: repository -> Component, team -> Group,
//! member -> User, CODEOWNERS -> `spec.owner`, manifests -> package dependencies, and a
//! repository's own `catalog-info.yaml` laid over what was discovered.

use std::collections::BTreeMap;

use serde_json::{Map, Value, json};
use surveyor_model::Entity;
use surveyor_model::validate::is_valid_tag;
use surveyor_repofiles::{CodeOwners, Flavor, Owner};

use crate::config::Settings;
use crate::queries::{RepoNode, TeamNode, UserNode};

/// One naming rule for every source, so the same thing named in two tools is one entity.
pub use surveyor_model::names::entity_name;

/// Who CODEOWNERS says owns the repository as a whole, first owner first, as entity refs.
/// Teams of this org become groups, logins users, emails users when a member shows that email.
pub fn codeowners_refs(
    text: &str,
    org: &str,
    namespace: &str,
    login_by_email: &BTreeMap<String, String>,
) -> (Vec<String>, Vec<String>) {
    let parsed = CodeOwners::parse(text, Flavor::GitHub);
    let owners = parsed.repo_owners();
    let refs = owners
        .iter()
        .filter_map(|owner| match owner {
            Owner::Team(path) => {
                let (team_org, slug) = path.split_once('/')?;
                // A team of another org cannot be one of our Groups; keep it out of spec.owner.
                team_org
                    .eq_ignore_ascii_case(org)
                    .then(|| entity_name(slug))
                    .flatten()
                    .map(|n| format!("group:{namespace}/{n}"))
            }
            Owner::User(login) => entity_name(login).map(|n| format!("user:{namespace}/{n}")),
            Owner::Email(email) => login_by_email
                .get(&email.to_lowercase())
                .and_then(|l| entity_name(l))
                .map(|n| format!("user:{namespace}/{n}")),
            Owner::Role(_) => None,
        })
        .collect();
    (refs, owners.iter().map(ToString::to_string).collect())
}

pub use surveyor_repofiles::catalog::{Packages, overlay};

/// The manifests among the files the repository query read.
pub fn packages(repo: &RepoNode) -> Packages {
    surveyor_repofiles::catalog::packages(
        crate::queries::FILES
            .iter()
            .filter_map(|(_, path)| repo.file(path).map(|text| (*path, text))),
    )
}

/// The discovered Component for a repository (before any `catalog-info.yaml` is laid over it).
pub fn component(
    settings: &Settings,
    repo: &RepoNode,
    name: &str,
    owners: &(Vec<String>, Vec<String>),
    packages: &Packages,
) -> Entity {
    let mut e = Entity::new("Component", &settings.namespace, name);
    e.metadata.description = repo.description.clone().filter(|d| !d.trim().is_empty());
    if !name.eq_ignore_ascii_case(&repo.name) {
        e.metadata.title = Some(repo.name.clone());
    }
    let a = &mut e.metadata.annotations;
    a.insert(
        "github.com/project-slug".into(),
        repo.name_with_owner.clone(),
    );
    a.insert(
        "backstage.io/source-location".into(),
        format!("url:{}/tree/{}/", repo.url, branch(repo)),
    );
    if !owners.1.is_empty() {
        a.insert("surveyor.dev/codeowners".into(), owners.1.join(" "));
    }
    if !packages.errors.is_empty() {
        a.insert(
            "surveyor.dev/manifest-errors".into(),
            packages.errors.join("; "),
        );
    }
    if let Some(v) = &repo.visibility {
        e.metadata
            .labels
            .insert("github.com/visibility".into(), v.to_lowercase());
    }
    let topics = repo.topics();
    let mut tags: Vec<String> = topics.iter().filter(|t| is_valid_tag(t)).cloned().collect();
    if let Some(lang) = &repo.primary_language {
        let tag = lang.name.to_lowercase().replace([' ', '_'], "-");
        if is_valid_tag(&tag) && !tags.contains(&tag) {
            tags.push(tag);
        }
    }
    e.metadata.tags = tags;
    e.metadata.links = vec![json!({"url": repo.url, "title": "Repository", "icon": "github"})];
    let component_type = topics
        .iter()
        .find_map(|t| settings.topic_types.get(t))
        .unwrap_or(&settings.component_type);
    let spec = &mut e.spec;
    spec.insert("type".into(), json!(component_type));
    spec.insert(
        "lifecycle".into(),
        json!(if repo.is_archived {
            "deprecated"
        } else {
            settings.lifecycle.as_str()
        }),
    );
    if let Some(owner) = owners.0.first() {
        spec.insert("owner".into(), json!(owner));
    }
    if !packages.produces.is_empty() {
        spec.insert("packages".into(), json!(packages.produces));
    }
    if !packages.dependencies.is_empty() {
        spec.insert("packageDependencies".into(), json!(packages.dependencies));
    }
    e
}

fn branch(repo: &RepoNode) -> &str {
    repo.default_branch_ref
        .as_ref()
        .map_or("HEAD", |b| b.name.as_str())
}

/// A team as a Group.
pub fn group(
    settings: &Settings,
    org: &str,
    team: &TeamNode,
    children: &[String],
    members: &[String],
) -> Option<Entity> {
    let name = entity_name(&team.slug)?;
    let mut e = Entity::new("Group", &settings.namespace, &name);
    e.metadata.description = team.description.clone().filter(|d| !d.trim().is_empty());
    e.metadata.annotations.insert(
        "github.com/team-slug".into(),
        format!("{org}/{}", team.slug),
    );
    e.spec.insert("type".into(), json!("team"));
    e.spec
        .insert("profile".into(), json!({"displayName": team.name}));
    if let Some(parent) = team.parent_team.as_ref().and_then(|p| entity_name(&p.slug)) {
        e.spec.insert("parent".into(), json!(parent));
    }
    e.spec.insert("children".into(), json!(children));
    e.spec.insert("members".into(), json!(members));
    Some(e)
}

/// An org member as a User.
pub fn user(settings: &Settings, org: &str, user: &UserNode, teams: &[String]) -> Option<Entity> {
    let name = entity_name(&user.login)?;
    let mut e = Entity::new("User", &settings.namespace, &name);
    e.metadata
        .annotations
        .insert("github.com/user-login".into(), user.login.clone());
    e.metadata
        .annotations
        .insert("github.com/org".into(), org.to_string());
    let mut profile = Map::new();
    if let Some(n) = user.name.as_deref().filter(|n| !n.trim().is_empty()) {
        profile.insert("displayName".into(), json!(n));
    }
    if let Some(m) = user.email.as_deref().filter(|m| !m.trim().is_empty()) {
        profile.insert("email".into(), json!(m));
    }
    if !profile.is_empty() {
        e.spec.insert("profile".into(), Value::Object(profile));
    }
    e.spec.insert("memberOf".into(), json!(teams));
    Some(e)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_become_backstage_names() {
        assert_eq!(entity_name("Payments-API").as_deref(), Some("payments-api"));
        assert_eq!(entity_name(".github").as_deref(), Some("github"));
        assert_eq!(entity_name("a+b c").as_deref(), Some("a-b-c"));
        assert_eq!(entity_name("___"), None);
        let long = "x".repeat(70) + "-y";
        assert_eq!(entity_name(&long).map(|n| n.len()), Some(63));
        // Past 63 characters a name keeps its start and ends in a hash, as from every source.
        assert!(entity_name(&("a".repeat(62) + "-b")).is_some_and(|n| n.len() == 63));
    }

    #[test]
    fn codeowners_root_owner_becomes_refs() {
        let emails = BTreeMap::from([("ada@acme.example".to_string(), "ada".to_string())]);
        let text = "* @acme/Payments @bob ada@acme.example @other/team\n/docs/ @carol\n";
        let (refs, raw) = codeowners_refs(text, "acme", "default", &emails);
        assert_eq!(
            refs,
            [
                "group:default/payments",
                "user:default/bob",
                "user:default/ada"
            ]
        );
        assert_eq!(raw.len(), 4);
        let (refs, _) = codeowners_refs("/src/ @x\n", "acme", "default", &emails);
        assert!(refs.is_empty(), "no rule for the root: no owner");
    }
}
