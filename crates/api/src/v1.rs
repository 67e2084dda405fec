//! `/api/v1`: entities (filtered, cursor-paged), one entity with relations and sources, its
//! graph, history, runs, connectors, and the sync trigger.

use std::collections::{BTreeMap, BTreeSet};

use axum::Json;
use axum::extract::rejection::PathRejection;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use chrono::{DateTime, Utc};
use serde::Deserialize;
use serde_json::{Value, json};
use surveyor_store::{ChangeFilter, ChangeOp, EntityFilter, PackageFilter};
use utoipa::IntoParams;

use crate::error::ApiError;
use crate::{AppState, TriggerRefusal, input, views};

/// Query parameters of `GET /api/v1/entities`.
#[derive(Debug, Default, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
pub struct EntityQuery {
    /// Entity kind (`component`, `group`, ...), case-insensitive.
    pub kind: Option<String>,
    pub namespace: Option<String>,
    /// Owner ref (`group:default/team-a`, or `team-a` for a group in `default`).
    pub owner: Option<String>,
    /// `key=value` on `metadata.labels`.
    pub label: Option<String>,
    /// A connector id: entities that source describes.
    pub source: Option<String>,
    /// Case-insensitive text in the ref, title or description.
    pub q: Option<String>,
    /// `[ecosystem:]package`: who depends on it (`npm:react`, `maven:org.x:y`).
    pub depends_on: Option<String>,
    #[serde(default)]
    pub include_deleted: bool,
    /// Also count every match (`totalItems`); costs a second query.
    #[serde(default)]
    pub total: bool,
    /// Page size (default 100, at most the server's `max_page_size`).
    pub limit: Option<u32>,
    /// `nextCursor` of the previous page.
    pub cursor: Option<String>,
}

pub(crate) fn page_size(limit: Option<u32>, max: u32) -> Result<i64, ApiError> {
    match limit {
        None => Ok(i64::from(100.min(max))),
        Some(0) => Err(ApiError::BadRequest("limit must be at least 1".into())),
        Some(n) if n > max => Err(ApiError::BadRequest(format!(
            "limit {n} is over this server's max_page_size ({max})"
        ))),
        Some(n) => Ok(i64::from(n)),
    }
}

/// FNV-1a: a stable fingerprint of a query, so a cursor only continues the query it came from.
fn fingerprint(query: &str) -> u64 {
    query.bytes().fold(0xcbf2_9ce4_8422_2325, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
    })
}

/// A cursor: where the page ended, tagged with the kind of list and the query's fingerprint.
pub(crate) fn encode_cursor(list: &str, query: &str, position: &str) -> String {
    URL_SAFE_NO_PAD.encode(format!("{list}.{:016x}.{position}", fingerprint(query)))
}

/// The position a cursor holds, if this server gave it out for this list and this query.
pub(crate) fn decode_cursor(list: &str, query: &str, c: &str) -> Result<String, ApiError> {
    let not_ours = || ApiError::BadRequest("cursor is not one this server gave out".into());
    let text = URL_SAFE_NO_PAD
        .decode(input::value("cursor", c)?)
        .ok()
        .and_then(|b| String::from_utf8(b).ok())
        .ok_or_else(not_ours)?;
    let mut parts = text.splitn(3, '.');
    let (Some(l), Some(fp), Some(position)) = (parts.next(), parts.next(), parts.next()) else {
        return Err(not_ours());
    };
    if l != list || u64::from_str_radix(fp, 16).ok() != Some(fingerprint(query)) {
        return Err(ApiError::BadRequest(
            "cursor belongs to another query: send the same filters as for the first page".into(),
        ));
    }
    Ok(input::value("cursor", position)?.to_string())
}

/// `group:default/x`, or a bare `x` meaning a group in `default`.
pub(crate) fn owner_key(owner: &str) -> Result<String, ApiError> {
    surveyor_model::EntityRef::parse_with(owner, Some("group"), "default")
        .map(|r| r.key())
        .map_err(|e| ApiError::BadRequest(format!("owner: {e}")))
}

pub(crate) fn package(spec: &str) -> Result<PackageFilter, ApiError> {
    const ECOSYSTEMS: &[&str] = &["cargo", "npm", "go", "pypi", "maven"];
    let (ecosystem, package) = match spec.split_once(':') {
        Some((eco, rest)) if ECOSYSTEMS.contains(&eco.to_ascii_lowercase().as_str()) => {
            (Some(eco.to_ascii_lowercase()), rest.to_string())
        }
        _ => (None, spec.to_string()),
    };
    if package.is_empty() {
        return Err(ApiError::BadRequest(
            "depends_on: the package name is empty".into(),
        ));
    }
    Ok(PackageFilter { ecosystem, package })
}

impl EntityQuery {
    /// What the cursor is bound to: every filter, not the page size.
    fn identity(&self) -> String {
        serde_json::json!([
            self.kind,
            self.namespace,
            self.owner,
            self.label,
            self.source,
            self.q,
            self.depends_on,
            self.include_deleted
        ])
        .to_string()
    }

    fn filter(&self, max: u32) -> Result<EntityFilter, ApiError> {
        for (name, v) in [
            ("kind", &self.kind),
            ("namespace", &self.namespace),
            ("owner", &self.owner),
            ("label", &self.label),
            ("source", &self.source),
            ("q", &self.q),
            ("depends_on", &self.depends_on),
        ] {
            input::opt(name, v.as_deref())?;
        }
        let label = match &self.label {
            None => None,
            Some(l) => {
                let (k, v) = l.split_once('=').ok_or_else(|| {
                    ApiError::BadRequest(format!("label {l:?}: write it as key=value"))
                })?;
                // Only a key a label can have reaches the JSON path the store builds from it.
                if !surveyor_model::validate::is_valid_label_key(k) {
                    return Err(ApiError::BadRequest(format!(
                        "label {l:?}: {k:?} is not a label key"
                    )));
                }
                Some((k.to_string(), v.to_string()))
            }
        };
        let after = match &self.cursor {
            Some(c) => Some(decode_cursor("entities", &self.identity(), c)?),
            None => None,
        };
        Ok(EntityFilter {
            kind: self.kind.clone(),
            namespace: self.namespace.clone(),
            owner: self.owner.as_deref().map(owner_key).transpose()?,
            include_deleted: self.include_deleted,
            after,
            limit: Some(page_size(self.limit, max)?),
            offset: None,
            depends_on: self.depends_on.as_deref().map(package).transpose()?,
            label,
            source: self.source.clone(),
            text: self.q.clone(),
        })
    }
}

/// Entities in a stable order (by ref), a page at a time.
#[utoipa::path(get, path = "/api/v1/entities", params(EntityQuery),
    responses((status = 200, description = "`{items, nextCursor}` (and `totalItems` with `total=true`)"), (status = 400, description = "a bad parameter")))]
pub async fn list_entities(
    State(state): State<AppState>,
    query: Result<Query<EntityQuery>, axum::extract::rejection::QueryRejection>,
) -> Result<Response, ApiError> {
    let Query(query) = query.map_err(|e| ApiError::BadRequest(e.body_text()))?;
    let filter = query.filter(state.config.max_page_size)?;
    let limit = filter.limit.unwrap_or(100);
    let rows = state.store.list_entities(&filter).await?;
    let total = if query.total {
        Some(state.store.count_entities(&filter).await?)
    } else {
        None
    };
    let keys: Vec<String> = rows.iter().map(|r| r.entity_ref.clone()).collect();
    let mut relations = views::by_source(state.store.relations_of_many(&keys).await?);
    let identity = query.identity();
    let next = (rows.len() as i64 == limit)
        .then(|| {
            rows.last()
                .map(|r| encode_cursor("entities", &identity, &r.entity_ref))
        })
        .flatten();
    let mut out = String::from("{\"items\":[");
    for (i, r) in rows.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        out.push_str(&views::entity_text(
            r,
            &relations.remove(&r.entity_ref).unwrap_or_default(),
        ));
    }
    out.push_str("],\"nextCursor\":");
    out.push_str(&json!(next).to_string());
    if let Some(t) = total {
        out.push_str(&format!(",\"totalItems\":{t}"));
    }
    out.push('}');
    Ok((
        [(axum::http::header::CONTENT_TYPE, "application/json")],
        out,
    )
        .into_response())
}

/// One entity (or tombstone) with its relations, the sources that describe it, and a link to
/// its history.
#[utoipa::path(get, path = "/api/v1/entities/{kind}/{namespace}/{name}",
    responses((status = 200, description = "the entity"), (status = 404, description = "no such entity")))]
pub async fn get_entity(
    State(state): State<AppState>,
    path: Result<Path<(String, String, String)>, PathRejection>,
) -> Result<Json<Value>, ApiError> {
    let Path((kind, namespace, name)) = path.map_err(input::bad_path)?;
    let key = input::path_ref(&kind, &namespace, &name)?;
    let row = state
        .store
        .get_entity(&key)
        .await?
        .ok_or_else(|| ApiError::NotFound(format!("no entity {key}")))?;
    let relations = state.store.relations_of(&key).await?;
    let mut doc = views::entity(&row, &relations);
    doc["surveyor"]["history"] = json!(format!("/api/v1/changes?entity={key}"));
    Ok(Json(doc))
}

#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
pub struct GraphQuery {
    /// How many hops to follow (1-5, default 2).
    pub depth: Option<u32>,
    /// Relation types to follow, comma-separated (`dependsOn,ownedBy`); default all.
    pub relation: Option<String>,
}

/// The entities reachable from one entity along relations, as nodes and edges. At most
/// `max_page_size` nodes: a graph that would grow past it stops there with `truncated: true`.
#[utoipa::path(get, path = "/api/v1/entities/{kind}/{namespace}/{name}/graph", params(GraphQuery),
    responses((status = 200, description = "`{nodes, edges, truncated}`"), (status = 404, description = "no such entity")))]
pub async fn graph(
    State(state): State<AppState>,
    path: Result<Path<(String, String, String)>, PathRejection>,
    query: Result<Query<GraphQuery>, axum::extract::rejection::QueryRejection>,
) -> Result<Json<Value>, ApiError> {
    let Path((kind, namespace, name)) = path.map_err(input::bad_path)?;
    let Query(query) = query.map_err(|e| ApiError::BadRequest(e.body_text()))?;
    let depth = query.depth.unwrap_or(2);
    if !(1..=5).contains(&depth) {
        return Err(ApiError::BadRequest("depth must be 1 to 5".into()));
    }
    input::opt("relation", query.relation.as_deref())?;
    let wanted: Option<BTreeSet<String>> = query
        .relation
        .as_ref()
        .map(|r| r.split(',').map(|s| s.trim().to_string()).collect());
    let root = input::path_ref(&kind, &namespace, &name)?;
    let _permit = state
        .expensive("/api/v1/entities/{kind}/{namespace}/{name}/graph")
        .await?;
    if state.store.get_entity(&root).await?.is_none() {
        return Err(ApiError::NotFound(format!("no entity {root}")));
    }
    let cap = state.config.max_page_size.max(1) as usize;
    let mut seen: BTreeMap<String, u32> = BTreeMap::from([(root.clone(), 0)]);
    let mut edges = BTreeSet::new();
    let mut truncated = false;
    let mut frontier = vec![root];
    // One query per hop, whatever the fan-out.
    for d in 0..depth {
        if frontier.is_empty() {
            break;
        }
        let mut next = Vec::new();
        for r in state.store.relations_of_many(&frontier).await? {
            if wanted.as_ref().is_some_and(|w| !w.contains(&r.kind)) {
                continue;
            }
            if !seen.contains_key(&r.target_ref) {
                if seen.len() >= cap {
                    truncated = true;
                    continue;
                }
                seen.insert(r.target_ref.clone(), d + 1);
                next.push(r.target_ref.clone());
            }
            edges.insert((r.source_ref, r.kind, r.target_ref));
        }
        frontier = next;
    }
    let nodes: Vec<Value> = seen
        .into_iter()
        .map(|(k, d)| json!({"ref": k, "depth": d}))
        .collect();
    let edges: Vec<Value> = edges
        .into_iter()
        .map(|(source, kind, target)| json!({"source": source, "type": kind, "target": target}))
        .collect();
    Ok(Json(
        json!({"nodes": nodes, "edges": edges, "truncated": truncated}),
    ))
}

#[derive(Debug, Default, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
pub struct ChangeQuery {
    /// RFC 3339 time: changes at or after it.
    pub since: Option<DateTime<Utc>>,
    /// An entity ref: its history under every name it had.
    pub entity: Option<String>,
    /// `created`, `updated`, `renamed`, `deleted` or `restored`.
    pub op: Option<String>,
    pub limit: Option<u32>,
    pub cursor: Option<String>,
}

/// The catalog's history, oldest first, a page at a time.
#[utoipa::path(get, path = "/api/v1/changes", params(ChangeQuery),
    responses((status = 200, description = "`{items, nextCursor}`"), (status = 400, description = "a bad parameter")))]
pub async fn list_changes(
    State(state): State<AppState>,
    query: Result<Query<ChangeQuery>, axum::extract::rejection::QueryRejection>,
) -> Result<Json<Value>, ApiError> {
    let Query(q) = query.map_err(|e| ApiError::BadRequest(e.body_text()))?;
    let limit = page_size(q.limit, state.config.max_page_size)?;
    input::opt("entity", q.entity.as_deref())?;
    input::opt("op", q.op.as_deref())?;
    let identity = json!([q.since, q.entity, q.op]).to_string();
    let op = match &q.op {
        None => None,
        Some(o) => Some(ChangeOp::parse(o).ok_or_else(|| {
            ApiError::BadRequest(format!(
                "op {o:?}: one of created, updated, renamed, deleted, restored"
            ))
        })?),
    };
    let entity_uid = match &q.entity {
        None => None,
        Some(e) => {
            let key = surveyor_model::EntityRef::parse_with(e, None, "default")
                .map_err(|err| ApiError::BadRequest(format!("entity: {err}")))?
                .key();
            match state.store.resolve_uid(&key).await? {
                Some(uid) => Some(uid),
                None => return Ok(Json(json!({"items": [], "nextCursor": null}))),
            }
        }
    };
    let after_seq = match &q.cursor {
        None => None,
        Some(c) => Some(
            decode_cursor("changes", &identity, c)?
                .parse::<i64>()
                .map_err(|_| {
                    ApiError::BadRequest("cursor is not one this server gave out".into())
                })?,
        ),
    };
    let rows = state
        .store
        .list_changes(&ChangeFilter {
            since: q.since,
            op,
            entity_uid,
            after_seq,
            limit: Some(limit),
        })
        .await?;
    let next = (rows.len() as i64 == limit)
        .then(|| {
            rows.last()
                .map(|r| encode_cursor("changes", &identity, &r.seq.to_string()))
        })
        .flatten();
    Ok(Json(json!({"items": rows, "nextCursor": next})))
}

#[derive(Debug, Default, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
pub struct RunQuery {
    pub connector: Option<String>,
    pub limit: Option<u32>,
}

/// Recent runs, newest first.
#[utoipa::path(get, path = "/api/v1/runs", params(RunQuery), responses((status = 200, description = "`{items}`")))]
pub async fn list_runs(
    State(state): State<AppState>,
    query: Result<Query<RunQuery>, axum::extract::rejection::QueryRejection>,
) -> Result<Json<Value>, ApiError> {
    let Query(q) = query.map_err(|e| ApiError::BadRequest(e.body_text()))?;
    let limit = page_size(q.limit, state.config.max_page_size)?;
    input::opt("connector", q.connector.as_deref())?;
    let rows = state.store.list_runs(q.connector.as_deref(), limit).await?;
    Ok(Json(json!({"items": rows})))
}

/// The configured connectors: schedule, next run, whether one is running, the last outcome.
#[utoipa::path(get, path = "/api/v1/connectors", responses((status = 200, description = "`{items}`", body = [crate::ConnectorView])))]
pub async fn list_connectors(State(state): State<AppState>) -> Result<Json<Value>, ApiError> {
    let mut items = state
        .control
        .as_ref()
        .map(|c| c.connectors())
        .unwrap_or_default();
    // Leases come from the database: the replica answering may not be the one running it.
    let leases = state.store.leases().await?;
    let now = chrono::Utc::now();
    for item in &mut items {
        item.lease = leases
            .iter()
            .find(|l| l.name == item.id)
            .map(|l| surveyor_model::LeaseView {
                holder: l.holder.clone(),
                since: l.taken_at,
                expires_at: l.expires_at,
                held: l.expires_at > now,
            });
    }
    Ok(Json(json!({"items": items})))
}

/// Starts a sync of one connector now (needs a trigger token).
#[utoipa::path(post, path = "/api/v1/connectors/{id}/sync",
    responses((status = 202, description = "the run was queued"), (status = 404, description = "no such connector"),
        (status = 409, description = "it is running"), (status = 401, description = "no trigger token"), (status = 403, description = "triggering is off")))]
pub async fn trigger(
    State(state): State<AppState>,
    path: Result<Path<String>, PathRejection>,
) -> Result<Response, ApiError> {
    let Path(id) = path.map_err(input::bad_path)?;
    input::value("connector id", &id)?;
    let control = state
        .control
        .as_ref()
        .ok_or_else(|| ApiError::Unavailable("this server runs no connectors".into()))?;
    match control.trigger(&id) {
        Ok(()) => Ok((StatusCode::ACCEPTED, Json(json!({"queued": id}))).into_response()),
        Err(TriggerRefusal::Unknown(id)) => Err(ApiError::NotFound(format!("no connector {id:?}"))),
        Err(TriggerRefusal::Busy(id)) => Err(ApiError::Conflict(format!(
            "connector {id:?} is running and has a run queued already"
        ))),
        Err(TriggerRefusal::Stopped) => Err(ApiError::Unavailable("shutting down".into())),
    }
}

fn audit_sources(state: &AppState) -> surveyor_audit::Sources {
    surveyor_audit::Sources {
        kinds: state
            .control
            .as_ref()
            .map(|c| c.connectors().into_iter().map(|v| (v.id, v.kind)).collect())
            .unwrap_or_default(),
        cosmetic: state.config.audit_cosmetic,
    }
}

/// Ownership gaps, each with its rule, severity and evidence, and a summary per owner.
#[utoipa::path(get, path = "/api/v1/audit/ownership", responses((status = 200, description = "`{findings, summary}`")))]
pub async fn audit_ownership(State(state): State<AppState>) -> Result<Json<Value>, ApiError> {
    let _permit = state.expensive("/api/v1/audit/ownership").await?;
    let findings = surveyor_audit::ownership(&state.store, &audit_sources(&state)).await?;
    Ok(Json(
        json!({"summary": surveyor_audit::summary(&findings), "findings": findings}),
    ))
}

/// Drift between sources and declarations.
#[utoipa::path(get, path = "/api/v1/audit/drift", responses((status = 200, description = "`{findings, summary}`")))]
pub async fn audit_drift(State(state): State<AppState>) -> Result<Json<Value>, ApiError> {
    let _permit = state.expensive("/api/v1/audit/drift").await?;
    let findings = surveyor_audit::drift(&state.store, &audit_sources(&state)).await?;
    Ok(Json(
        json!({"summary": surveyor_audit::summary(&findings), "findings": findings}),
    ))
}

/// Recorded ownership findings, resolved ones too: when each was first and last seen, and
/// when it was resolved (`null` while open). Recorded after every sync.
#[utoipa::path(get, path = "/api/v1/audit/ownership/history", responses((status = 200, description = "`{findings}` with firstSeen, lastSeen, resolvedAt")))]
pub async fn audit_ownership_history(
    State(state): State<AppState>,
) -> Result<Json<Value>, ApiError> {
    let _permit = state.expensive("/api/v1/audit/ownership/history").await?;
    let findings = state.store.findings("ownership", true).await?;
    Ok(Json(json!({ "findings": findings })))
}

/// Recorded drift findings with their history, as for ownership.
#[utoipa::path(get, path = "/api/v1/audit/drift/history", responses((status = 200, description = "`{findings}` with firstSeen, lastSeen, resolvedAt")))]
pub async fn audit_drift_history(State(state): State<AppState>) -> Result<Json<Value>, ApiError> {
    let _permit = state.expensive("/api/v1/audit/drift/history").await?;
    let findings = state.store.findings("drift", true).await?;
    Ok(Json(json!({ "findings": findings })))
}
