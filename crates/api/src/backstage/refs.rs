//! Entities by refs (`POST /entities/by-refs`), by uid and their ancestry.

use axum::Json;
use axum::body::Bytes;
use axum::extract::rejection::PathRejection;
use axum::extract::{Path, RawQuery, State};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use serde_json::{Value, json};
use surveyor_store::{EntityFilter, EntityRow};

use super::{
    backstage_err, checked_fields, flatten, matches, named_entity, only, params, parse_filters,
};
use crate::error::ApiError;
use crate::{AppState, input, views};

/// Refs per by-refs request: the catalog client sends at most 1,000 at a time.
const MAX_REFS: usize = 1000;

#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct ByRefs {
    entity_refs: Vec<String>,
    #[serde(default)]
    fields: Vec<String>,
}

/// The ref key of a `[kind:][namespace/]name` ref as clients send it (a kind is required, as
/// Backstage requires one here).
fn ref_key(r: &str) -> Result<String, ApiError> {
    input::value("entityRefs", r)?;
    if !r.contains(':') {
        return Err(ApiError::BadRequest(format!(
            "entity ref {r:?} has no kind"
        )));
    }
    surveyor_model::EntityRef::parse_with(r, None, surveyor_model::DEFAULT_NAMESPACE)
        .map(|e| e.key())
        .map_err(|e| ApiError::BadRequest(format!("entity ref {r:?}: {e}")))
}

/// `POST /api/catalog/entities/by-refs?filter=...` with `{entityRefs, fields?}`:
/// `{items: [entity | null, ...]}` in the order asked, `null` for a ref that names no entity
/// or one the filter does not select.
pub async fn by_refs(
    State(state): State<AppState>,
    RawQuery(raw): RawQuery,
    body: Bytes,
) -> Response {
    async fn inner(
        state: AppState,
        raw: Option<String>,
        body: Bytes,
    ) -> Result<Response, ApiError> {
        let p = params(raw.as_deref());
        only(&p, &["filter"])?;
        let alternatives = parse_filters(p.get("filter").map(Vec::as_slice).unwrap_or_default())?;
        let request: ByRefs = serde_json::from_slice(&body).map_err(|e| {
            ApiError::BadRequest(format!(
                "the body must be {{\"entityRefs\": [...], \"fields\"?: [...]}}: {e}"
            ))
        })?;
        if request.entity_refs.len() > MAX_REFS {
            return Err(ApiError::BadRequest(format!(
                "{} entity refs; at most {MAX_REFS} per request",
                request.entity_refs.len()
            )));
        }
        checked_fields("fields", &request.fields)?;
        let keys: Vec<String> = request
            .entity_refs
            .iter()
            .map(|r| ref_key(r))
            .collect::<Result<_, _>>()?;
        let mut rows: std::collections::BTreeMap<String, EntityRow> = Default::default();
        for key in &keys {
            if !rows.contains_key(key)
                && let Some(row) = state
                    .store
                    .get_entity(key)
                    .await?
                    .filter(EntityRow::is_live)
            {
                rows.insert(key.clone(), row);
            }
        }
        let found: Vec<EntityRow> = rows.into_values().collect();
        let docs: std::collections::BTreeMap<String, Value> = found
            .iter()
            .map(|r| r.entity_ref.clone())
            .zip(super::documents(&state, &found).await?)
            .filter(|(_, d)| matches(&flatten(d), &alternatives))
            .collect();
        let items: Vec<Value> = keys
            .iter()
            .map(|k| {
                docs.get(k)
                    .map(|d| views::project(d, &request.fields))
                    .unwrap_or(Value::Null)
            })
            .collect();
        Ok(Json(json!({"items": items})).into_response())
    }
    inner(state, raw, body).await.unwrap_or_else(backstage_err)
}

/// `GET /api/catalog/entities/by-uid/{uid}`. The store has no index on uids, so this reads the
/// catalog a page at a time until it finds the entity (under the expensive-request limit).
pub async fn by_uid(
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
        let Path(uid) = path.map_err(input::bad_path)?;
        input::value("uid", &uid)?;
        let _permit = state.expensive("/api/catalog/entities/by-uid").await?;
        let chunk = i64::from(state.config.max_page_size.max(1));
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
            if let Some(row) = rows.iter().find(|r| r.uid == uid) {
                let relations = state.store.relations_of(&row.entity_ref).await?;
                return Ok(Json(views::backstage(row, &relations)).into_response());
            }
            match rows.last() {
                Some(last) if rows.len() as i64 == chunk => after = Some(last.entity_ref.clone()),
                _ => break,
            }
        }
        Err(ApiError::NotFound(format!(
            "No entity with uid {uid} found"
        )))
    }
    inner(state, path, raw).await.unwrap_or_else(backstage_err)
}

/// `GET /api/catalog/entities/by-name/{kind}/{namespace}/{name}/ancestry`:
/// `{rootEntityRef, items: [{entity, parentEntityRefs}]}`. surveyor's entities come from
/// connectors, not from Backstage locations, so no entity has parents: the root only.
pub async fn ancestry(
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
        Ok(Json(json!({
            "rootEntityRef": display_ref(&doc),
            "items": [{"entity": doc, "parentEntityRefs": []}],
        }))
        .into_response())
    }
    inner(state, path, raw).await.unwrap_or_else(backstage_err)
}

/// `kind:namespace/name` as Backstage stringifies refs (kind and namespace lower-cased).
pub(crate) fn display_ref(doc: &Value) -> String {
    let s = |v: &Value| v.as_str().unwrap_or_default().to_string();
    format!(
        "{}:{}/{}",
        s(&doc["kind"]).to_lowercase(),
        s(&doc["metadata"]["namespace"]).to_lowercase(),
        s(&doc["metadata"]["name"])
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refs_need_a_kind_and_default_their_namespace() {
        assert_eq!(
            ref_key("Component:web").ok().as_deref(),
            Some("component:default/web")
        );
        assert!(ref_key("web").is_err());
        assert!(ref_key("component:default/").is_err());
    }
}
