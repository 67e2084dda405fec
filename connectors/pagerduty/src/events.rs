//! PagerDuty v3 webhooks as hints: a delivery is checked against `webhook_secret`
//! (`X-PagerDuty-Signature`), and its event says which service to read again. Nothing here is
//! taken as the truth.
//!
//! PagerDuty's v3 subscriptions send `service.created`, `service.updated` and `service.deleted`
//! for the catalog's side of an account; they send no team, user or escalation-policy events, so
//! those changes reach the catalog with the next scheduled sync.

use serde_json::Value;
use surveyor_http::webhook::hmac_sha256_matches;
use surveyor_model::{Delivery, EventError, Received, Target};

use crate::config::Settings;

/// What a refresh target of this connector names: a service, by its PagerDuty id.
pub const SERVICE: &str = "service";

/// Reads a delivery: who sent it, and which service it names.
pub fn receive(settings: &Settings, delivery: &Delivery) -> Result<Received, EventError> {
    let secret = settings.webhook_secret.as_ref().ok_or_else(|| {
        EventError::Unsupported(
            "webhooks are off for this connector: set webhook_secret to the subscription's secret"
                .into(),
        )
    })?;
    // One or more `v1=<hex>` separated by commas (several while a secret is rotated): any
    // one that matches will do. Each is compared in constant time.
    let header = delivery
        .header("x-pagerduty-signature")
        .ok_or(EventError::Unauthorized)?;
    let signed = header
        .split(',')
        .filter_map(|s| s.trim().strip_prefix("v1="))
        .fold(false, |ok, sig| {
            hmac_sha256_matches(secret.expose().as_bytes(), &delivery.body, sig) | ok
        });
    if !signed {
        return Err(EventError::Unauthorized);
    }
    let body: Value = serde_json::from_slice(&delivery.body)
        .map_err(|e| EventError::Malformed(format!("the body is not JSON: {e}")))?;
    let event = &body["event"];
    let (Some(id), Some(event_type)) = (event["id"].as_str(), event["event_type"].as_str()) else {
        return Err(EventError::Malformed(
            "not a v3 webhook: no event.id and event.event_type".into(),
        ));
    };
    let service = match event_type {
        "service.created" | "service.updated" | "service.deleted" => &event["data"],
        "pagey.ping" => {
            return Err(EventError::Ignored(
                "ping: the subscription is set up".into(),
            ));
        }
        other => {
            return Err(EventError::Ignored(format!(
                "{other} events change nothing the catalog reads"
            )));
        }
    };
    let Some(service_id) = service["id"].as_str().filter(|s| is_pagerduty_id(s)) else {
        return Err(EventError::Malformed(format!(
            "a {event_type} event without a service id in event.data.id"
        )));
    };
    if let Some(account) = service["html_url"].as_str().and_then(account_of)
        && !account.eq_ignore_ascii_case(&settings.subdomain)
    {
        return Err(EventError::Ignored(format!(
            "account {account:?} is not the one this connector reads"
        )));
    }
    Ok(Received {
        delivery_id: Some(id.to_string()),
        targets: vec![Target {
            scope: settings.subdomain.clone(),
            kind: SERVICE.into(),
            key: service_id.to_string(),
        }],
    })
}

/// PagerDuty ids are short runs of letters and digits (`PF9KMXH`); anything else is not one.
pub fn is_pagerduty_id(s: &str) -> bool {
    !s.is_empty() && s.len() <= 64 && s.bytes().all(|b| b.is_ascii_alphanumeric())
}

/// The account subdomain of a PagerDuty web URL (`acme` of `https://acme.pagerduty.com/...`,
/// also in the EU region's `acme.eu.pagerduty.com`); `None` for a URL elsewhere.
fn account_of(url: &str) -> Option<&str> {
    let rest = url.split_once("://").map_or(url, |(_, r)| r);
    let host = rest.split(['/', ':', '?', '#']).next()?;
    let sub = host
        .strip_suffix(".eu.pagerduty.com")
        .or_else(|| host.strip_suffix(".pagerduty.com"))?;
    (!sub.is_empty() && !sub.contains('.')).then_some(sub)
}

#[cfg(test)]
mod tests {
    use serde_json::json;
    use surveyor_http::webhook::hmac_sha256_hex;

    use super::*;
    use crate::config::PagerDutyConfig;

    const SECRET: &str = "ChangeMe-subscription-secret";

    fn settings(secret: Option<&str>) -> Settings {
        let mut toml = "subdomain = \"acme\"\ntoken = \"t\"\n".to_string();
        if let Some(s) = secret {
            toml.push_str(&format!("webhook_secret = {s:?}\n"));
        }
        let config: PagerDutyConfig = toml::from_str(&toml).expect("config");
        config.settings().expect("settings")
    }

    fn signed(body: &Value, signature: impl Fn(&[u8]) -> String) -> Delivery {
        let body = serde_json::to_vec(body).expect("json");
        let mut headers = std::collections::BTreeMap::new();
        headers.insert("content-type".into(), "application/json".into());
        headers.insert(
            "x-webhook-id".into(),
            "1a0e7bb8-a1a6-4a8a-9f0e-1a2b3c4d5e6f".into(),
        );
        headers.insert("x-pagerduty-signature".into(), signature(&body));
        Delivery { headers, body }
    }

    fn delivery(body: &Value, secret: &str) -> Delivery {
        signed(body, |b| {
            format!("v1={}", hmac_sha256_hex(secret.as_bytes(), b))
        })
    }

    /// PagerDuty's documented `service.updated` example, in account `acme`.
    fn service_event(event_type: &str) -> Value {
        json!({"event": {
            "id": "01BRB6ZP4M6T8ZG4X6BP63ZB9O",
            "event_type": event_type,
            "resource_type": "service",
            "occurred_at": "2021-03-02T13:35:11.682Z",
            "agent": null,
            "client": null,
            "data": {
                "html_url": "https://acme.pagerduty.com/services/PF9KMXH",
                "id": "PF9KMXH",
                "self": "https://api.pagerduty.com/services/PF9KMXH",
                "summary": "testing service updates",
                "alert_creation": "create_alerts_and_incidents",
                "teams": [{"html_url": "https://acme.pagerduty.com/teams/PFCVPS0", "id": "PFCVPS0",
                           "self": "https://api.pagerduty.com/teams/PFCVPS0", "summary": "Engineering",
                           "type": "team_reference"}],
                "type": "service"
            }
        }})
    }

    fn service_target(key: &str) -> Target {
        Target {
            scope: "acme".into(),
            kind: SERVICE.into(),
            key: key.into(),
        }
    }

    #[test]
    fn a_signed_service_event_names_the_service_and_its_event_id() {
        let s = settings(Some(SECRET));
        for t in ["service.created", "service.updated", "service.deleted"] {
            let got = receive(&s, &delivery(&service_event(t), SECRET)).expect("received");
            assert_eq!(got.targets, [service_target("PF9KMXH")], "{t}");
            assert_eq!(
                got.delivery_id.as_deref(),
                Some("01BRB6ZP4M6T8ZG4X6BP63ZB9O"),
                "the event id, which a redelivery repeats"
            );
        }
    }

    #[test]
    fn any_one_of_several_signatures_will_do() {
        let s = settings(Some(SECRET));
        let d = signed(&service_event("service.updated"), |b| {
            format!(
                "v1={},v1={}",
                hmac_sha256_hex(b"the old secret", b),
                hmac_sha256_hex(SECRET.as_bytes(), b)
            )
        });
        assert!(receive(&s, &d).is_ok());
        // Only `v1` signatures count.
        let d = signed(&service_event("service.updated"), |b| {
            format!("v0={}", hmac_sha256_hex(SECRET.as_bytes(), b))
        });
        assert_eq!(receive(&s, &d), Err(EventError::Unauthorized));
    }

    #[test]
    fn an_unsigned_or_wrongly_signed_delivery_is_refused() {
        let s = settings(Some(SECRET));
        let wrong = delivery(&service_event("service.deleted"), "another secret");
        assert_eq!(receive(&s, &wrong), Err(EventError::Unauthorized));
        let mut unsigned = delivery(&service_event("service.deleted"), SECRET);
        unsigned.headers.remove("x-pagerduty-signature");
        assert_eq!(receive(&s, &unsigned), Err(EventError::Unauthorized));
        let mut tampered = delivery(&service_event("service.updated"), SECRET);
        let mut other = service_event("service.updated");
        other["event"]["data"]["id"] = json!("PXXXXXX");
        tampered.body = serde_json::to_vec(&other).expect("json");
        assert_eq!(receive(&s, &tampered), Err(EventError::Unauthorized));
        let off = settings(None);
        assert!(matches!(
            receive(&off, &delivery(&service_event("service.updated"), SECRET)),
            Err(EventError::Unsupported(_))
        ));
    }

    #[test]
    fn other_accounts_other_events_and_bad_payloads() {
        let s = settings(Some(SECRET));
        let mut elsewhere = service_event("service.updated");
        elsewhere["event"]["data"]["html_url"] =
            json!("https://globex.pagerduty.com/services/PF9KMXH");
        assert!(matches!(
            receive(&s, &delivery(&elsewhere, SECRET)),
            Err(EventError::Ignored(_))
        ));
        let mut eu = service_event("service.updated");
        eu["event"]["data"]["html_url"] = json!("https://ACME.eu.pagerduty.com/services/PF9KMXH");
        assert!(receive(&s, &delivery(&eu, SECRET)).is_ok());
        let mut incident = service_event("incident.triggered");
        incident["event"]["resource_type"] = json!("incident");
        assert!(matches!(
            receive(&s, &delivery(&incident, SECRET)),
            Err(EventError::Ignored(_))
        ));
        assert!(matches!(
            receive(&s, &delivery(&service_event("pagey.ping"), SECRET)),
            Err(EventError::Ignored(_))
        ));
        let garbage = signed(&json!({}), |_| String::new());
        let mut garbage = Delivery {
            body: b"{not json".to_vec(),
            ..garbage
        };
        let sig = hmac_sha256_hex(SECRET.as_bytes(), &garbage.body);
        garbage
            .headers
            .insert("x-pagerduty-signature".into(), format!("v1={sig}"));
        assert!(matches!(
            receive(&s, &garbage),
            Err(EventError::Malformed(_))
        ));
        let mut no_id = service_event("service.updated");
        no_id["event"]["data"]
            .as_object_mut()
            .expect("object")
            .remove("id");
        assert!(matches!(
            receive(&s, &delivery(&no_id, SECRET)),
            Err(EventError::Malformed(_))
        ));
        assert!(matches!(
            receive(&s, &delivery(&json!({"messages": []}), SECRET)),
            Err(EventError::Malformed(_))
        ));
    }

    #[test]
    fn account_subdomains_come_from_web_urls() {
        assert_eq!(
            account_of("https://acme.pagerduty.com/services/P1"),
            Some("acme")
        );
        assert_eq!(account_of("https://acme.eu.pagerduty.com/x"), Some("acme"));
        assert_eq!(account_of("https://api.example.com/services/P1"), None);
        assert_eq!(account_of("https://pagerduty.com/"), None);
    }
}
