//! Faults planted on purpose so the audits can be measured ([`crate::truth`]): an org only has
//! them when asked ([`Org::plant_audit_faults`], then [`Org::plant_history`] between syncs).

use std::collections::{BTreeMap, BTreeSet};

use serde::Serialize;

use crate::org::Org;

/// What was planted, for the fakes that render it (PagerDuty, Kubernetes) and for reports.
/// Empty unless [`Org::plant_audit_faults`] ran; the generator plants nothing.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Plants {
    /// Teams whose members were all taken away (teams without sub-teams).
    pub emptied_teams: BTreeSet<usize>,
    /// Repository -> the team its PagerDuty service names, which is not its owner team.
    pub pagerduty_team: BTreeMap<usize, usize>,
    /// Repository -> the `owner` label of its workload: a team that does not exist.
    pub workload_owner: BTreeMap<usize, String>,
    /// Repository -> the person its descriptor names as owner (a member of its owner team whom
    /// Jira does not show as a lead).
    pub person_owner: BTreeMap<usize, usize>,
    /// Repository -> the name of a second component its descriptor declares, which nothing
    /// discovers.
    pub declared_extra: BTreeMap<usize, String>,
    /// Repositories archived while their PagerDuty service stays enabled.
    pub archived: BTreeSet<usize>,
    /// From [`Org::plant_history`]: people who left the org.
    pub departed: BTreeSet<usize>,
    /// From [`Org::plant_history`]: (repository, its Jira lead, from team, to team).
    pub moved: Vec<(usize, usize, usize, usize)>,
}

/// The next live team after `from` (cyclically) that is not `from` and not in `skip`.
fn next_team(org: &Org, from: usize, skip: &BTreeSet<usize>) -> Option<usize> {
    let n = org.teams.len();
    (1..n)
        .map(|k| (from + k) % n)
        .find(|t| org.teams[*t].active && !skip.contains(t))
}

impl Org {
    /// Plants what the audits look for and a quiet org lacks, deterministically and in a small
    /// share: teams without members, PagerDuty services that name another team than the code
    /// owners, workloads labelled with a team that does not exist, descriptors owned by a person
    /// or declaring a component nothing discovers, and archived repositories whose PagerDuty
    /// service is still enabled. Returns what it did, one line each. Call it before the fakes
    /// start (the Jira site is made from the org as it is then).
    pub fn plant_audit_faults(&mut self) -> Vec<String> {
        let mut what = Vec::new();
        let parents: BTreeSet<usize> = self.teams.iter().filter_map(|t| t.parent).collect();
        let leaf = |i: usize| self.teams[i].active && !parents.contains(&i);
        let mut emptied: BTreeSet<usize> = (0..self.teams.len())
            .filter(|i| i % 10 == 5 && leaf(*i))
            .collect();
        if emptied.is_empty()
            && let Some(last) = (0..self.teams.len()).rev().find(|i| leaf(*i))
        {
            emptied.insert(last);
        }
        for t in &emptied {
            self.teams[*t].members.clear();
            what.push(format!("team {} has no members", self.teams[*t].slug));
        }
        self.plants.emptied_teams = emptied.clone();

        let live: Vec<usize> = (0..self.repos.len())
            .filter(|i| self.repos[*i].active)
            .collect();
        for &i in &live {
            let owner = self.repos[i].owner_team;
            if i % 12 == 2
                && crate::pagerduty::has_service(i)
                && let Some(other) = next_team(self, owner, &emptied)
            {
                self.plants.pagerduty_team.insert(i, other);
                what.push(format!(
                    "PagerDuty service of {} names team {}, CODEOWNERS {}",
                    self.repos[i].name, self.teams[other].slug, self.teams[owner].slug
                ));
            }
            if i % 16 == 5 && self.repos[i].deployed {
                let label = format!("{}-legacy", self.teams[owner].slug);
                what.push(format!(
                    "workload of {} labelled owner {label}, a team that does not exist",
                    self.repos[i].name
                ));
                self.plants.workload_owner.insert(i, label);
            }
        }

        // A person Jira shows (a lead) would stay catalogued after leaving: owners are others.
        let site = crate::jira::JiraSite::from_org(self);
        let mut leads: BTreeSet<usize> = site.projects.iter().filter_map(|p| p.lead).collect();
        leads.extend(site.component_leads.values().flatten().copied());
        drop(site);
        let declared: Vec<usize> = live
            .iter()
            .copied()
            .filter(|i| self.repos[*i].files.contains_key("catalog-info.yaml"))
            .collect();
        for (k, &i) in declared.iter().enumerate() {
            let team = self.repos[i].owner_team;
            let slug = self.teams[team].slug.clone();
            let Some(text) = self.repos[i].files.get("catalog-info.yaml").cloned() else {
                continue;
            };
            if k % 3 == 0 {
                let name = format!("{}-client", self.repos[i].name);
                let extra = format!(
                    "---\napiVersion: backstage.io/v1alpha1\nkind: Component\nmetadata:\n  name: {name}\n  description: The client library of {}, declared but never published\nspec:\n  type: library\n  lifecycle: production\n  owner: group:default/{slug}\n  system: {}\n",
                    self.repos[i].name, self.repos[i].system
                );
                self.repos[i]
                    .files
                    .insert("catalog-info.yaml".into(), text + &extra);
                what.push(format!(
                    "descriptor of {} declares {name}, which nothing discovers",
                    self.repos[i].name
                ));
                self.plants.declared_extra.insert(i, name);
            } else if k % 3 == 1
                && let Some(&person) = self.teams[team].members.iter().find(|m| !leads.contains(m))
            {
                let login = self.people[person].login.clone();
                let text = text.replace(
                    &format!("owner: group:default/{slug}\n"),
                    &format!("owner: user:default/{login}\n"),
                );
                self.repos[i].files.insert("catalog-info.yaml".into(), text);
                what.push(format!(
                    "descriptor of {} names {login} (of {slug}) as owner",
                    self.repos[i].name
                ));
                self.plants.person_owner.insert(i, person);
            }
        }

        for &i in &live {
            let r = &self.repos[i];
            if i % 20 == 8
                && !r.archived
                && crate::pagerduty::has_service(i)
                && !r.files.contains_key("catalog-info.yaml")
            {
                self.repos[i].archived = true;
                what.push(format!(
                    "{} archived, its PagerDuty service still enabled",
                    self.repos[i].name
                ));
                self.plants.archived.insert(i);
            }
        }
        self.generation += 1;
        what
    }

    /// What happens to the org after a first sync: a Jira component lead in one team in ten
    /// moves to another team (Jira keeps them as lead), one person in forty leaves, and so
    /// does every other person a descriptor names as owner. Returns what happened, one line each.
    pub fn plant_history(&mut self) -> Vec<String> {
        let mut what = Vec::new();
        // Jira chose its component leads when the site was made, from the org as it was: in
        // one team in ten, the lead of its first led component moves to another team.
        let leads: Vec<(usize, usize)> = (0..self.teams.len())
            .filter(|t| t % 10 == 3 && self.teams[*t].active)
            .filter_map(|t| {
                (0..self.repos.len())
                    .filter(|r| self.repos[*r].active && self.repos[*r].owner_team == t)
                    .find_map(|r| crate::jira::component_lead(self, r).map(|p| (r, p)))
            })
            .collect();
        let mut moved_people = BTreeSet::new();
        for (r, person) in leads {
            let from = self.repos[r].owner_team;
            if !moved_people.insert(person) || !self.teams[from].members.contains(&person) {
                continue;
            }
            let Some(to) = next_team(self, from, &self.plants.emptied_teams.clone()) else {
                continue;
            };
            self.move_person(person, from, to);
            what.push(format!(
                "{}, Jira lead of {}, moved from {} to {}",
                self.people[person].login,
                self.repos[r].name,
                self.teams[from].slug,
                self.teams[to].slug
            ));
            self.plants.moved.push((r, person, from, to));
        }
        let owners: Vec<usize> = self.plants.person_owner.values().copied().collect();
        let mut leaving: BTreeSet<usize> = owners.iter().step_by(2).copied().collect();
        leaving.extend((0..self.people.len()).filter(|p| p % 40 == 7));
        for p in leaving {
            if self.people[p].active {
                self.remove_person(p);
                what.push(format!("{} left the org", self.people[p].login));
                self.plants.departed.insert(p);
            }
        }
        what
    }
}
