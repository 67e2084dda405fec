//! The webhook events GitHub sends to an organisation hook for a change of the org, found by
//! comparing the org before and after: `repository`, `push`, `team`, `membership`, `organization`.

use std::collections::BTreeMap;

use serde_json::{Value, json};

use super::{repo_node_id, team_node_id, user_node_id};
use crate::org::{Org, Person, Repo, Team};
use crate::webhook::{Event, Subject, commit_sha, file_changes};

/// The org's account id (the fake serves none; hooks name one as GitHub's do).
const ORG_ID: u64 = 9_000_000;

/// The events an organisation webhook receives when `before` becomes `after`, in the order
/// GitHub would send them: repositories, then teams and their members, then org members.
///
/// Repository collaborators (`member`) and transfers between orgs have no counterpart in the
/// org model, so they never appear.
pub fn webhook_events(base: &str, before: &Org, after: &Org) -> Vec<Event> {
    let ctx = Ctx { base, org: after };
    let mut events = Vec::new();
    let old_repos: BTreeMap<u64, &Repo> = before
        .repos
        .iter()
        .filter(|r| r.active)
        .map(|r| (r.id, r))
        .collect();
    for repo in &after.repos {
        match old_repos.get(&repo.id) {
            None if repo.active => {
                events.push(ctx.repository("created", repo, None));
                if !repo.files.is_empty() {
                    events.push(ctx.push(repo, None));
                }
            }
            None => {}
            Some(old) if !repo.active => events.push(ctx.repository("deleted", old, None)),
            Some(old) => events.extend(ctx.repo_changes(old, repo)),
        }
    }
    // A repository gone from the list altogether is deleted too.
    for (id, old) in &old_repos {
        if !after.repos.iter().any(|r| r.id == *id) {
            events.push(ctx.repository("deleted", old, None));
        }
    }

    let old_teams: BTreeMap<u64, &Team> = before
        .teams
        .iter()
        .filter(|t| t.active)
        .map(|t| (t.id, t))
        .collect();
    for team in &after.teams {
        let old = old_teams.get(&team.id);
        match old {
            None if team.active => {
                events.push(ctx.team("created", team, None));
                for m in &team.members {
                    events.extend(ctx.membership("added", team, after.people.get(*m)));
                }
            }
            None => {}
            Some(_) if !team.active => events.push(ctx.team("deleted", team, None)),
            Some(old) => {
                if old.name != team.name {
                    let changes = json!({"name": {"from": old.name}});
                    events.push(ctx.team("edited", team, Some(changes)));
                }
                let people = |t: &Team, org: &Org| -> BTreeMap<u64, Person> {
                    t.members
                        .iter()
                        .filter_map(|m| org.people.get(*m))
                        .filter(|p| p.active)
                        .map(|p| (p.id, p.clone()))
                        .collect()
                };
                let (was, now) = (people(old, before), people(team, after));
                for (id, p) in &now {
                    if !was.contains_key(id) {
                        events.extend(ctx.membership("added", team, Some(p)));
                    }
                }
                for (id, p) in &was {
                    if !now.contains_key(id) {
                        events.extend(ctx.membership("removed", team, Some(p)));
                    }
                }
            }
        }
    }

    let old_people: BTreeMap<u64, &Person> = before
        .people
        .iter()
        .filter(|p| p.active)
        .map(|p| (p.id, p))
        .collect();
    for person in &after.people {
        match (old_people.contains_key(&person.id), person.active) {
            (false, true) => events.push(ctx.organization("member_added", person)),
            (true, false) => events.push(ctx.organization("member_removed", person)),
            _ => {}
        }
    }
    events
}

struct Ctx<'a> {
    base: &'a str,
    org: &'a Org,
}

impl Ctx<'_> {
    fn full_name(&self, repo: &Repo) -> String {
        format!("{}/{}", self.org.name, repo.name)
    }

    fn repo_subject(&self, repo: &Repo) -> Subject {
        Subject {
            kind: "repository",
            id: repo.id,
            name: self.full_name(repo),
        }
    }

    fn organization_json(&self) -> Value {
        let login = &self.org.name;
        json!({
            "login": login,
            "id": ORG_ID,
            "node_id": format!("O_kgDO{ORG_ID:08X}"),
            "url": format!("{}/orgs/{login}", self.base),
            "repos_url": format!("{}/orgs/{login}/repos", self.base),
            "members_url": format!("{}/orgs/{login}/members{{/member}}", self.base),
            "description": format!("Everything {login} builds"),
        })
    }

    /// Who made the change: the org's first active member, or a ghost as GitHub shows one.
    fn sender(&self) -> Value {
        match self.org.live_people().next() {
            Some(p) => self.user_json(p),
            None => json!({"login": "ghost", "id": 10_137, "type": "User"}),
        }
    }

    fn user_json(&self, p: &Person) -> Value {
        json!({
            "login": p.login,
            "id": p.id,
            "node_id": user_node_id(p),
            "url": format!("{}/users/{}", self.base, p.login),
            "html_url": format!("{}/{}", self.base, p.login),
            "type": "User",
            "site_admin": false,
        })
    }

    fn repository_json(&self, repo: &Repo) -> Value {
        let full = self.full_name(repo);
        let base = self.base;
        json!({
            "id": repo.id,
            "node_id": repo_node_id(repo),
            "name": repo.name,
            "full_name": full,
            "private": repo.private,
            "owner": {
                "login": self.org.name,
                "id": ORG_ID,
                "node_id": format!("O_kgDO{ORG_ID:08X}"),
                "type": "Organization",
                "url": format!("{base}/users/{}", self.org.name),
            },
            "html_url": format!("{base}/{full}"),
            "description": repo.description,
            "fork": repo.fork,
            "url": format!("{base}/repos/{full}"),
            "created_at": rfc3339(1_690_000_000 + repo.id % 1_000_000),
            "updated_at": rfc3339(repo.pushed_at),
            "pushed_at": rfc3339(repo.pushed_at),
            "clone_url": format!("{base}/{full}.git"),
            "language": repo.language.name(),
            "archived": repo.archived,
            "disabled": false,
            "visibility": if repo.private { "private" } else { "internal" },
            "topics": repo.topics,
            "default_branch": repo.default_branch,
        })
    }

    fn repository(&self, action: &str, repo: &Repo, changes: Option<Value>) -> Event {
        let mut payload = json!({
            "action": action,
            "repository": self.repository_json(repo),
            "organization": self.organization_json(),
            "sender": self.sender(),
        });
        if let Some(c) = changes {
            payload["changes"] = c;
        }
        Event {
            name: "repository".into(),
            action: Some(action.into()),
            subject: self.repo_subject(repo),
            payload,
        }
    }

    /// What happened to a repository that stayed: each documented action once.
    fn repo_changes(&self, old: &Repo, repo: &Repo) -> Vec<Event> {
        let mut events = Vec::new();
        if old.name != repo.name {
            let changes = json!({"repository": {"name": {"from": old.name}}});
            events.push(self.repository("renamed", repo, Some(changes)));
        }
        if old.archived != repo.archived {
            let action = if repo.archived {
                "archived"
            } else {
                "unarchived"
            };
            events.push(self.repository(action, repo, None));
        }
        if old.private != repo.private {
            let action = if repo.private {
                "privatized"
            } else {
                "publicized"
            };
            events.push(self.repository(action, repo, None));
        }
        let mut changes = serde_json::Map::new();
        if old.description != repo.description {
            changes.insert("description".into(), json!({"from": old.description}));
        }
        if old.default_branch != repo.default_branch {
            changes.insert("default_branch".into(), json!({"from": old.default_branch}));
        }
        if old.topics != repo.topics {
            changes.insert("topics".into(), json!({"from": old.topics}));
        }
        if !changes.is_empty() {
            events.push(self.repository("edited", repo, Some(Value::Object(changes))));
        }
        if old.files != repo.files {
            events.push(self.push(repo, Some(old)));
        }
        events
    }

    /// A push of one commit to the default branch taking the files from `old`'s (none for a
    /// new repository) to `repo`'s.
    fn push(&self, repo: &Repo, old: Option<&Repo>) -> Event {
        let empty = BTreeMap::new();
        let before_files = old.map_or(&empty, |o| &o.files);
        let (added, modified, removed) = file_changes(before_files, &repo.files);
        let before = match old {
            Some(o) => commit_sha(o.id, &o.files),
            None => "0".repeat(40),
        };
        let after = commit_sha(repo.id, &repo.files);
        let full = self.full_name(repo);
        let touched: Vec<&String> = added.iter().chain(&modified).chain(&removed).collect();
        let message = match touched.as_slice() {
            [one] => format!("Update {one}"),
            _ if old.is_none() => "Initial commit".to_string(),
            _ => format!("Update {} files", touched.len()),
        };
        let (name, email, username) = match self.org.live_people().next() {
            Some(p) => (
                p.name.clone(),
                p.email
                    .clone()
                    .unwrap_or_else(|| format!("{}@users.noreply", p.login)),
                p.login.clone(),
            ),
            None => ("ghost".into(), "ghost@users.noreply".into(), "ghost".into()),
        };
        let person = json!({"name": name, "email": email, "username": username});
        let commit = json!({
            "id": after,
            "tree_id": commit_sha(repo.id ^ 1, &repo.files),
            "distinct": true,
            "message": message,
            "timestamp": rfc3339(repo.pushed_at),
            "url": format!("{}/{full}/commit/{after}", self.base),
            "author": person,
            "committer": person,
            "added": added,
            "modified": modified,
            "removed": removed,
        });
        let mut repository = self.repository_json(repo);
        // Push payloads carry the repository's times as epoch seconds.
        repository["pushed_at"] = json!(repo.pushed_at);
        repository["created_at"] = json!(1_690_000_000 + repo.id % 1_000_000);
        Event {
            name: "push".into(),
            action: None,
            subject: self.repo_subject(repo),
            payload: json!({
                "ref": format!("refs/heads/{}", repo.default_branch),
                "before": before,
                "after": after,
                "repository": repository,
                "pusher": {"name": username, "email": email},
                "organization": self.organization_json(),
                "sender": self.sender(),
                "created": old.is_none(),
                "deleted": false,
                "forced": false,
                "base_ref": null,
                "compare": format!("{}/{full}/compare/{}...{}", self.base, &before[..12], &after[..12]),
                "commits": [commit.clone()],
                "head_commit": commit,
            }),
        }
    }

    fn team_json(&self, team: &Team) -> Value {
        let org = &self.org.name;
        let base = self.base;
        let parent = team
            .parent
            .and_then(|p| self.org.teams.get(p))
            .filter(|p| p.active)
            .map(
                |p| json!({"id": p.id, "node_id": team_node_id(p), "name": p.name, "slug": p.slug}),
            );
        json!({
            "id": team.id,
            "node_id": team_node_id(team),
            "name": team.name,
            "slug": team.slug,
            "description": format!("The {} team", team.name),
            "privacy": "closed",
            "notification_setting": "notifications_enabled",
            "permission": "pull",
            "url": format!("{base}/orgs/{org}/teams/{}", team.slug),
            "html_url": format!("{base}/orgs/{org}/teams/{}", team.slug),
            "members_url": format!("{base}/organizations/{ORG_ID}/team/{}/members{{/member}}", team.id),
            "repositories_url": format!("{base}/organizations/{ORG_ID}/team/{}/repos", team.id),
            "parent": parent,
        })
    }

    fn team_subject(&self, team: &Team) -> Subject {
        Subject {
            kind: "team",
            id: team.id,
            name: format!("{}/{}", self.org.name, team.slug),
        }
    }

    fn team(&self, action: &str, team: &Team, changes: Option<Value>) -> Event {
        let mut payload = json!({
            "action": action,
            "team": self.team_json(team),
            "organization": self.organization_json(),
            "sender": self.sender(),
        });
        if let Some(c) = changes {
            payload["changes"] = c;
        }
        Event {
            name: "team".into(),
            action: Some(action.into()),
            subject: self.team_subject(team),
            payload,
        }
    }

    fn membership(&self, action: &str, team: &Team, person: Option<&Person>) -> Option<Event> {
        let person = person.filter(|p| p.active || action == "removed")?;
        Some(Event {
            name: "membership".into(),
            action: Some(action.into()),
            subject: self.team_subject(team),
            payload: json!({
                "action": action,
                "scope": "team",
                "member": self.user_json(person),
                "team": self.team_json(team),
                "organization": self.organization_json(),
                "sender": self.sender(),
            }),
        })
    }

    fn organization(&self, action: &str, person: &Person) -> Event {
        let org = &self.org.name;
        Event {
            name: "organization".into(),
            action: Some(action.into()),
            subject: Subject {
                kind: "user",
                id: person.id,
                name: person.login.clone(),
            },
            payload: json!({
                "action": action,
                "membership": {
                    "url": format!("{}/orgs/{org}/memberships/{}", self.base, person.login),
                    "state": "active",
                    "role": "member",
                    "organization_url": format!("{}/orgs/{org}", self.base),
                    "user": self.user_json(person),
                },
                "organization": self.organization_json(),
                "sender": self.sender(),
            }),
        }
    }
}

fn rfc3339(secs: u64) -> String {
    chrono::DateTime::from_timestamp(i64::try_from(secs).unwrap_or(0), 0)
        .map(|t| t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true))
        .unwrap_or_default()
}
