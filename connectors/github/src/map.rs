//! From GitHub's shapes to catalog entities: repository -> Component, team -> Group,
//! member -> User, CODEOWNERS -> `spec.owner`, manifests -> package dependencies, and a
//! repository's own `catalog-info.yaml` laid over what was discovered.

use surveyor_model::Entity;
use surveyor_repofiles::forge::{Files, Repo, Team};

use crate::config::Settings;
use crate::queries::{RepoNode, TeamNode, UserNode};

/// One naming rule for every source, so the same thing named in two tools is one entity.
pub use surveyor_model::names::entity_name;

/// The Group a CODEOWNERS team (`@org/slug`) is: teams of this org only, by slug; a team of
/// another org cannot be one of our Groups, and stays out of `spec.owner`.
pub fn org_team(org: &str) -> impl Fn(&str) -> Option<String> + '_ {
    move |path: &str| {
        let (team_org, slug) = path.split_once('/')?;
        team_org
            .eq_ignore_ascii_case(org)
            .then(|| entity_name(slug))
            .flatten()
    }
}

pub use surveyor_repofiles::catalog::Packages;

/// The manifests among the files the repository query read.
pub fn packages(files: &Files) -> Packages {
    files.packages(crate::queries::FILES.iter().map(|(_, path)| *path))
}

/// The discovered Component for a repository (before any `catalog-info.yaml` is laid over it).
pub fn component(
    settings: &Settings,
    repo: &RepoNode,
    name: &str,
    owners: &(Vec<String>, Vec<String>),
    packages: &Packages,
) -> Entity {
    let topics = repo.topics();
    let facts = Repo {
        forge: "github.com",
        icon: "github",
        name: &repo.name,
        slug: &repo.name_with_owner,
        description: repo.description.as_deref(),
        url: &repo.url,
        tree: format!("{}/tree/{}", repo.url, branch(repo)),
        visibility: repo.visibility.as_deref(),
        topics: &topics,
        tags: topics.clone(),
        language: repo.primary_language.as_ref().map(|l| l.name.as_str()),
        archived: repo.is_archived,
    };
    settings.mapping.component(&facts, name, owners, packages)
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
    let parent = team.parent_team.as_ref().and_then(|p| entity_name(&p.slug));
    let mut e = settings.mapping.group(
        &name,
        &Team {
            kind: "team",
            display_name: &team.name,
            description: team.description.as_deref(),
            parent: parent.as_deref(),
            children,
            members,
        },
    );
    e.metadata.annotations.insert(
        "github.com/team-slug".into(),
        format!("{org}/{}", team.slug),
    );
    Some(e)
}

/// An org member as a User.
pub fn user(settings: &Settings, org: &str, user: &UserNode, teams: &[String]) -> Option<Entity> {
    let person = (user.name.as_deref(), user.email.as_deref());
    let mut e = settings.mapping.user(&user.login, person, teams)?;
    let a = &mut e.metadata.annotations;
    a.insert("github.com/user-login".into(), user.login.clone());
    a.insert("github.com/org".into(), org.to_string());
    Some(e)
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use surveyor_repofiles::Flavor;
    use surveyor_repofiles::forge;

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

    /// CODEOWNERS refs as the crawl reads them: teams of this org, logins, members' emails.
    fn codeowners_refs(
        text: &str,
        org: &str,
        namespace: &str,
        login_by_email: &BTreeMap<String, String>,
    ) -> (Vec<String>, Vec<String>) {
        let team = org_team(org);
        forge::codeowners_refs(text, Flavor::GitHub, namespace, login_by_email, team, None)
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
