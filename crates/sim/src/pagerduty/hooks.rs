//! The v3 webhook events PagerDuty sends to an account-wide subscription when services change,
//! found by comparing the account before and after: `service.created`, `service.updated` and
//! `service.deleted`. PagerDuty has no event types for teams, users or escalation policies, so
//! changing those sends nothing (a scheduled sync is what finds them).

use serde_json::{Value, json};

use super::Account;
use crate::webhook::{Event, Subject};

/// The events a subscription on the whole account receives when `before` becomes `after`:
/// services created, updated and deleted, by service id.
pub fn webhook_events(before: &Account, after: &Account) -> Vec<Event> {
    let mut events = Vec::new();
    for (id, service) in &after.services {
        match before.services.get(id) {
            None => events.push(event("service.created", after, service)),
            Some(old) if old != service => events.push(event("service.updated", after, service)),
            Some(_) => {}
        }
    }
    for (id, old) in &before.services {
        if !after.services.contains_key(id) {
            events.push(event("service.deleted", before, old));
        }
    }
    events
}

/// A number standing for a PagerDuty id (`PV0000A`), for [`Subject::id`].
pub fn subject_id(id: &str) -> u64 {
    id.bytes().fold(0xcbf2_9ce4_8422_2325u64, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x0000_0100_0000_01B3)
    })
}

fn reference(kind: &str, account: &Account, v: &Value) -> Value {
    let id = v["id"].as_str().unwrap_or_default();
    let plural = match kind {
        "team" => "teams",
        _ => "users",
    };
    json!({
        "html_url": format!("https://{}.pagerduty.com/{plural}/{id}", account.subdomain),
        "id": id,
        "self": format!("https://api.pagerduty.com/{plural}/{id}"),
        "summary": v["summary"].as_str().or(v["name"].as_str()).unwrap_or_default(),
        "type": format!("{kind}_reference"),
    })
}

/// One event in PagerDuty's v3 shape. Its `event.id` is filled in by the sender (the delivery
/// id a redelivery repeats).
fn event(event_type: &str, account: &Account, service: &Value) -> Event {
    let id = service["id"].as_str().unwrap_or_default();
    let teams: Vec<Value> = service["teams"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|t| {
            let full = t["id"]
                .as_str()
                .and_then(|i| account.teams.get(i))
                .unwrap_or(t);
            reference("team", account, full)
        })
        .collect();
    // Who made the change: the account's first user, as PagerDuty names the agent.
    let agent = account
        .users
        .values()
        .next()
        .map_or(Value::Null, |u| reference("user", account, u));
    let occurred_at = chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true);
    Event {
        name: event_type.into(),
        action: event_type.split_once('.').map(|(_, a)| a.to_string()),
        subject: Subject {
            kind: "service",
            id: subject_id(id),
            name: id.to_string(),
        },
        payload: json!({"event": {
            "id": "",
            "event_type": event_type,
            "resource_type": "service",
            "occurred_at": occurred_at,
            "agent": agent,
            "client": null,
            "data": {
                "html_url": service["html_url"],
                "id": id,
                "self": format!("https://api.pagerduty.com/services/{id}"),
                "summary": service["summary"].as_str().or(service["name"].as_str()).unwrap_or_default(),
                "alert_creation": service["alert_creation"],
                "teams": teams,
                "type": "service",
            }
        }}),
    }
}
