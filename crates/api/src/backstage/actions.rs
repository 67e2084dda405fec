//! Backstage's catalog actions: `POST /refresh` queues syncs of the connectors that describe
//! the entity; `POST /validate-entity` checks an entity with the model's validation; the write
//! routes (`POST /locations`, `DELETE /locations/{id}`, `DELETE /entities/by-uid/{uid}`) are
//! refused with 403 NotAllowedError, as Backstage's own read-only mode (`catalog.readonly`)
//! refuses them: the catalog is what the connectors find, not what clients register.

use axum::body::Bytes;
use axum::extract::{RawQuery, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use serde_json::{Value, json};
use surveyor_model::TriggerRefusal;

use super::{backstage_err, only, params};
use crate::error::ApiError;
use crate::{AppState, input};

#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct Refresh {
    entity_ref: String,
}

/// `POST /api/catalog/refresh` with `{entityRef}`: 200 with no body once a sync of every
/// connector that describes the entity is queued (or already running); 404 for an unknown
/// entity. Without connectors to run (a read-only API) it is refused.
pub async fn refresh(
    State(state): State<AppState>,
    RawQuery(raw): RawQuery,
    body: Bytes,
) -> Response {
    async fn inner(
        state: AppState,
        raw: Option<String>,
        body: Bytes,
    ) -> Result<Response, ApiError> {
        only(&params(raw.as_deref()), &[])?;
        let request: Refresh = serde_json::from_slice(&body).map_err(|e| {
            ApiError::BadRequest(format!(
                "the body must be {{\"entityRef\": \"kind:namespace/name\"}}: {e}"
            ))
        })?;
        input::value("entityRef", &request.entity_ref)?;
        let key = surveyor_model::EntityRef::parse_with(
            &request.entity_ref,
            None,
            surveyor_model::DEFAULT_NAMESPACE,
        )
        .map_err(|e| ApiError::BadRequest(format!("entityRef: {e}")))?
        .key();
        let Some(row) = state.store.get_entity(&key).await?.filter(|r| r.is_live()) else {
            return Err(ApiError::NotFound(format!(
                "No entity named '{}' found",
                request.entity_ref
            )));
        };
        let Some(control) = &state.control else {
            return Err(ApiError::Forbidden(
                "this server runs no connectors, so it cannot refresh entities; the process \
                 that runs them (surveyor serve) can"
                    .into(),
            ));
        };
        let claims: Value = serde_json::from_str(&row.sources).unwrap_or(Value::Null);
        let mut sources: Vec<&str> = claims
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|c| c["source"].as_str())
            .collect();
        sources.sort_unstable();
        sources.dedup();
        let mut queued = 0;
        for source in &sources {
            match control.trigger(source) {
                // A run under way reads the entity's source again anyway.
                Ok(()) | Err(TriggerRefusal::Busy(_)) => queued += 1,
                // A connector since removed from the configuration: nothing to run.
                Err(TriggerRefusal::Unknown(_)) => {}
                Err(TriggerRefusal::Stopped) => {
                    return Err(ApiError::Unavailable(
                        "the scheduler is shutting down".into(),
                    ));
                }
            }
        }
        if queued == 0 {
            return Err(ApiError::Conflict(format!(
                "no configured connector describes {key} (its sources: {})",
                sources.join(", ")
            )));
        }
        Ok(StatusCode::OK.into_response())
    }
    inner(state, raw, body).await.unwrap_or_else(backstage_err)
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Validate {
    entity: Value,
    location: String,
}

/// Backstage's serialised error, as `validate-entity` lists them.
fn serialized(name: &str, message: impl Into<String>) -> Value {
    json!({"name": name, "message": message.into()})
}

/// `POST /api/catalog/validate-entity` with `{entity, location}`: 200 with no body when the
/// entity is valid, else 400 with `{errors: [{name, message}]}` (Backstage's answer). As in
/// Backstage, the location must be a `url:` location ref.
pub async fn validate_entity(
    State(_state): State<AppState>,
    RawQuery(raw): RawQuery,
    body: Bytes,
) -> Response {
    if let Err(e) = only(&params(raw.as_deref()), &[]) {
        return backstage_err(e);
    }
    let request: Validate = match serde_json::from_slice(&body) {
        Ok(r) => r,
        Err(e) => {
            return invalid(vec![serialized(
                "InputError",
                format!("the body must be {{\"entity\": {{...}}, \"location\": \"url:...\"}}: {e}"),
            )]);
        }
    };
    match request.location.split_once(':') {
        Some(("url", target)) if !target.is_empty() => {}
        _ => {
            return invalid(vec![serialized(
                "TypeError",
                format!(
                    "Invalid location ref {:?}, only 'url:<target>' is supported, e.g. \
                     url:https://host/path",
                    request.location
                ),
            )]);
        }
    }
    match surveyor_model::Entity::from_value(request.entity) {
        Ok(entity) => match entity.entity_ref() {
            Ok(_) => StatusCode::OK.into_response(),
            Err(e) => invalid(vec![serialized(
                "InputError",
                format!("metadata.name: {e}"),
            )]),
        },
        Err(e) => invalid(
            e.errors
                .iter()
                .map(|f| serialized("InputError", f.to_string()))
                .collect(),
        ),
    }
}

fn invalid(errors: Vec<Value>) -> Response {
    (
        StatusCode::BAD_REQUEST,
        axum::Json(json!({"errors": errors})),
    )
        .into_response()
}

/// `POST /locations`, `DELETE /locations/{id}`, `DELETE /entities/by-uid/{uid}`: 403
/// NotAllowedError, as Backstage answers in read-only mode.
pub async fn read_only() -> Response {
    backstage_err(ApiError::Forbidden(
        "This operation not allowed in readonly mode: surveyor's catalog is what its \
         connectors find; configure a connector instead"
            .into(),
    ))
}
