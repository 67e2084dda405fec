//! GitHub webhooks as hints: a delivery is checked against `webhook_secret`
//! (`X-Hub-Signature-256`), and its event says what to read again — a repository, a team, or
//! the organisation's members. Nothing here is taken as the truth.

use serde_json::Value;
use surveyor_http::webhook::hmac_sha256_matches;
use surveyor_model::{Delivery, EventError, Received, Target};

use crate::config::Settings;

/// Reads a delivery: who sent it, and what it names.
pub fn receive(settings: &Settings, delivery: &Delivery) -> Result<Received, EventError> {
    let secret = settings.webhook_secret.as_ref().ok_or_else(|| {
        EventError::Unsupported(
            "webhooks are off for this connector: set webhook_secret to the hook's secret".into(),
        )
    })?;
    let signature = delivery
        .header("x-hub-signature-256")
        .and_then(|s| s.trim().strip_prefix("sha256="))
        .ok_or(EventError::Unauthorized)?;
    if !hmac_sha256_matches(secret.expose().as_bytes(), &delivery.body, signature) {
        return Err(EventError::Unauthorized);
    }
    let event = delivery
        .header("x-github-event")
        .ok_or_else(|| EventError::Malformed("no X-GitHub-Event header".into()))?;
    let body: Value = serde_json::from_slice(&delivery.body)
        .map_err(|e| EventError::Malformed(format!("the body is not JSON: {e}")))?;
    let received = |targets| Received {
        delivery_id: delivery.header("x-github-delivery").map(str::to_string),
        targets,
    };
    if event == "ping" {
        return Err(EventError::Ignored("ping: the hook is set up".into()));
    }
    let org = body["organization"]["login"]
        .as_str()
        .or(body["repository"]["owner"]["login"].as_str())
        .ok_or_else(|| EventError::Malformed(format!("a {event} event names no organisation")))?;
    let Some(org) = settings
        .orgs
        .iter()
        .find(|o| o.eq_ignore_ascii_case(org))
        .cloned()
    else {
        return Err(EventError::Ignored(format!(
            "organisation {org:?} is not one this connector crawls"
        )));
    };
    let target = |kind: &str, key: &str| Target {
        scope: org.clone(),
        kind: kind.into(),
        key: key.into(),
    };
    let node = |v: &Value, what: &str| {
        v["node_id"]
            .as_str()
            .map(str::to_string)
            .ok_or_else(|| EventError::Malformed(format!("a {event} event without {what}.node_id")))
    };
    let targets = match event {
        // Created, renamed, archived, transferred, deleted...: the repository, by its node id
        // (a rename keeps it), read again.
        "repository" | "member" => vec![target(
            "repository",
            &node(&body["repository"], "repository")?,
        )],
        "push" => {
            let repo = &body["repository"];
            let default = repo["default_branch"].as_str().unwrap_or("main");
            let on_default = body["ref"].as_str() == Some(&format!("refs/heads/{default}"));
            if !on_default {
                return Err(EventError::Ignored(
                    "a push to a branch other than the default".into(),
                ));
            }
            if !surveyor_repofiles::forge::push_touches_read_files(&body) {
                return Err(EventError::Ignored(
                    "a push that touches no file the catalog reads".into(),
                ));
            }
            vec![target("repository", &node(repo, "repository")?)]
        }
        "team" | "membership" => vec![target("team", &node(&body["team"], "team")?)],
        "organization" => vec![target("members", &org)],
        other => {
            return Err(EventError::Ignored(format!(
                "{other} events change nothing the catalog reads"
            )));
        }
    };
    Ok(received(targets))
}

#[cfg(test)]
mod tests {
    use serde_json::json;
    use surveyor_http::webhook::hmac_sha256_hex;

    use super::*;
    use crate::config::GithubConfig;

    const SECRET: &str = "It's a Secret to Everybody";

    fn settings(secret: Option<&str>) -> Settings {
        let mut toml = "orgs = [\"acme\"]\ntoken = \"t\"\n".to_string();
        if let Some(s) = secret {
            toml.push_str(&format!("webhook_secret = {s:?}\n"));
        }
        let config: GithubConfig = toml::from_str(&toml).expect("config");
        let dir = tempfile::tempdir().expect("dir");
        config.settings("gh", dir.path()).expect("settings")
    }

    fn delivery(event: &str, body: &Value, secret: &str) -> Delivery {
        let body = serde_json::to_vec(body).expect("json");
        let mut headers = std::collections::BTreeMap::new();
        headers.insert("x-github-event".into(), event.into());
        headers.insert(
            "x-github-delivery".into(),
            "72d3162e-cc78-11e3-81ab-4c9367dc0958".into(),
        );
        headers.insert(
            "x-hub-signature-256".into(),
            format!("sha256={}", hmac_sha256_hex(secret.as_bytes(), &body)),
        );
        Delivery { headers, body }
    }

    fn repository(action: &str) -> Value {
        json!({
            "action": action,
            "changes": {"repository": {"name": {"from": "payments-old"}}},
            "repository": {"id": 1296269, "node_id": "R_kgDOpayments", "name": "payments",
                           "full_name": "acme/payments", "default_branch": "main",
                           "owner": {"login": "acme", "type": "Organization"}},
            "organization": {"login": "acme", "node_id": "O_acme"},
            "sender": {"login": "octocat"}
        })
    }

    fn push(git_ref: &str, modified: &[&str]) -> Value {
        json!({
            "ref": git_ref,
            "repository": {"node_id": "R_kgDOpayments", "name": "payments", "default_branch": "main",
                           "owner": {"login": "acme"}},
            "organization": {"login": "acme"},
            "commits": [{"id": "abc", "added": [], "removed": [], "modified": modified}],
            "head_commit": {"id": "abc", "added": [], "removed": [], "modified": modified}
        })
    }

    fn repo_target(key: &str) -> Target {
        Target {
            scope: "acme".into(),
            kind: "repository".into(),
            key: key.into(),
        }
    }

    #[test]
    fn a_signed_repository_event_names_the_repository_by_its_node_id() {
        let s = settings(Some(SECRET));
        for action in ["created", "renamed", "archived", "transferred", "deleted"] {
            let got = receive(&s, &delivery("repository", &repository(action), SECRET))
                .expect("received");
            assert_eq!(got.targets, [repo_target("R_kgDOpayments")], "{action}");
            assert_eq!(
                got.delivery_id.as_deref(),
                Some("72d3162e-cc78-11e3-81ab-4c9367dc0958")
            );
        }
    }

    #[test]
    fn an_unsigned_or_wrongly_signed_delivery_is_refused() {
        let s = settings(Some(SECRET));
        let wrong = delivery("repository", &repository("deleted"), "another secret");
        assert_eq!(receive(&s, &wrong), Err(EventError::Unauthorized));
        let mut unsigned = delivery("repository", &repository("deleted"), SECRET);
        unsigned.headers.remove("x-hub-signature-256");
        assert_eq!(receive(&s, &unsigned), Err(EventError::Unauthorized));
        // A body changed after signing.
        let mut tampered = delivery("repository", &repository("created"), SECRET);
        tampered.body = serde_json::to_vec(&repository("deleted")).expect("json");
        assert_eq!(receive(&s, &tampered), Err(EventError::Unauthorized));
        // Without a secret configured the connector takes no webhooks at all.
        let off = settings(None);
        assert!(matches!(
            receive(
                &off,
                &delivery("repository", &repository("created"), SECRET)
            ),
            Err(EventError::Unsupported(_))
        ));
    }

    #[test]
    fn pushes_count_only_on_the_default_branch_and_for_files_the_catalog_reads() {
        let s = settings(Some(SECRET));
        for path in [
            ".github/CODEOWNERS",
            "catalog-info.yaml",
            "apps/web/package.json",
            "pom.xml",
        ] {
            let got = receive(
                &s,
                &delivery("push", &push("refs/heads/main", &[path]), SECRET),
            )
            .expect("received");
            assert_eq!(got.targets, [repo_target("R_kgDOpayments")], "{path}");
        }
        assert!(matches!(
            receive(
                &s,
                &delivery("push", &push("refs/heads/main", &["README.md"]), SECRET)
            ),
            Err(EventError::Ignored(_))
        ));
        assert!(matches!(
            receive(
                &s,
                &delivery("push", &push("refs/heads/feature", &["CODEOWNERS"]), SECRET)
            ),
            Err(EventError::Ignored(_))
        ));
    }

    #[test]
    fn teams_members_other_orgs_and_bad_payloads() {
        let s = settings(Some(SECRET));
        let team = json!({"action": "added", "team": {"node_id": "T_payments", "slug": "payments"},
                          "organization": {"login": "ACME"}});
        let got = receive(&s, &delivery("membership", &team, SECRET)).expect("received");
        assert_eq!(got.targets[0].kind, "team");
        assert_eq!(got.targets[0].key, "T_payments");
        assert_eq!(
            got.targets[0].scope, "acme",
            "the configured login, whatever the case"
        );
        let org = json!({"action": "member_removed", "organization": {"login": "acme"},
                         "membership": {"user": {"login": "kim"}}});
        let got = receive(&s, &delivery("organization", &org, SECRET)).expect("received");
        assert_eq!(got.targets[0].kind, "members");
        let mut elsewhere = repository("created");
        elsewhere["organization"]["login"] = json!("other-org");
        elsewhere["repository"]["owner"]["login"] = json!("other-org");
        assert!(matches!(
            receive(&s, &delivery("repository", &elsewhere, SECRET)),
            Err(EventError::Ignored(_))
        ));
        assert!(matches!(
            receive(
                &s,
                &delivery(
                    "ping",
                    &json!({"zen": "Keep it logically awesome."}),
                    SECRET
                )
            ),
            Err(EventError::Ignored(_))
        ));
        assert!(matches!(
            receive(&s, &delivery("star", &repository("created"), SECRET)),
            Err(EventError::Ignored(_))
        ));
        let mut garbage = delivery("repository", &json!({}), SECRET);
        garbage.body = b"{not json".to_vec();
        let sig = hmac_sha256_hex(SECRET.as_bytes(), &garbage.body);
        garbage
            .headers
            .insert("x-hub-signature-256".into(), format!("sha256={sig}"));
        assert!(matches!(
            receive(&s, &garbage),
            Err(EventError::Malformed(_))
        ));
        let no_node = json!({"action": "created", "repository": {"name": "x", "owner": {"login": "acme"}},
                             "organization": {"login": "acme"}});
        assert!(matches!(
            receive(&s, &delivery("repository", &no_node, SECRET)),
            Err(EventError::Malformed(_))
        ));
    }
}
