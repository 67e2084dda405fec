//! The webhook events a Jira admin webhook with a secret receives when the site changes, found
//! by comparing what the site serves before and after: `project_created`, `project_updated`,
//! `project_deleted`, and `component_created`, `component_updated`, `component_deleted` for the
//! components of projects that stay.

use std::collections::{BTreeMap, BTreeSet};

use serde_json::{Value, json};

use super::{JiraState, component_json, user_json};
use crate::webhook::{Event, Subject};

/// The site as its webhooks show it: projects and components by id, as their payloads
/// would carry them.
pub(crate) struct Snapshot {
    projects: BTreeMap<String, Value>,
    /// Component id -> (project id, component).
    components: BTreeMap<String, (String, Value)>,
}

/// What the site serves now, as webhook payloads would show it.
pub(crate) fn snapshot(s: &JiraState) -> Snapshot {
    let mut projects = BTreeMap::new();
    let mut components = BTreeMap::new();
    let base = &s.base_url;
    for p in &s.site.projects {
        let id: u64 = p.id.parse().unwrap_or_default();
        let mut v = json!({
            "self": format!("{base}/rest/api/2/project/{}", p.id),
            "id": id,
            "key": p.key,
            "name": p.name,
            "avatarUrls": super::avatars(base, "project", &p.id),
            "assigneeType": "admin.assignee.type.unassigned",
        });
        if !p.description.is_empty() {
            v["description"] = json!(p.description);
        }
        if let Some(lead) = p.lead {
            v["projectLead"] = user_json(s, lead);
        }
        if let Some(c) = p.category.and_then(|i| s.site.categories.get(i)) {
            v["projectCategory"] =
                json!({"id": c.id, "name": c.name, "description": c.description});
        }
        projects.insert(p.id.clone(), v);
        for c in s.site.components(p) {
            let mut v = component_json(s, p, &c);
            v["self"] = json!(format!("{base}/rest/api/2/component/{}", c.id));
            if let Some(o) = v.as_object_mut() {
                o.remove("issueCount");
            }
            components.insert(c.id.clone(), (p.id.clone(), v));
        }
    }
    Snapshot {
        projects,
        components,
    }
}

/// The events for the site going from `before` to `after`: projects first, then components.
pub(crate) fn webhook_events(before: &Snapshot, after: &Snapshot) -> Vec<Event> {
    let mut events = Vec::new();
    let ids: BTreeSet<&String> = before
        .projects
        .keys()
        .chain(after.projects.keys())
        .collect();
    for id in ids {
        match (before.projects.get(id), after.projects.get(id)) {
            (None, Some(p)) => events.push(project("project_created", p)),
            (Some(p), None) => events.push(project("project_deleted", p)),
            (Some(old), Some(p)) if old != p => events.push(project("project_updated", p)),
            _ => {}
        }
    }
    let ids: BTreeSet<&String> = before
        .components
        .keys()
        .chain(after.components.keys())
        .collect();
    for id in ids {
        let event = match (before.components.get(id), after.components.get(id)) {
            (None, Some((_, c))) => ("component_created", c),
            (Some((_, c)), None) => ("component_deleted", c),
            // A project's new key shows in its components but is no change of theirs.
            (Some((_, old)), Some((_, c))) if without_key(old) != without_key(c) => {
                ("component_updated", c)
            }
            _ => continue,
        };
        // A deleted project takes its components along without an event of their own.
        let project = event.1["projectId"].as_u64().map(|p| p.to_string());
        if project.is_some_and(|p| after.projects.contains_key(&p)) {
            events.push(component(event.0, event.1));
        }
    }
    events
}

fn without_key(c: &Value) -> Value {
    let mut c = c.clone();
    if let Some(o) = c.as_object_mut() {
        o.remove("project");
    }
    c
}

fn timestamp() -> i64 {
    chrono::Utc::now().timestamp_millis()
}

fn project(event: &str, p: &Value) -> Event {
    Event {
        name: event.into(),
        action: event.strip_prefix("project_").map(str::to_string),
        subject: Subject {
            kind: "project",
            id: p["id"].as_u64().unwrap_or_default(),
            name: p["key"].as_str().unwrap_or_default().to_string(),
        },
        payload: json!({"timestamp": timestamp(), "webhookEvent": event, "project": p}),
    }
}

fn component(event: &str, c: &Value) -> Event {
    Event {
        name: event.into(),
        action: event.strip_prefix("component_").map(str::to_string),
        subject: Subject {
            kind: "component",
            id: c["id"]
                .as_str()
                .and_then(|i| i.parse().ok())
                .unwrap_or_default(),
            name: c["name"].as_str().unwrap_or_default().to_string(),
        },
        payload: json!({"timestamp": timestamp(), "webhookEvent": event, "component": c}),
    }
}
