//! From GitLab's shapes to catalog entities: project -> Component, group -> Group, member ->
//! User, CODEOWNERS (GitLab dialect) -> `spec.owner`, manifests -> package dependencies, and a
//! project's own `catalog-info.yaml` laid over what was discovered.

use std::collections::BTreeMap;

use serde_json::json;
use surveyor_model::Entity;
use surveyor_repofiles::forge::{Files, Repo, Team};

use crate::config::Settings;
use crate::queries::{RestGroup, RestProject, UserNode, access_level_name};

/// One naming rule for every source, so the same thing named in two tools is one entity.
pub use surveyor_model::names::entity_name;

/// A group's entity name: the crawl root by its own path (`acme`), a subgroup by its path below
/// the root with `-` for `/` (`payments`, `payments-ledger`). Subgroup paths are unique only
/// among siblings, so the path below the root is what keeps two `backend`s apart; it is
/// computable from a CODEOWNERS group path alone. `None` for groups outside the root.
pub fn group_name(root: &str, full_path: &str) -> Option<String> {
    if full_path.eq_ignore_ascii_case(root) {
        let leaf = root.rsplit('/').next().unwrap_or(root);
        return entity_name(leaf);
    }
    let below = strip_prefix_ci(full_path, root)?.strip_prefix('/')?;
    entity_name(&below.replace('/', "-"))
}

fn strip_prefix_ci<'a>(s: &'a str, prefix: &str) -> Option<&'a str> {
    let head = s.get(..prefix.len())?;
    head.eq_ignore_ascii_case(prefix)
        .then(|| &s[prefix.len()..])
}

pub use surveyor_repofiles::catalog::Packages;

/// The manifests among the files the GraphQL batch read.
pub fn packages(files: &Files) -> Packages {
    files.packages(crate::queries::FILES.iter().copied())
}

/// The discovered Component for a project (before any `catalog-info.yaml` is laid over it).
pub fn component(
    settings: &Settings,
    project: &RestProject,
    name: &str,
    language: Option<&str>,
    owners: &(Vec<String>, Vec<String>),
    packages: &Packages,
) -> Entity {
    let topics = project.topics();
    let branch = project.default_branch.as_deref().unwrap_or("HEAD");
    let facts = Repo {
        forge: "gitlab.com",
        icon: "gitlab",
        name: &project.name,
        slug: &project.path_with_namespace,
        description: project.description.as_deref(),
        url: &project.web_url,
        tree: format!("{}/-/tree/{branch}", project.web_url),
        visibility: project.visibility.as_deref(),
        topics: &topics,
        tags: topics.iter().map(|t| t.replace([' ', '_'], "-")).collect(),
        language,
        archived: project.archived,
    };
    let mut e = settings.mapping.component(&facts, name, owners, packages);
    e.metadata
        .annotations
        .insert("gitlab.com/project-id".into(), project.id.to_string());
    e
}

/// A group as a Group: the root is the `organization`, subgroups are `team`s.
pub fn group(
    settings: &Settings,
    root: &str,
    g: &RestGroup,
    parent: Option<&str>,
    children: &[String],
    members: &[String],
) -> Option<Entity> {
    let name = group_name(root, &g.full_path)?;
    let is_root = g.full_path.eq_ignore_ascii_case(root);
    let team = Team {
        kind: if is_root { "organization" } else { "team" },
        display_name: &g.name,
        description: g.description.as_deref(),
        parent,
        children,
        members,
    };
    let mut e = settings.mapping.group(&name, &team);
    e.metadata
        .annotations
        .insert("gitlab.com/group-path".into(), g.full_path.clone());
    if let Some(url) = &g.web_url {
        e.metadata.links = vec![json!({"url": url, "title": "Group", "icon": "gitlab"})];
    }
    Some(e)
}

/// A member as a User; `access` is each group's full path with the member's access there.
pub fn user(
    settings: &Settings,
    root: &str,
    u: &UserNode,
    groups: &[String],
    access: &BTreeMap<String, u64>,
) -> Option<Entity> {
    let person = (u.name.as_deref(), u.public_email.as_deref());
    let mut e = settings.mapping.user(&u.username, person, groups)?;
    let a = &mut e.metadata.annotations;
    a.insert("gitlab.com/username".into(), u.username.clone());
    a.insert("gitlab.com/group".into(), root.to_string());
    if !access.is_empty() {
        let levels: Vec<String> = access
            .iter()
            .map(|(path, level)| format!("{path}={}", access_level_name(*level)))
            .collect();
        a.insert("gitlab.com/access-levels".into(), levels.join(" "));
    }
    if let Some(state) = u.state.as_deref().filter(|s| *s != "active") {
        a.insert("gitlab.com/user-state".into(), state.to_string());
    }
    Some(e)
}

#[cfg(test)]
mod tests {
    use super::*;
    use surveyor_repofiles::Flavor;
    use surveyor_repofiles::forge;

    fn settings() -> Settings {
        let dir = std::env::temp_dir();
        let config: crate::GitlabConfig =
            toml::from_str("groups = [\"acme\"]\ntoken = \"t\"").unwrap();
        config.settings("gl", &dir).unwrap()
    }

    #[test]
    fn names_become_backstage_names() {
        assert_eq!(entity_name("Payments-API").as_deref(), Some("payments-api"));
        assert_eq!(entity_name("_private").as_deref(), Some("private"));
        assert_eq!(entity_name("___"), None);
        assert_eq!(group_name("acme", "acme").as_deref(), Some("acme"));
        assert_eq!(
            group_name("acme", "ACME/Payments").as_deref(),
            Some("payments")
        );
        assert_eq!(
            group_name("acme", "acme/payments/ledger").as_deref(),
            Some("payments-ledger")
        );
        assert_eq!(
            group_name("acme/platform", "acme/platform").as_deref(),
            Some("platform")
        );
        assert_eq!(
            group_name("acme/platform", "acme/platform/ci").as_deref(),
            Some("ci")
        );
        assert_eq!(group_name("acme", "acmecorp/x"), None);
        assert_eq!(group_name("acme", "other/payments"), None);
    }

    /// Who a CODEOWNERS of a project under `acme` says owns it, as the crawl reads it.
    fn owners(
        text: &str,
        namespace: &str,
        emails: &BTreeMap<String, String>,
    ) -> (Vec<String>, Vec<String>) {
        let team = |path: &str| group_name("acme", path);
        forge::codeowners_refs(text, Flavor::GitLab, namespace, emails, team, Some("acme"))
    }

    #[test]
    fn codeowners_sections_decide_the_owner() {
        let emails = BTreeMap::from([("ada@acme.example".to_string(), "ada".to_string())]);
        // Each section's last matching rule contributes; the first section's owner comes first.
        let text = "\
# default section: the root group
* @acme

[Owners] @acme/payments/ledger
*
/docs/ @bob

^[Optional reviewers]
* @@maintainer ada@acme.example @other/team

[Frontend]
/web/ @carol
";
        let (refs, raw) = owners(text, "default", &emails);
        assert_eq!(
            refs,
            [
                "group:default/acme",
                "group:default/payments-ledger",
                "user:default/ada"
            ]
        );
        assert_eq!(
            raw,
            [
                "@acme",
                "@acme/payments/ledger",
                "@@maintainer",
                "ada@acme.example",
                "@other/team"
            ]
        );
        let (refs, _) = owners("[Docs]\n/docs/ @x\n", "default", &emails);
        assert!(refs.is_empty(), "no rule for the root: no owner");
        let (refs, _) = owners(
            "[Owners]\n* @acme/search\n*.md @docs-team\n",
            "team",
            &emails,
        );
        assert_eq!(refs, ["group:team/search"]);
    }

    #[test]
    fn a_project_becomes_a_component() {
        let project: RestProject = serde_json::from_value(json!({
            "id": 42, "name": "Payments API", "path": "payments-api",
            "path_with_namespace": "acme/payments/payments-api",
            "description": "Takes money", "web_url": "https://gitlab.com/acme/payments/payments-api",
            "default_branch": "main", "topics": ["Library", "payments"], "archived": true,
            "visibility": "internal", "namespace": {"id": 7, "full_path": "acme/payments"}
        }))
        .unwrap();
        let owners = (
            vec!["group:default/payments".to_string()],
            vec!["@acme/payments".into()],
        );
        let e = component(
            &settings(),
            &project,
            "payments-api",
            Some("Rust"),
            &owners,
            &Packages::default(),
        );
        assert_eq!(e.metadata.title.as_deref(), Some("Payments API"));
        assert_eq!(e.spec_str("type"), Some("library"));
        assert_eq!(e.spec_str("lifecycle"), Some("deprecated"));
        assert_eq!(e.spec_str("owner"), Some("group:default/payments"));
        assert_eq!(e.metadata.tags, ["library", "payments", "rust"]);
        assert_eq!(
            e.metadata.annotations["backstage.io/source-location"],
            "url:https://gitlab.com/acme/payments/payments-api/-/tree/main/"
        );
        assert_eq!(e.metadata.annotations["gitlab.com/project-id"], "42");
        assert_eq!(e.metadata.labels["gitlab.com/visibility"], "internal");
    }

    #[test]
    fn groups_and_users() {
        let s = settings();
        let g: RestGroup = serde_json::from_value(json!({
            "id": 9, "name": "Ledger", "full_path": "acme/payments/ledger",
            "parent_id": 8, "description": ""
        }))
        .unwrap();
        let e = group(&s, "acme", &g, Some("payments"), &[], &["ada".into()]).unwrap();
        assert_eq!(e.metadata.name, "payments-ledger");
        assert_eq!(e.spec_str("type"), Some("team"));
        assert_eq!(e.spec_str("parent"), Some("payments"));
        assert!(e.metadata.description.is_none());

        let u = UserNode {
            id: "gid://gitlab/User/1".into(),
            username: "Ada.L".into(),
            name: Some("Ada".into()),
            public_email: Some(String::new()),
            state: Some("blocked".into()),
        };
        let access = BTreeMap::from([("acme/payments".to_string(), 40)]);
        let e = user(&s, "acme", &u, &["payments".into()], &access).unwrap();
        assert_eq!(e.metadata.name, "ada.l");
        assert_eq!(
            e.metadata.annotations["gitlab.com/access-levels"],
            "acme/payments=maintainer"
        );
        assert_eq!(e.metadata.annotations["gitlab.com/user-state"], "blocked");
        assert_eq!(
            e.spec["profile"],
            json!({"displayName": "Ada"}),
            "no empty email"
        );
    }
}
