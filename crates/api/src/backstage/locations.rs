//! Locations, as Backstage lists them: surveyor registers none, so its locations are the
//! distinct `backstage.io/managed-by-origin-location` values of the live entities (a descriptor
//! file, a repository, a connector), each `{id, type, target}` with an id derived from the
//! location itself, so it is the same on every replica and across restarts.

use axum::Json;
use axum::extract::rejection::PathRejection;
use axum::extract::{Path, RawQuery, State};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};
use surveyor_store::EntityFilter;

use super::{backstage_err, named_entity, only, params};
use crate::error::ApiError;
use crate::{AppState, input, views};

/// A location as Backstage answers it, from its `type:target` ref.
fn location_json(location_ref: &str) -> Value {
    let (kind, target) = location_ref
        .split_once(':')
        .unwrap_or(("surveyor", location_ref));
    json!({"id": location_id(location_ref), "type": kind, "target": target})
}

/// A UUID-shaped id (Backstage's ids are UUIDs) from the location ref's SHA-256.
fn location_id(location_ref: &str) -> String {
    let h = surveyor_model::hash::sha256_hex(location_ref.as_bytes());
    format!(
        "{}-{}-{}-{}-{}",
        &h[0..8],
        &h[8..12],
        &h[12..16],
        &h[16..20],
        &h[20..32]
    )
}

/// Every distinct origin location of the live entities, sorted, read a page at a time.
async fn all_locations(state: &AppState) -> Result<Vec<String>, ApiError> {
    let chunk = i64::from(state.config.max_page_size.max(1));
    let mut out = std::collections::BTreeSet::new();
    let mut after = None;
    loop {
        let rows = state
            .store
            .list_entities(&EntityFilter {
                after: after.clone(),
                limit: Some(chunk),
                ..EntityFilter::default()
            })
            .await?;
        for row in &rows {
            let body: Value = serde_json::from_str(&row.body).unwrap_or(Value::Null);
            let origin = body["metadata"]["annotations"][views::MANAGED_BY_ORIGIN_LOCATION]
                .as_str()
                .map(str::to_string)
                .unwrap_or_else(|| views::location_of(row, &body));
            out.insert(origin);
        }
        match rows.last() {
            Some(last) if rows.len() as i64 == chunk => after = Some(last.entity_ref.clone()),
            _ => break,
        }
    }
    Ok(out.into_iter().collect())
}

/// `GET /api/catalog/locations`: `[{data: {id, type, target}}]`. Reads every entity (under the
/// expensive-request limit).
pub async fn locations(State(state): State<AppState>, RawQuery(raw): RawQuery) -> Response {
    async fn inner(state: AppState, raw: Option<String>) -> Result<Response, ApiError> {
        only(&params(raw.as_deref()), &[])?;
        let _permit = state.expensive("/api/catalog/locations").await?;
        let list: Vec<Value> = all_locations(&state)
            .await?
            .iter()
            .map(|l| json!({"data": location_json(l)}))
            .collect();
        Ok(Json(list).into_response())
    }
    inner(state, raw).await.unwrap_or_else(backstage_err)
}

/// `GET /api/catalog/locations/{id}`: `{id, type, target}`, or 404.
pub async fn location(
    State(state): State<AppState>,
    path: Result<Path<String>, PathRejection>,
    RawQuery(raw): RawQuery,
) -> Response {
    async fn inner(
        state: AppState,
        path: Result<Path<String>, PathRejection>,
        raw: Option<String>,
    ) -> Result<Response, ApiError> {
        only(&params(raw.as_deref()), &[])?;
        let Path(id) = path.map_err(input::bad_path)?;
        input::value("id", &id)?;
        let _permit = state.expensive("/api/catalog/locations").await?;
        let found = all_locations(&state)
            .await?
            .into_iter()
            .find(|l| location_id(l) == id)
            .ok_or_else(|| ApiError::NotFound(format!("Found no location with ID {id}")))?;
        Ok(Json(location_json(&found)).into_response())
    }
    inner(state, path, raw).await.unwrap_or_else(backstage_err)
}

/// `GET /api/catalog/locations/by-entity/{kind}/{namespace}/{name}`: the location the entity's
/// `backstage.io/managed-by-origin-location` names, or 404 when there is no such entity.
pub async fn location_by_entity(
    State(state): State<AppState>,
    path: Result<Path<(String, String, String)>, PathRejection>,
    RawQuery(raw): RawQuery,
) -> Response {
    async fn inner(
        state: AppState,
        path: Result<Path<(String, String, String)>, PathRejection>,
        raw: Option<String>,
    ) -> Result<Response, ApiError> {
        let doc = named_entity(&state, path, raw.as_deref()).await?;
        let origin = doc["metadata"]["annotations"][views::MANAGED_BY_ORIGIN_LOCATION]
            .as_str()
            .unwrap_or_default();
        Ok(Json(location_json(origin)).into_response())
    }
    inner(state, path, raw).await.unwrap_or_else(backstage_err)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn locations_split_their_ref_and_have_stable_uuid_shaped_ids() {
        let l = location_json("url:https://github.com/acme/web/blob/main/catalog-info.yaml");
        assert_eq!(l["type"], "url");
        assert_eq!(
            l["target"],
            "https://github.com/acme/web/blob/main/catalog-info.yaml"
        );
        let id = l["id"].as_str().unwrap_or_default();
        assert_eq!(id.len(), 36);
        assert_eq!(id.matches('-').count(), 4);
        assert_eq!(
            location_json("file:a.yaml")["id"],
            location_json("file:a.yaml")["id"]
        );
        assert_ne!(
            location_json("file:a.yaml")["id"],
            location_json("file:b.yaml")["id"]
        );
    }
}
