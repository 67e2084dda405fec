//! GitLab group webhooks as hints: a delivery must carry the hook's secret token
//! (`X-Gitlab-Token`), and its event says what to read again — a project, a subgroup, or a
//! group's members. Nothing here is taken as the truth.

use serde_json::Value;
use surveyor_model::{Delivery, EventError, Received, Target};

use crate::config::Settings;

/// Reads a delivery: who sent it, and what it names.
pub fn receive(settings: &Settings, delivery: &Delivery) -> Result<Received, EventError> {
    let secret = settings.webhook_secret.as_ref().ok_or_else(|| {
        EventError::Unsupported(
            "webhooks are off for this connector: set webhook_secret to the hook's secret token"
                .into(),
        )
    })?;
    let token = delivery
        .header("x-gitlab-token")
        .ok_or(EventError::Unauthorized)?;
    if !secret.matches(token) {
        return Err(EventError::Unauthorized);
    }
    let event = delivery
        .header("x-gitlab-event")
        .ok_or_else(|| EventError::Malformed("no X-Gitlab-Event header".into()))?;
    let body: Value = serde_json::from_slice(&delivery.body)
        .map_err(|e| EventError::Malformed(format!("the body is not JSON: {e}")))?;
    let delivery_id = delivery
        .header("x-gitlab-event-uuid")
        .or(delivery.header("idempotency-key"))
        .map(str::to_string);
    let text = |v: &Value, what: &str| {
        v.as_str()
            .map(str::to_string)
            .ok_or_else(|| EventError::Malformed(format!("a {event} without {what}")))
    };
    let id = |v: &Value, what: &str| match v {
        Value::Number(n) => Ok(n.to_string()),
        _ => Err(EventError::Malformed(format!("a {event} without {what}"))),
    };
    let targets = match event {
        "Push Hook" => {
            let project = &body["project"];
            let path = text(
                &project["path_with_namespace"],
                "project.path_with_namespace",
            )?;
            let scope = scope_of(settings, &path)?;
            let default = project["default_branch"].as_str().unwrap_or("main");
            if body["ref"].as_str() != Some(&format!("refs/heads/{default}")) {
                return Err(EventError::Ignored(
                    "a push to a branch other than the default".into(),
                ));
            }
            if !surveyor_repofiles::forge::push_touches_read_files(&body) {
                return Err(EventError::Ignored(
                    "a push that touches no file the catalog reads".into(),
                ));
            }
            vec![project_target(
                scope,
                id(&body["project_id"], "project_id")?,
            )]
        }
        // project_create, project_destroy, project_rename, project_transfer.
        "Project Hook" => {
            let path = text(&body["path_with_namespace"], "path_with_namespace")?;
            let scope = scope_of(settings, &path).or_else(|e| {
                match body["old_path_with_namespace"].as_str() {
                    // Moved here from elsewhere, or away from here.
                    Some(old) => scope_of(settings, old),
                    None => Err(e),
                }
            })?;
            vec![project_target(
                scope,
                id(&body["project_id"], "project_id")?,
            )]
        }
        // subgroup_create, subgroup_destroy.
        "Subgroup Hook" => {
            let path = text(&body["full_path"], "full_path")?;
            let scope = scope_of(settings, &path)?;
            vec![Target {
                scope,
                kind: "group".into(),
                key: path,
            }]
        }
        // The payload names the group by its own path only, not where it sits: every
        // configured group whose tree may hold it reads its members again.
        "Member Hook" => {
            let group = text(&body["group_path"], "group_path")?;
            settings
                .groups
                .iter()
                .map(|g| Target {
                    scope: g.clone(),
                    kind: "members".into(),
                    key: group.clone(),
                })
                .collect()
        }
        other => {
            return Err(EventError::Ignored(format!(
                "{other} events change nothing the catalog reads"
            )));
        }
    };
    Ok(Received {
        delivery_id,
        targets,
    })
}

fn project_target(scope: String, id: String) -> Target {
    Target {
        scope,
        kind: "project".into(),
        key: id,
    }
}

/// The configured group (a scope) whose tree holds `path`, compared case-insensitively.
fn scope_of(settings: &Settings, path: &str) -> Result<String, EventError> {
    let path = path.to_lowercase();
    settings
        .groups
        .iter()
        .find(|g| {
            let g = g.to_lowercase();
            path == g || path.starts_with(&format!("{g}/"))
        })
        .cloned()
        .ok_or_else(|| {
            EventError::Ignored(format!("{path:?} is under no group this connector crawls"))
        })
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::config::GitlabConfig;

    fn settings(secret: Option<&str>) -> Settings {
        let mut toml = "groups = [\"acme\"]\ntoken = \"t\"\n".to_string();
        if let Some(s) = secret {
            toml.push_str(&format!("webhook_secret = {s:?}\n"));
        }
        let config: GitlabConfig = toml::from_str(&toml).expect("config");
        let dir = tempfile::tempdir().expect("dir");
        config.settings("gl", dir.path()).expect("settings")
    }

    fn delivery(event: &str, body: &Value, token: &str) -> Delivery {
        let mut headers = std::collections::BTreeMap::new();
        headers.insert("x-gitlab-event".into(), event.into());
        headers.insert("x-gitlab-token".into(), token.into());
        headers.insert(
            "x-gitlab-event-uuid".into(),
            "13792a34-cac6-4fda-95a8-c58e00a3954e".into(),
        );
        Delivery {
            headers,
            body: serde_json::to_vec(body).expect("json"),
        }
    }

    fn push(git_ref: &str, path: &str, modified: &[&str]) -> Value {
        json!({"object_kind": "push", "event_name": "push", "ref": git_ref, "project_id": 15,
               "project": {"id": 15, "path_with_namespace": path, "default_branch": "main"},
               "commits": [{"id": "b6568db1", "added": [], "removed": [], "modified": modified}],
               "total_commits_count": 1})
    }

    #[test]
    fn the_secret_token_must_match() {
        let s = settings(Some("tok"));
        let body = push("refs/heads/main", "acme/billing/api", &["CODEOWNERS"]);
        assert_eq!(
            receive(&s, &delivery("Push Hook", &body, "nope")),
            Err(EventError::Unauthorized)
        );
        let mut none = delivery("Push Hook", &body, "tok");
        none.headers.remove("x-gitlab-token");
        assert_eq!(receive(&s, &none), Err(EventError::Unauthorized));
        assert!(matches!(
            receive(&settings(None), &delivery("Push Hook", &body, "tok")),
            Err(EventError::Unsupported(_))
        ));
        let got = receive(&s, &delivery("Push Hook", &body, "tok")).expect("received");
        assert_eq!(
            got.targets,
            [Target {
                scope: "acme".into(),
                kind: "project".into(),
                key: "15".into()
            }]
        );
        assert_eq!(
            got.delivery_id.as_deref(),
            Some("13792a34-cac6-4fda-95a8-c58e00a3954e")
        );
    }

    #[test]
    fn events_name_projects_subgroups_and_members_under_configured_groups() {
        let s = settings(Some("tok"));
        let ignored = |e: &str, b: &Value| {
            matches!(
                receive(&s, &delivery(e, b, "tok")),
                Err(EventError::Ignored(_))
            )
        };
        assert!(ignored(
            "Push Hook",
            &push("refs/heads/main", "acme/api", &["README.md"])
        ));
        assert!(ignored(
            "Push Hook",
            &push("refs/heads/dev", "acme/api", &["CODEOWNERS"])
        ));
        assert!(ignored(
            "Push Hook",
            &push("refs/heads/main", "other/api", &["CODEOWNERS"])
        ));
        assert!(ignored(
            "Pipeline Hook",
            &json!({"object_kind": "pipeline"})
        ));
        let moved = json!({"event_name": "project_transfer", "path_with_namespace": "elsewhere/api",
                           "old_path_with_namespace": "acme/api", "project_id": 74});
        let got = receive(&s, &delivery("Project Hook", &moved, "tok")).expect("moved away");
        assert_eq!(got.targets[0].key, "74");
        let sub =
            json!({"event_name": "subgroup_create", "full_path": "ACME/platform", "group_id": 9});
        let got = receive(&s, &delivery("Subgroup Hook", &sub, "tok")).expect("subgroup");
        assert_eq!(
            (got.targets[0].kind.as_str(), got.targets[0].scope.as_str()),
            ("group", "acme")
        );
        let member = json!({"event_name": "user_add_to_group", "group_path": "platform", "group_id": 9,
                            "user_username": "kim"});
        let got = receive(&s, &delivery("Member Hook", &member, "tok")).expect("member");
        assert_eq!(got.targets[0].kind, "members");
        let mut garbage = delivery("Push Hook", &json!({}), "tok");
        garbage.body = b"nope".to_vec();
        assert!(matches!(
            receive(&s, &garbage),
            Err(EventError::Malformed(_))
        ));
        assert!(matches!(
            receive(
                &s,
                &delivery(
                    "Project Hook",
                    &json!({"event_name": "project_create"}),
                    "tok"
                )
            ),
            Err(EventError::Malformed(_))
        ));
    }
}
