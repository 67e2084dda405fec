//! The names an operator writes once so that one thing is one entity whatever each simulated
//! tool calls it: Jira's project keys as other names of the systems, GitLab's subgroup paths
//! (`payments-catalog`) as other names of the teams.

use crate::{JiraSite, Org};

/// The other names of an org's systems and teams.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct OtherNames {
    /// (system name, the lower-cased Jira project key that names it too), sorted.
    pub systems: Vec<(String, String)>,
    /// (team slug, the name GitLab gives its subgroup), for nested teams, sorted.
    pub gitlab_groups: Vec<(String, String)>,
}

/// The other names of `org`'s systems (from `site`'s projects) and nested teams.
pub fn other_names(org: &Org, site: &JiraSite) -> OtherNames {
    let mut systems: Vec<(String, String)> = site
        .projects
        .iter()
        .map(|p| (format!("{}-system", p.area), p.key.to_ascii_lowercase()))
        .collect();
    systems.sort();
    systems.dedup();
    let mut gitlab_groups = Vec::new();
    for team in &org.teams {
        let Some(mut parent) = team.parent else {
            continue;
        };
        let mut path = vec![team.slug.clone()];
        for _ in 0..org.teams.len() {
            let Some(p) = org.teams.get(parent) else {
                break;
            };
            path.insert(0, p.slug.clone());
            match p.parent {
                Some(next) => parent = next,
                None => break,
            }
        }
        // As GitLab's connector names a subgroup: its path as an entity name (a long one cut
        // and ended with a hash, like every source's).
        if let Some(name) = surveyor_model::names::entity_name(&path.join("-")) {
            gitlab_groups.push((team.slug.clone(), name));
        }
    }
    gitlab_groups.sort();
    OtherNames {
        systems,
        gitlab_groups,
    }
}

impl OtherNames {
    /// As `surveyor.toml` says it: an `[[identity]]` rule and a `[[groups]]` table each.
    pub fn to_toml(&self) -> String {
        let systems: Vec<String> = self
            .systems
            .iter()
            .map(|(system, key)| format!("\"{system}\" = [\"{key}\"]"))
            .collect();
        let mut out = format!(
            "\n# One thing, one entity: the names other tools give the same systems and teams.\n\
             [[identity]]\nkinds = [\"system\"]\naliases = {{ {} }}\n",
            systems.join(", ")
        );
        for (name, gitlab) in &self.gitlab_groups {
            out.push_str(&format!(
                "\n[[groups]]\nname = \"{name}\"\ngitlab = \"{gitlab}\"\n"
            ));
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::OrgSpec;

    #[test]
    fn nested_teams_get_their_gitlab_path_and_systems_their_project_keys() {
        let org = Org::generate(&OrgSpec::small());
        let site = JiraSite::from_org(&org);
        let names = other_names(&org, &site);
        let nested = org.teams.iter().filter(|t| t.parent.is_some()).count();
        assert_eq!(names.gitlab_groups.len(), nested);
        for (slug, path) in &names.gitlab_groups {
            let team = org.teams.iter().find(|t| &t.slug == slug).expect("team");
            let parent = &org.teams[team.parent.expect("nested")].slug;
            assert!(path.ends_with(&format!("{parent}-{slug}")), "{path}");
        }
        assert_eq!(names.systems.len(), site.projects.len());
        let toml = names.to_toml();
        assert!(
            toml.contains("[[identity]]") && toml.contains("[[groups]]"),
            "{toml}"
        );
    }
}
