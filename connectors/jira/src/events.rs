//! Jira webhooks as hints: a delivery is checked against `webhook_secret` (`X-Hub-Signature:
//! sha256=<hex>`, which Jira sends for admin webhooks registered with a secret), and its event
//! names a project to read again. Nothing here is taken as the truth.
//!
//! Project events (`project_created`, `_updated`, `_deleted`, `_soft_deleted`,
//! `_restored_deleted`, `_archived`, `_restored_archived`) name their project; component events
//! (`component_*`, with the component's `projectId`) name the component's project, which is
//! read again with all its components.

use serde_json::Value;
use surveyor_http::webhook::hmac_sha256_matches;
use surveyor_model::{Delivery, EventError, Received, Target};

use crate::config::{Settings, site_of};

/// What a refresh target of this connector names: a project, by its id (or key).
pub const PROJECT: &str = "project";

/// Reads a delivery: who sent it, and which project it names.
pub fn receive(settings: &Settings, delivery: &Delivery) -> Result<Received, EventError> {
    let secret = settings.webhook_secret.as_ref().ok_or_else(|| {
        EventError::Unsupported(
            "webhooks are off for this connector: set webhook_secret to the webhook's secret"
                .into(),
        )
    })?;
    let signature = delivery
        .header("x-hub-signature")
        .and_then(|s| s.trim().strip_prefix("sha256="))
        .ok_or(EventError::Unauthorized)?;
    if !hmac_sha256_matches(secret.expose().as_bytes(), &delivery.body, signature) {
        return Err(EventError::Unauthorized);
    }
    let body: Value = serde_json::from_slice(&delivery.body)
        .map_err(|e| EventError::Malformed(format!("the body is not JSON: {e}")))?;
    let event = body["webhookEvent"]
        .as_str()
        .ok_or_else(|| EventError::Malformed("no webhookEvent".into()))?;
    let (thing, project_id, project_key) = if event.starts_with("project_") {
        let p = &body["project"];
        (p, id_of(&p["id"]), p["key"].as_str())
    } else if event.starts_with("component_") {
        let c = &body["component"];
        (c, id_of(&c["projectId"]), c["project"].as_str())
    } else {
        return Err(EventError::Ignored(format!(
            "{event} events change nothing the catalog reads"
        )));
    };
    let Some(key) = project_id.clone().or(project_key.map(str::to_string)) else {
        return Err(EventError::Malformed(format!(
            "a {event} event that names no project"
        )));
    };
    if !is_id_or_key(&key) {
        return Err(EventError::Malformed(format!(
            "a {event} event naming project {key:?}, which is no Jira id or key"
        )));
    }
    if let Some(site) = thing["self"].as_str().and_then(|u| site_of(u).ok())
        && site != settings.site
    {
        return Err(EventError::Ignored(format!(
            "site {site:?} is not the one this connector reads"
        )));
    }
    if let Some(k) = project_key
        && !settings.keeps_project(k)
    {
        return Err(EventError::Ignored(format!(
            "project {k} is not one this connector reads"
        )));
    }
    Ok(Received {
        delivery_id: delivery
            .header("x-atlassian-webhook-identifier")
            .map(str::to_string),
        targets: vec![Target {
            scope: settings.site.clone(),
            kind: PROJECT.into(),
            key,
        }],
    })
}

/// A Jira id, sent as a number or a string.
fn id_of(v: &Value) -> Option<String> {
    match v {
        Value::Number(n) => n.as_u64().map(|n| n.to_string()),
        Value::String(s) if !s.is_empty() => Some(s.clone()),
        _ => None,
    }
}

/// Project ids are digits, keys letters, digits and `_`: nothing that changes a URL path.
pub fn is_id_or_key(s: &str) -> bool {
    !s.is_empty() && s.len() <= 64 && s.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_')
}

#[cfg(test)]
mod tests {
    use serde_json::json;
    use surveyor_http::webhook::hmac_sha256_hex;

    use super::*;
    use crate::config::JiraConfig;

    const SECRET: &str = "a-webhook-secret-from-jira-admin";
    const ID: &str = "6a3b5c3e-9f3d-4c1a-8f8e-1b2c3d4e5f60";

    fn settings(secret: Option<&str>, extra: &str) -> Settings {
        let mut toml =
            "url = \"https://acme.atlassian.net\"\nemail = \"a@b.c\"\napi_token = \"t\"\n"
                .to_string();
        toml.push_str(extra);
        if let Some(s) = secret {
            toml.push_str(&format!("webhook_secret = {s:?}\n"));
        }
        let config: JiraConfig = toml::from_str(&toml).expect("config");
        config.settings().expect("settings")
    }

    fn delivery(body: &Value, secret: &str) -> Delivery {
        let body = serde_json::to_vec(body).expect("json");
        let mut headers = std::collections::BTreeMap::new();
        headers.insert("x-atlassian-webhook-identifier".into(), ID.into());
        headers.insert("x-atlassian-webhook-flow".into(), "Primary".into());
        headers.insert(
            "x-hub-signature".into(),
            format!("sha256={}", hmac_sha256_hex(secret.as_bytes(), &body)),
        );
        Delivery { headers, body }
    }

    fn project_event(event: &str) -> Value {
        json!({
            "timestamp": 1_575_950_054_045u64,
            "webhookEvent": event,
            "project": {
                "self": "https://acme.atlassian.net/rest/api/2/project/10000",
                "id": 10000,
                "key": "PAY",
                "name": "Payments",
                "projectLead": {"accountId": "712020:abc", "displayName": "Ada"},
                "assigneeType": "admin.assignee.type.unassigned"
            }
        })
    }

    fn component_event(event: &str) -> Value {
        json!({
            "timestamp": 1_575_950_054_045u64,
            "webhookEvent": event,
            "component": {
                "self": "https://acme.atlassian.net/rest/api/2/component/20001",
                "id": "20001",
                "name": "payments-api",
                "project": "PAY",
                "projectId": 10000
            }
        })
    }

    fn project_target(key: &str) -> Target {
        Target {
            scope: "acme.atlassian.net".into(),
            kind: PROJECT.into(),
            key: key.into(),
        }
    }

    #[test]
    fn project_and_component_events_name_the_project_by_id() {
        let s = settings(Some(SECRET), "");
        for e in [
            "project_created",
            "project_updated",
            "project_deleted",
            "project_soft_deleted",
            "project_archived",
        ] {
            let got = receive(&s, &delivery(&project_event(e), SECRET)).expect("received");
            assert_eq!(got.targets, [project_target("10000")], "{e}");
            assert_eq!(got.delivery_id.as_deref(), Some(ID));
        }
        for e in [
            "component_created",
            "component_updated",
            "component_deleted",
        ] {
            let got = receive(&s, &delivery(&component_event(e), SECRET)).expect("received");
            assert_eq!(got.targets, [project_target("10000")], "{e}");
        }
        // A redelivery carries the same identifier, for the scheduler to take once.
        let again = receive(&s, &delivery(&project_event("project_updated"), SECRET));
        assert_eq!(again.expect("received").delivery_id.as_deref(), Some(ID));
    }

    #[test]
    fn an_unsigned_or_wrongly_signed_delivery_is_refused() {
        let s = settings(Some(SECRET), "");
        let wrong = delivery(&project_event("project_deleted"), "another secret");
        assert_eq!(receive(&s, &wrong), Err(EventError::Unauthorized));
        let mut unsigned = delivery(&project_event("project_deleted"), SECRET);
        unsigned.headers.remove("x-hub-signature");
        assert_eq!(receive(&s, &unsigned), Err(EventError::Unauthorized));
        let mut tampered = delivery(&project_event("project_created"), SECRET);
        tampered.body = serde_json::to_vec(&project_event("project_deleted")).expect("json");
        assert_eq!(receive(&s, &tampered), Err(EventError::Unauthorized));
        let off = settings(None, "");
        assert!(matches!(
            receive(&off, &delivery(&project_event("project_created"), SECRET)),
            Err(EventError::Unsupported(_))
        ));
    }

    #[test]
    fn other_sites_other_events_and_bad_payloads() {
        let s = settings(Some(SECRET), "");
        let mut elsewhere = project_event("project_updated");
        elsewhere["project"]["self"] =
            json!("https://globex.atlassian.net/rest/api/2/project/10000");
        assert!(matches!(
            receive(&s, &delivery(&elsewhere, SECRET)),
            Err(EventError::Ignored(_))
        ));
        let only_some = settings(Some(SECRET), "exclude_projects = [\"PAY\"]\n");
        assert!(matches!(
            receive(
                &only_some,
                &delivery(&project_event("project_updated"), SECRET)
            ),
            Err(EventError::Ignored(_))
        ));
        let issue = json!({"webhookEvent": "jira:issue_created", "issue": {"id": "1"}});
        assert!(matches!(
            receive(&s, &delivery(&issue, SECRET)),
            Err(EventError::Ignored(_))
        ));
        let mut garbage = delivery(&json!({}), SECRET);
        garbage.body = b"{not json".to_vec();
        let sig = hmac_sha256_hex(SECRET.as_bytes(), &garbage.body);
        garbage
            .headers
            .insert("x-hub-signature".into(), format!("sha256={sig}"));
        assert!(matches!(
            receive(&s, &garbage),
            Err(EventError::Malformed(_))
        ));
        assert!(matches!(
            receive(&s, &delivery(&json!({"project": {}}), SECRET)),
            Err(EventError::Malformed(_))
        ));
        let nameless = json!({"webhookEvent": "project_created", "project": {"name": "X"}});
        assert!(matches!(
            receive(&s, &delivery(&nameless, SECRET)),
            Err(EventError::Malformed(_))
        ));
        let mut odd = component_event("component_created");
        odd["component"]["projectId"] = json!("10000/../../x");
        assert!(matches!(
            receive(&s, &delivery(&odd, SECRET)),
            Err(EventError::Malformed(_))
        ));
    }
}
