//! The events a GitLab group webhook on the top-level group receives for a change of the org,
//! found by comparing the group views before and after: Project, Push, Subgroup and Member hooks.

use std::collections::BTreeMap;

use serde_json::{Value, json};

use super::{GroupView, Layout, RepoFilter, View, rfc3339};
use crate::org::{Org, Person, Repo};
use crate::webhook::{Event, Subject, commit_sha, file_changes};

/// The events a group webhook receives when `before` becomes `after` (projects `select`
/// accepts only). GitLab's group hooks announce projects created and deleted but not renamed,
/// archived or transferred, so those changes send nothing and only a sweep finds them.
pub fn webhook_events(base: &str, before: &Org, after: &Org, select: &RepoFilter) -> Vec<Event> {
    let (laid_before, laid_after) = (Layout::new(before, select), Layout::new(after, select));
    let (old, new) = (
        View::over(before, &laid_before),
        View::over(after, &laid_after),
    );
    let mut events = Vec::new();

    let old_projects: BTreeMap<u64, (&Repo, usize)> =
        old.projects().map(|(r, g)| (r.id, (r, g))).collect();
    let new_projects: BTreeMap<u64, (&Repo, usize)> =
        new.projects().map(|(r, g)| (r.id, (r, g))).collect();
    for (id, (repo, g)) in &new_projects {
        match old_projects.get(id) {
            None => {
                events.push(project_event(&new, "project_create", repo, *g));
                if !repo.files.is_empty() {
                    events.push(push(base, &new, repo, *g, None));
                }
            }
            Some((old_repo, old_g)) => {
                let was = old.files(old_repo, *old_g);
                if was != new.files(repo, *g) {
                    events.push(push(base, &new, repo, *g, Some(&was)));
                }
            }
        }
    }
    for (id, (repo, g)) in &old_projects {
        if !new_projects.contains_key(id) {
            events.push(project_event(&old, "project_destroy", repo, *g));
        }
    }

    let old_groups: BTreeMap<u64, usize> = old
        .groups
        .iter()
        .enumerate()
        .map(|(i, g)| (g.id, i))
        .collect();
    let new_groups: BTreeMap<u64, usize> = new
        .groups
        .iter()
        .enumerate()
        .map(|(i, g)| (g.id, i))
        .collect();
    for (id, g) in &new_groups {
        match old_groups.get(id) {
            None => {
                events.push(subgroup_event(&new, "subgroup_create", *g));
                for (p, level) in &new.groups[*g].members {
                    events.extend(member_event(&new, "user_add_to_group", *g, *p, *level));
                }
            }
            Some(old_g) => {
                let was: BTreeMap<usize, u64> =
                    old.groups[*old_g].members.iter().copied().collect();
                let now: BTreeMap<usize, u64> = new.groups[*g].members.iter().copied().collect();
                for (p, level) in &now {
                    let name = match was.get(p) {
                        None => "user_add_to_group",
                        Some(l) if l != level => "user_update_for_group",
                        Some(_) => continue,
                    };
                    events.extend(member_event(&new, name, *g, *p, *level));
                }
                for (p, level) in &was {
                    if !now.contains_key(p) {
                        events.extend(member_event(
                            &old,
                            "user_remove_from_group",
                            *old_g,
                            *p,
                            *level,
                        ));
                    }
                }
            }
        }
    }
    for (id, g) in &old_groups {
        if !new_groups.contains_key(id) {
            events.push(subgroup_event(&old, "subgroup_destroy", *g));
        }
    }
    events
}

fn project_subject(view: &View, repo: &Repo, g: usize) -> Subject {
    Subject {
        kind: "project",
        id: repo.id,
        name: format!("{}/{}", view.groups[g].full_path, repo.name),
    }
}

fn owner<'a>(view: &View<'a>) -> Option<&'a Person> {
    view.org.live_people().next()
}

/// GitLab's `visibility_level`: 0 private, 10 internal, 20 public.
fn visibility_level(repo: &Repo) -> u64 {
    if repo.private { 0 } else { 10 }
}

fn project_event(view: &View, name: &str, repo: &Repo, g: usize) -> Event {
    let group = &view.groups[g];
    let owners: Vec<Value> = owner(view)
        .map(|p| json!({"name": p.name, "email": p.email}))
        .into_iter()
        .collect();
    Event {
        name: "Project Hook".into(),
        action: Some(name.into()),
        subject: project_subject(view, repo, g),
        payload: json!({
            "event_name": name,
            "created_at": "2024-02-01T10:00:00Z",
            "updated_at": rfc3339(repo.pushed_at),
            "name": repo.name,
            "path": repo.name,
            "path_with_namespace": format!("{}/{}", group.full_path, repo.name),
            "project_id": repo.id,
            "project_namespace_id": group.id,
            "owners": owners,
            "project_visibility": if repo.private { "private" } else { "internal" },
        }),
    }
}

fn push(
    base: &str,
    view: &View,
    repo: &Repo,
    g: usize,
    was: Option<&BTreeMap<String, String>>,
) -> Event {
    let group = &view.groups[g];
    let full = format!("{}/{}", group.full_path, repo.name);
    let files = view.files(repo, g);
    let empty = BTreeMap::new();
    let (added, modified, removed) = file_changes(was.unwrap_or(&empty), &files);
    let before = match was {
        Some(w) => commit_sha(repo.id, w),
        None => "0".repeat(40),
    };
    let after = commit_sha(repo.id, &files);
    let touched = added.len() + modified.len() + removed.len();
    let title = match (added.first(), modified.first(), removed.first()) {
        _ if was.is_none() => "Initial commit".to_string(),
        (Some(p), None, None) | (None, Some(p), None) | (None, None, Some(p)) if touched == 1 => {
            format!("Update {p}")
        }
        _ => format!("Update {touched} files"),
    };
    let (user_id, user_name, username, email) = match owner(view) {
        Some(p) => (
            p.id,
            p.name.clone(),
            p.login.clone(),
            p.email.clone().unwrap_or_default(),
        ),
        None => (1, "Ghost User".into(), "ghost".into(), String::new()),
    };
    let project = json!({
        "id": repo.id,
        "name": repo.name,
        "description": repo.description,
        "web_url": format!("{base}/{full}"),
        "avatar_url": null,
        "git_ssh_url": format!("git@gitlab.example:{full}.git"),
        "git_http_url": format!("{base}/{full}.git"),
        "namespace": group.name,
        "visibility_level": visibility_level(repo),
        "path_with_namespace": full,
        "default_branch": repo.default_branch,
        "ci_config_path": null,
        "homepage": format!("{base}/{full}"),
        "url": format!("git@gitlab.example:{full}.git"),
        "ssh_url": format!("git@gitlab.example:{full}.git"),
        "http_url": format!("{base}/{full}.git"),
    });
    Event {
        name: "Push Hook".into(),
        action: None,
        subject: project_subject(view, repo, g),
        payload: json!({
            "object_kind": "push",
            "event_name": "push",
            "before": before,
            "after": after,
            "ref": format!("refs/heads/{}", repo.default_branch),
            "ref_protected": true,
            "checkout_sha": after,
            "message": null,
            "user_id": user_id,
            "user_name": user_name,
            "user_username": username,
            "user_email": "",
            "user_avatar": null,
            "project_id": repo.id,
            "project": project,
            "commits": [{
                "id": after,
                "message": format!("{title}\n"),
                "title": title,
                "timestamp": rfc3339(repo.pushed_at),
                "url": format!("{base}/{full}/-/commit/{after}"),
                "author": {"name": user_name, "email": email},
                "added": added,
                "modified": modified,
                "removed": removed,
            }],
            "total_commits_count": 1,
            "push_options": {},
            "repository": {
                "name": repo.name,
                "url": format!("git@gitlab.example:{full}.git"),
                "description": repo.description,
                "homepage": format!("{base}/{full}"),
                "git_http_url": format!("{base}/{full}.git"),
                "git_ssh_url": format!("git@gitlab.example:{full}.git"),
                "visibility_level": visibility_level(repo),
            },
        }),
    }
}

fn group_subject(group: &GroupView) -> Subject {
    Subject {
        kind: "group",
        id: group.id,
        name: group.full_path.clone(),
    }
}

fn subgroup_event(view: &View, name: &str, g: usize) -> Event {
    let group = &view.groups[g];
    let parent = group.parent.map(|p| &view.groups[p]);
    Event {
        name: "Subgroup Hook".into(),
        action: Some(name.into()),
        subject: group_subject(group),
        payload: json!({
            "created_at": "2024-01-15T09:00:00Z",
            "updated_at": "2024-01-15T09:00:00Z",
            "event_name": name,
            "name": group.name,
            "path": group.path,
            "full_path": group.full_path,
            "group_id": group.id,
            "parent_group_id": parent.map(|p| p.id),
            "parent_name": parent.map(|p| p.name.clone()),
            "parent_path": parent.map(|p| p.path.clone()),
            "parent_full_path": parent.map(|p| p.full_path.clone()),
        }),
    }
}

fn access_name(level: u64) -> &'static str {
    match level {
        50 => "Owner",
        40 => "Maintainer",
        30 => "Developer",
        20 => "Reporter",
        _ => "Guest",
    }
}

fn member_event(view: &View, name: &str, g: usize, person: usize, level: u64) -> Option<Event> {
    let group = &view.groups[g];
    let p = view.org.people.get(person)?;
    Some(Event {
        name: "Member Hook".into(),
        action: Some(name.into()),
        subject: group_subject(group),
        payload: json!({
            "created_at": "2024-03-01T08:00:00Z",
            "updated_at": "2024-03-01T08:00:00Z",
            "group_name": group.name,
            "group_path": group.path,
            "group_id": group.id,
            "user_username": p.login,
            "user_name": p.name,
            "user_email": p.email,
            "user_id": p.id,
            "group_access": access_name(level),
            "group_plan": null,
            "expires_at": null,
            "event_name": name,
        }),
    })
}
