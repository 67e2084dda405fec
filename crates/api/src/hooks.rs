//! `POST /hooks/{connector}`: vendor webhooks, taken as hints. The connector verifies each
//! delivery's signature with its own secret (no bearer token: vendors cannot send one) and
//! names what to read again; the scheduler coalesces and refreshes it.

use axum::Json;
use axum::body::Bytes;
use axum::extract::rejection::PathRejection;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use surveyor_model::{Accepted, Delivery, DeliveryRefusal, EventError};

use crate::bodies::{ErrorBody, HookAnswer};
use crate::error::ApiError;
use crate::{AppState, input};

/// Takes a webhook delivery for one connector. Signed deliveries about things the connector
/// reads are queued (`202`); replays and events it does not use are acknowledged (`202`) and
/// change nothing; a bad signature is `401`, a malformed payload `400`.
#[utoipa::path(post, path = "/hooks/{connector}", tag = "runs",
    params(("connector" = String, Path, description = "The connector's id (`[[connectors]] id`).", example = "github")),
    request_body(content = String, content_type = "application/json", description = "The vendor's payload, as it sent it"),
    responses((status = 202, description = "queued, a replay, or ignored", body = HookAnswer),
        (status = 400, description = "a malformed payload", body = ErrorBody),
        (status = 401, description = "unsigned, or not signed with the connector's secret", body = ErrorBody),
        (status = 404, description = "no such connector, or it takes no webhooks", body = ErrorBody),
        (status = 413, description = "the body is over 256 KiB", body = ErrorBody),
        (status = 503, description = "this server runs no connectors, or is shutting down", body = ErrorBody)),
    security(()))]
pub async fn deliver(
    State(state): State<AppState>,
    path: Result<Path<String>, PathRejection>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, ApiError> {
    let Path(id) = path.map_err(input::bad_path)?;
    input::value("connector id", &id)?;
    let control = state
        .control
        .as_ref()
        .ok_or_else(|| ApiError::Unavailable("this server runs no connectors".into()))?;
    let delivery = Delivery {
        headers: headers
            .iter()
            .filter_map(|(k, v)| {
                Some((
                    k.as_str().to_ascii_lowercase(),
                    v.to_str().ok()?.to_string(),
                ))
            })
            .collect(),
        body: body.to_vec(),
    };
    let answer = |a: HookAnswer| (StatusCode::ACCEPTED, Json(a)).into_response();
    match control.deliver(&id, delivery) {
        Ok(Accepted::Queued { targets }) => Ok(answer(HookAnswer {
            queued: Some(targets),
            ..HookAnswer::default()
        })),
        Ok(Accepted::Duplicate) => Ok(answer(HookAnswer {
            duplicate: true,
            ..HookAnswer::default()
        })),
        Err(DeliveryRefusal::Event(EventError::Ignored(why))) => Ok(answer(HookAnswer {
            ignored: Some(why),
            ..HookAnswer::default()
        })),
        Err(DeliveryRefusal::Event(EventError::Unauthorized)) => Err(ApiError::Unauthorized(
            "the delivery is not signed with this connector's webhook secret".into(),
        )),
        Err(DeliveryRefusal::Event(EventError::Malformed(m))) => Err(ApiError::BadRequest(m)),
        Err(DeliveryRefusal::Event(EventError::Unsupported(m))) => Err(ApiError::NotFound(m)),
        Err(DeliveryRefusal::Unknown(id)) => {
            Err(ApiError::NotFound(format!("no connector {id:?}")))
        }
        Err(DeliveryRefusal::Stopped) => Err(ApiError::Unavailable("shutting down".into())),
    }
}

#[cfg(test)]
mod tests {
    use std::sync::{Arc, Mutex};

    use surveyor_model::{
        Accepted, ConnectorView, Control, Delivery, DeliveryRefusal, EventError, TriggerRefusal,
    };

    use crate::ApiConfig;
    use crate::test_support::sync_and_serve;

    /// Answers by the delivery's `x-case` header, and keeps what it was handed.
    #[derive(Default)]
    struct Hooked {
        seen: Mutex<Vec<Delivery>>,
    }

    impl Control for Hooked {
        fn connectors(&self) -> Vec<ConnectorView> {
            Vec::new()
        }
        fn trigger(&self, id: &str) -> Result<(), TriggerRefusal> {
            Err(TriggerRefusal::Unknown(id.into()))
        }
        fn deliver(&self, id: &str, delivery: Delivery) -> Result<Accepted, DeliveryRefusal> {
            let case = delivery.header("x-case").unwrap_or_default().to_string();
            self.seen.lock().expect("lock").push(delivery);
            if id != "gh" {
                return Err(DeliveryRefusal::Unknown(id.into()));
            }
            match case.as_str() {
                "queued" => Ok(Accepted::Queued { targets: 2 }),
                "duplicate" => Ok(Accepted::Duplicate),
                "ignored" => Err(EventError::Ignored("another org".into()).into()),
                "unsigned" => Err(EventError::Unauthorized.into()),
                "malformed" => Err(EventError::Malformed("not JSON".into()).into()),
                _ => Err(EventError::Unsupported("no webhooks".into()).into()),
            }
        }
    }

    #[tokio::test]
    async fn deliveries_reach_the_connector_without_a_bearer_token_and_answer_by_outcome() {
        let store = surveyor_store::Store::connect("sqlite::memory:")
            .await
            .expect("store");
        let control = Arc::new(Hooked::default());
        // Read tokens guard the API; webhooks carry their own signature instead.
        let config = ApiConfig {
            read_tokens: vec![surveyor_model::Secret::new("r")],
            ..ApiConfig::default()
        };
        let (addr, _task) = sync_and_serve(
            store,
            Vec::new(),
            config,
            Some(control.clone() as Arc<dyn Control>),
        )
        .await;
        let client = reqwest::Client::new();
        let post = |path: &str, case: &str| {
            client
                .post(format!("http://{addr}{path}"))
                .header("X-Case", case)
                .header("X-GitHub-Event", "repository")
                .body("{\"action\":\"created\"}")
                .send()
        };
        for (case, status, body) in [
            ("queued", 202, "{\"queued\":2}"),
            ("duplicate", 202, "{\"duplicate\":true}"),
            ("ignored", 202, "{\"ignored\":\"another org\"}"),
            ("unsigned", 401, "webhook secret"),
            ("malformed", 400, "not JSON"),
            ("off", 404, "no webhooks"),
        ] {
            let r = post("/hooks/gh", case).await.expect("post");
            assert_eq!(r.status().as_u16(), status, "{case}");
            let text = r.text().await.expect("body");
            assert!(text.contains(body), "{case}: {text}");
        }
        assert_eq!(
            post("/hooks/nope", "queued")
                .await
                .expect("post")
                .status()
                .as_u16(),
            404
        );
        {
            let seen = control.seen.lock().expect("lock");
            assert_eq!(seen[0].header("x-github-event"), Some("repository"));
            assert_eq!(seen[0].body, b"{\"action\":\"created\"}");
        }
        // Oversized bodies are refused before any connector sees them.
        let before = control.seen.lock().expect("lock").len();
        let big = client
            .post(format!("http://{addr}/hooks/gh"))
            .header("X-Case", "queued")
            .body(vec![b'x'; crate::input::MAX_BODY_BYTES + 1])
            .send()
            .await
            .expect("post");
        assert_eq!(big.status().as_u16(), 413);
        assert_eq!(control.seen.lock().expect("lock").len(), before);
    }
}
