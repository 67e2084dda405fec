//! `/api/v1`: entities (filtered, cursor-paged), one entity with relations and sources, its
//! graph, history, runs, connectors, and the sync trigger. Answers are the camelCase types of
//! [`crate::bodies`]; query parameters are the [`IntoParams`] structs the handlers deserialize,
//! so the OpenAPI document describes exactly what is read.

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
use surveyor_store::{ChangeFilter, ChangeOp, EntityFilter, PackageFilter, RunRow};
use utoipa::{IntoParams, ToSchema};

use crate::bodies::{
    AuditReport, ChangePage, ChangeView, ClassificationCounts, ConnectorList, EntityDocument,
    EntityPage, ErrorBody, FindingHistory, Graph, GraphEdge, GraphNode, Queued, RunList, RunView,
    ValueCount,
};
use crate::error::ApiError;
use crate::{AppState, ConnectorView, TriggerRefusal, input, views};

/// The path of one entity: `/{kind}/{namespace}/{name}`, each compared case-insensitively.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Path)]
pub struct EntityPath {
    /// Entity kind.
    #[param(example = "component")]
    pub kind: String,
    #[param(example = "default")]
    pub namespace: String,
    #[param(example = "web")]
    pub name: String,
}

/// Query parameters of `GET /api/v1/entities`. Parameter names are camelCase like the JSON;
/// `depends_on` and `include_deleted` are still read for older clients.
#[derive(Debug, Default, Deserialize, IntoParams)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
#[into_params(parameter_in = Query)]
pub struct EntityQuery {
    /// Entity kind (`component`, `group`, ...), case-insensitive.
    #[param(example = "component")]
    pub kind: Option<String>,
    pub namespace: Option<String>,
    /// Owner ref (`group:default/team-a`, or `team-a` for a group in `default`).
    pub owner: Option<String>,
    /// `key=value` on `metadata.labels`.
    pub label: Option<String>,
    /// A connector id: entities that source describes.
    pub source: Option<String>,
    /// Case-insensitive text in the ref, title, description or a tag.
    pub q: Option<String>,
    /// `[ecosystem:]package`: who depends on it (`npm:react`, `maven:org.x:y`).
    #[serde(alias = "depends_on")]
    #[param(example = "npm:react")]
    pub depends_on: Option<String>,
    /// Components of this tier (`tier-1`), as classification gave it.
    #[param(example = "tier-1")]
    pub tier: Option<String>,
    /// Components of this stack: a language, or a language and framework
    /// (`typescript` matches `typescript/react`).
    #[param(example = "java/spring-boot")]
    pub stack: Option<String>,
    /// Components whose workloads run on this runtime (`node`, `jvm`, `python`).
    pub runtime: Option<String>,
    /// Also tombstones (entities no source describes any more), with `surveyor.deletedAt`.
    #[serde(default, alias = "include_deleted")]
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
            "dependsOn: the package name is empty".into(),
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
            self.include_deleted,
            self.tier,
            self.stack,
            self.runtime
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
            ("dependsOn", &self.depends_on),
            ("tier", &self.tier),
            ("stack", &self.stack),
            ("runtime", &self.runtime),
        ] {
            input::opt(name, v.as_deref())?;
        }
        let classified = [
            ("tier", &self.tier),
            ("stack", &self.stack),
            ("runtime", &self.runtime),
        ]
        .into_iter()
        .filter_map(|(facet, v)| v.as_ref().map(|v| (facet.to_string(), v.clone())))
        .collect();
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
            classified,
            ..EntityFilter::default()
        })
    }
}

/// Entities in a stable order (by ref), a page at a time.
#[utoipa::path(get, path = "/api/v1/entities", tag = "entities", params(EntityQuery),
    responses((status = 200, description = "a page of entities, `totalItems` with `total=true`", body = EntityPage),
        (status = 400, description = "a bad parameter or cursor", body = ErrorBody)))]
pub async fn list_entities(
    State(state): State<AppState>,
    query: Result<Query<EntityQuery>, axum::extract::rejection::QueryRejection>,
) -> Result<Response, ApiError> {
    let Query(query) = query.map_err(|e| ApiError::BadRequest(e.body_text()))?;
    let filter = query.filter(state.config.max_page_size)?;
    let limit = filter.limit.unwrap_or(100);
    let (rows, relations, total) = if query.total {
        let (total, rows, relations) = state.store.entity_page_counted(&filter).await?;
        (rows, relations, Some(total))
    } else {
        let (rows, relations) = state.store.entity_page(&filter).await?;
        (rows, relations, None)
    };
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
            views::starting_at(&relations, &r.entity_ref),
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
#[utoipa::path(get, path = "/api/v1/entities/{kind}/{namespace}/{name}", tag = "entities", params(EntityPath),
    responses((status = 200, description = "the entity, or its tombstone", body = EntityDocument),
        (status = 400, description = "the path is no entity's ref", body = ErrorBody),
        (status = 404, description = "no such entity", body = ErrorBody)))]
pub async fn get_entity(
    State(state): State<AppState>,
    path: Result<Path<EntityPath>, PathRejection>,
) -> Result<Json<Value>, ApiError> {
    let Path(EntityPath {
        kind,
        namespace,
        name,
    }) = path.map_err(input::bad_path)?;
    let key = input::path_ref(&kind, &namespace, &name)?;
    let row = state
        .store
        .get_entity(&key)
        .await?
        .ok_or_else(|| ApiError::NotFound(format!("no entity {key}")))?;
    let relations = state.store.relations_of(&key).await?;
    let mut doc = views::entity(&row, &relations);
    doc["surveyor"]["history"] = json!(format!("/api/v1/changes?entity={key}"));
    if row.kind.eq_ignore_ascii_case("component") {
        let classes = state.store.classifications_of(&key).await?;
        doc["surveyor"]["classification"] = views::classification(&classes);
    }
    Ok(Json(doc))
}

/// How many Components have each value of each facet (tier, stack, runtime, lifecycle, domain,
/// system), as classification after the last sync gave them.
#[utoipa::path(get, path = "/api/v1/classifications", tag = "entities",
    responses((status = 200, description = "counts per facet and value", body = ClassificationCounts)))]
pub async fn classifications(
    State(state): State<AppState>,
) -> Result<Json<ClassificationCounts>, ApiError> {
    let mut facets = std::collections::BTreeMap::new();
    for facet in surveyor_model::classify::FACETS {
        let counts = state.store.count_classifications(facet).await?;
        facets.insert(
            facet.to_string(),
            counts
                .into_iter()
                .map(|(value, count)| ValueCount { value, count })
                .collect(),
        );
    }
    Ok(Json(ClassificationCounts { facets }))
}

/// Query parameters of the graph.
#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct GraphQuery {
    /// How many hops to follow (1-5, default 2).
    #[param(minimum = 1, maximum = 5, example = 2)]
    pub depth: Option<u32>,
    /// Relation types to follow, comma-separated (`dependsOn,ownedBy`); default all.
    #[param(example = "dependsOn,ownedBy")]
    pub relation: Option<String>,
}

/// The entities reachable from one entity along relations, as nodes and edges. At most
/// `max_page_size` nodes: a graph that would grow past it stops there with `truncated: true`.
#[utoipa::path(get, path = "/api/v1/entities/{kind}/{namespace}/{name}/graph", tag = "entities", params(EntityPath, GraphQuery),
    responses((status = 200, description = "nodes and edges", body = Graph),
        (status = 400, description = "a bad parameter", body = ErrorBody),
        (status = 404, description = "no such entity", body = ErrorBody),
        (status = 503, description = "too many expensive requests at once; see `Retry-After`", body = ErrorBody)))]
pub async fn graph(
    State(state): State<AppState>,
    path: Result<Path<EntityPath>, PathRejection>,
    query: Result<Query<GraphQuery>, axum::extract::rejection::QueryRejection>,
) -> Result<Json<Graph>, ApiError> {
    let Path(EntityPath {
        kind,
        namespace,
        name,
    }) = path.map_err(input::bad_path)?;
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
    let Neighbourhood {
        nodes: seen,
        edges,
        truncated,
        ..
    } = neighbourhood(&state.store, root, depth, wanted.as_ref(), cap).await?;
    let nodes = seen
        .into_iter()
        .map(|(r#ref, depth)| GraphNode { r#ref, depth })
        .collect();
    let edges = edges
        .into_iter()
        .map(|(source, r#type, target)| GraphEdge {
            source,
            r#type,
            target,
        })
        .collect();
    Ok(Json(Graph {
        nodes,
        edges,
        truncated,
    }))
}

/// The entities within some hops of one entity along relations (the API's graph and the
/// console's picture of it).
#[derive(Debug, Default)]
pub(crate) struct Neighbourhood {
    /// Each entity's key and its distance in hops from the root (0).
    pub nodes: BTreeMap<String, u32>,
    /// The refs as people read them, by key, for the entities a relation names (not the root).
    pub display: BTreeMap<String, String>,
    /// `(source key, relation type, target key)`, both ends in `nodes`.
    pub edges: BTreeSet<(String, String, String)>,
    /// The walk stopped at `cap` entities.
    pub truncated: bool,
}

/// Walks relations breadth-first from `root` (a key) for `depth` hops, following only the
/// `wanted` types when given, until `cap` entities are found. One query per hop, whatever the
/// fan-out.
pub(crate) async fn neighbourhood(
    store: &surveyor_store::Store,
    root: String,
    depth: u32,
    wanted: Option<&BTreeSet<String>>,
    cap: usize,
) -> Result<Neighbourhood, surveyor_store::StoreError> {
    let mut n = Neighbourhood {
        nodes: BTreeMap::from([(root.clone(), 0)]),
        ..Neighbourhood::default()
    };
    let mut frontier = vec![root];
    for d in 0..depth {
        if frontier.is_empty() {
            break;
        }
        let mut next = Vec::new();
        for r in store.relations_of_many(&frontier).await? {
            if wanted.is_some_and(|w| !w.contains(&r.kind)) {
                continue;
            }
            if !n.nodes.contains_key(&r.target_ref) {
                if n.nodes.len() >= cap {
                    n.truncated = true;
                    continue;
                }
                n.nodes.insert(r.target_ref.clone(), d + 1);
                next.push(r.target_ref.clone());
            }
            n.display
                .entry(r.target_ref.clone())
                .or_insert(r.target_display);
            n.edges.insert((r.source_ref, r.kind, r.target_ref));
        }
        frontier = next;
    }
    Ok(n)
}

/// The order of the history.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum Order {
    /// Oldest first: the order things happened in.
    #[default]
    Asc,
    /// Newest first.
    Desc,
}

/// Query parameters of `GET /api/v1/changes`.
#[derive(Debug, Default, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct ChangeQuery {
    /// RFC 3339 time: changes at or after it.
    #[param(example = "2026-01-31T00:00:00Z")]
    pub since: Option<DateTime<Utc>>,
    /// An entity ref: its history under every name it had.
    #[param(example = "component:default/web")]
    pub entity: Option<String>,
    /// `created`, `updated`, `renamed`, `deleted` or `restored`.
    #[param(example = "renamed")]
    pub op: Option<String>,
    /// `asc` (oldest first, the default) or `desc` (newest first).
    pub order: Option<Order>,
    /// Page size (default 100, at most the server's `max_page_size`).
    pub limit: Option<u32>,
    /// `nextCursor` or `prevCursor` of a page of the same query (same filters and order).
    pub cursor: Option<String>,
}

/// Where a change cursor points: the page after (`n`) or before (`p`) a change, in the order
/// of the query it belongs to.
#[derive(Debug, Clone, Copy)]
enum Step {
    Next(i64),
    Prev(i64),
}

impl Step {
    fn position(self) -> String {
        match self {
            Self::Next(seq) => format!("n{seq}"),
            Self::Prev(seq) => format!("p{seq}"),
        }
    }

    fn parse(position: &str) -> Result<Self, ApiError> {
        let not_ours = || ApiError::BadRequest("cursor is not one this server gave out".into());
        let seq = |s: &str| s.parse::<i64>().map_err(|_| not_ours());
        match position.split_at_checked(1) {
            Some(("n", rest)) => Ok(Self::Next(seq(rest)?)),
            Some(("p", rest)) => Ok(Self::Prev(seq(rest)?)),
            _ => Err(not_ours()),
        }
    }
}

/// The catalog's history, oldest first (or newest first with `order=desc`), a page at a time.
/// Each page has a cursor to the page after it and one to the page before it.
#[utoipa::path(get, path = "/api/v1/changes", tag = "history", params(ChangeQuery),
    responses((status = 200, description = "a page of changes", body = ChangePage),
        (status = 400, description = "a bad parameter or cursor", body = ErrorBody)))]
pub async fn list_changes(
    State(state): State<AppState>,
    query: Result<Query<ChangeQuery>, axum::extract::rejection::QueryRejection>,
) -> Result<Json<ChangePage>, ApiError> {
    let Query(q) = query.map_err(|e| ApiError::BadRequest(e.body_text()))?;
    let limit = page_size(q.limit, state.config.max_page_size)?;
    input::opt("entity", q.entity.as_deref())?;
    input::opt("op", q.op.as_deref())?;
    let order = q.order.unwrap_or_default();
    let identity = json!([q.since, q.entity, q.op, order == Order::Desc]).to_string();
    let op = match &q.op {
        None => None,
        Some(o) => Some(ChangeOp::parse(o).ok_or_else(|| {
            ApiError::BadRequest(format!(
                "op {o:?}: one of created, updated, renamed, deleted, restored"
            ))
        })?),
    };
    let step = match &q.cursor {
        None => None,
        Some(c) => Some(Step::parse(&decode_cursor("changes", &identity, c)?)?),
    };
    let empty = ChangePage {
        items: Vec::new(),
        next_cursor: None,
        prev_cursor: None,
    };
    let entity_uid = match &q.entity {
        None => None,
        Some(e) => {
            let key = surveyor_model::EntityRef::parse_with(e, None, "default")
                .map_err(|err| ApiError::BadRequest(format!("entity: {err}")))?
                .key();
            match state.store.resolve_uid(&key).await? {
                Some(uid) => Some(uid),
                None => return Ok(Json(empty)),
            }
        }
    };
    // The page before a cursor is read walking away from it (nearest first), then turned
    // around: so "before" is a bound on `seq` in the direction opposite to the order's.
    let desc = order == Order::Desc;
    let (bound, backwards) = match step {
        None => (None, false),
        Some(Step::Next(seq)) => (Some(seq), false),
        Some(Step::Prev(seq)) => (Some(seq), true),
    };
    let read_desc = desc != backwards;
    let mut filter = ChangeFilter {
        since: q.since,
        op,
        entity_uid,
        descending: read_desc,
        // One more than the page: whether another page follows, without an empty last page.
        limit: Some(limit + 1),
        ..ChangeFilter::default()
    };
    if read_desc {
        filter.before_seq = bound;
    } else {
        filter.after_seq = bound;
    }
    let mut rows = state.store.list_changes(&filter).await?;
    let more = rows.len() as i64 > limit;
    rows.truncate(usize::try_from(limit).unwrap_or(usize::MAX));
    if backwards {
        rows.reverse();
    }
    let cursor = |s: Step| encode_cursor("changes", &identity, &s.position());
    let first = rows.first().map(|r| r.seq);
    let last = rows.last().map(|r| r.seq);
    // Forwards: a next page if more rows followed, a previous one unless this is the first.
    // Backwards: a next page always (the one the cursor came from), a previous one if more.
    let (next, prev) = if backwards {
        (last.map(Step::Next), first.filter(|_| more).map(Step::Prev))
    } else {
        (
            last.filter(|_| more).map(Step::Next),
            first.filter(|_| step.is_some()).map(Step::Prev),
        )
    };
    Ok(Json(ChangePage {
        items: rows.into_iter().map(ChangeView::from).collect(),
        next_cursor: next.map(cursor),
        prev_cursor: prev.map(cursor),
    }))
}

/// Query parameters of `GET /api/v1/runs`.
#[derive(Debug, Default, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct RunQuery {
    /// A connector id: its runs only.
    #[param(example = "github")]
    pub connector: Option<String>,
    /// How many (default 100, at most the server's `max_page_size`).
    pub limit: Option<u32>,
}

/// Recent runs, by any process, newest first.
#[utoipa::path(get, path = "/api/v1/runs", tag = "runs", params(RunQuery),
    responses((status = 200, description = "the latest runs", body = RunList),
        (status = 400, description = "a bad parameter", body = ErrorBody)))]
pub async fn list_runs(
    State(state): State<AppState>,
    query: Result<Query<RunQuery>, axum::extract::rejection::QueryRejection>,
) -> Result<Json<RunList>, ApiError> {
    let Query(q) = query.map_err(|e| ApiError::BadRequest(e.body_text()))?;
    let limit = page_size(q.limit, state.config.max_page_size)?;
    input::opt("connector", q.connector.as_deref())?;
    let rows = state.store.list_runs(q.connector.as_deref(), limit).await?;
    Ok(Json(RunList {
        items: rows.into_iter().map(RunView::from).collect(),
    }))
}

/// A run row written within this long after the scheduler marked a run started is that run:
/// the engine stamps its row right after the scheduler's mark, and a lease keeps another
/// process from starting the same connector in between.
const SAME_RUN: chrono::TimeDelta = chrono::TimeDelta::seconds(2);

/// The connector's latest run, from this process's scheduler or the runs table, whichever is
/// newer. For the same run, the scheduler's status wins (it knows a run it abandoned, which
/// the table records only at the next run); the table adds when it finished.
pub(crate) fn with_latest_run(view: &mut ConnectorView, run: &RunRow) {
    match view.last_started {
        Some(mine) if run.started_at >= mine && run.started_at - mine < SAME_RUN => {
            view.last_finished = run.finished_at;
        }
        Some(mine) if run.started_at < mine => {}
        _ => {
            view.last_started = Some(run.started_at);
            view.last_finished = run.finished_at;
            view.last_status = Some(run.status.clone());
            view.last_error = run.error.clone();
        }
    }
}

/// The configured connectors: schedule, next run, whether this process runs one now, the
/// latest run by any process (its start, end, status, error), and who holds the lease.
#[utoipa::path(get, path = "/api/v1/connectors", tag = "runs",
    responses((status = 200, description = "the connectors this server runs", body = ConnectorList)))]
pub async fn list_connectors(
    State(state): State<AppState>,
) -> Result<Json<ConnectorList>, ApiError> {
    let mut items = state
        .control
        .as_ref()
        .map(|c| c.connectors())
        .unwrap_or_default();
    // Leases come from the database: the replica answering may not be the one running it.
    let leases = state.store.leases().await?;
    // So are runs: a `surveyor sync` or another replica may have run a connector since.
    let runs = if items.is_empty() {
        Vec::new()
    } else {
        state.store.latest_runs().await?
    };
    let now = chrono::Utc::now();
    for item in &mut items {
        if let Some(run) = runs.iter().find(|r| r.connector == item.id) {
            with_latest_run(item, run);
        }
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
    Ok(Json(ConnectorList { items }))
}

/// Starts a sync of one connector now (needs a trigger token).
#[utoipa::path(post, path = "/api/v1/connectors/{id}/sync", tag = "runs",
    params(("id" = String, Path, description = "The connector's id.", example = "github")),
    responses((status = 202, description = "the run was queued", body = Queued),
        (status = 401, description = "no trigger token", body = ErrorBody),
        (status = 403, description = "triggering is off, or the token may only read", body = ErrorBody),
        (status = 404, description = "no such connector", body = ErrorBody),
        (status = 409, description = "it is running and has a run queued already", body = ErrorBody),
        (status = 503, description = "this server runs no connectors, or is shutting down", body = ErrorBody)))]
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
        Ok(()) => Ok((StatusCode::ACCEPTED, Json(Queued { queued: id })).into_response()),
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
#[utoipa::path(get, path = "/api/v1/audit/ownership", tag = "audits",
    responses((status = 200, description = "the findings now, and a summary per owner", body = AuditReport),
        (status = 503, description = "too many expensive requests at once; see `Retry-After`", body = ErrorBody)))]
pub async fn audit_ownership(State(state): State<AppState>) -> Result<Json<AuditReport>, ApiError> {
    let _permit = state.expensive("/api/v1/audit/ownership").await?;
    let findings = surveyor_audit::ownership(&state.store, &audit_sources(&state)).await?;
    Ok(Json(AuditReport::of(findings)))
}

/// Drift between sources and declarations.
#[utoipa::path(get, path = "/api/v1/audit/drift", tag = "audits",
    responses((status = 200, description = "the findings now, and a summary per owner", body = AuditReport),
        (status = 503, description = "too many expensive requests at once; see `Retry-After`", body = ErrorBody)))]
pub async fn audit_drift(State(state): State<AppState>) -> Result<Json<AuditReport>, ApiError> {
    let _permit = state.expensive("/api/v1/audit/drift").await?;
    let findings = surveyor_audit::drift(&state.store, &audit_sources(&state)).await?;
    Ok(Json(AuditReport::of(findings)))
}

/// Recorded ownership findings, resolved ones too: when each was first and last seen, and
/// when it was resolved (`null` while open). Recorded after every sync.
#[utoipa::path(get, path = "/api/v1/audit/ownership/history", tag = "audits",
    responses((status = 200, description = "every recorded finding", body = FindingHistory),
        (status = 503, description = "too many expensive requests at once; see `Retry-After`", body = ErrorBody)))]
pub async fn audit_ownership_history(
    State(state): State<AppState>,
) -> Result<Json<FindingHistory>, ApiError> {
    let _permit = state.expensive("/api/v1/audit/ownership/history").await?;
    let findings = state.store.findings("ownership", true).await?;
    Ok(Json(FindingHistory {
        findings: findings.into_iter().map(Into::into).collect(),
    }))
}

/// Recorded drift findings with their history, as for ownership.
#[utoipa::path(get, path = "/api/v1/audit/drift/history", tag = "audits",
    responses((status = 200, description = "every recorded finding", body = FindingHistory),
        (status = 503, description = "too many expensive requests at once; see `Retry-After`", body = ErrorBody)))]
pub async fn audit_drift_history(
    State(state): State<AppState>,
) -> Result<Json<FindingHistory>, ApiError> {
    let _permit = state.expensive("/api/v1/audit/drift/history").await?;
    let findings = state.store.findings("drift", true).await?;
    Ok(Json(FindingHistory {
        findings: findings.into_iter().map(Into::into).collect(),
    }))
}
