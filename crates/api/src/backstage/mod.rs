//! Backstage's catalog API (`/api/catalog`), in its shapes, so Backstage's catalog client and
//! frontends written for it read from surveyor: entities with `filter`/`fields`/`offset`/`limit`,
//! by-name, by-query (`{items, totalItems, pageInfo}` with an opaque cursor) and entity facets.
//!
//! Filters follow Backstage: `filter=a=1,b=2` ANDs its conditions, several `filter`s are ORed,
//! keys and values compare case-insensitively against the entity's flattened dotted paths
//! (`metadata.annotations.backstage.io/kubernetes-id`, `relations.ownedBy`), `key` alone tests
//! that the key exists.
//!
//! What the store cannot page (other filters, `orderField`, facets, full-text counts) is
//! matched in memory over every candidate, so it runs under the expensive-request limit; so do
//! lists asked for whole (no `limit`, as Backstage serves them) or in pages over
//! `max_page_size`, which the store is read for a page at a time.
//!
//! Also: entities by refs, by uid and their ancestry (`refs`), locations derived from the
//! entities' managed-by-location annotations (`locations`), refresh, validation and the
//! refusals of a read-only catalog (`actions`), and Backstage's error shape (`errors`).

use std::collections::BTreeMap;

use axum::Json;
use axum::extract::rejection::PathRejection;
use axum::extract::{Path, RawQuery, State};
use axum::response::{IntoResponse, Response};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use surveyor_store::{EntityFilter, EntityRow, RelationRow};

use crate::error::ApiError;
use crate::{AppState, input, views};

mod actions;
#[cfg(test)]
mod catalog_tests;
pub mod errors;
mod locations;
mod refs;

pub use actions::{read_only, refresh, validate_entity};
pub use locations::{location, location_by_entity, locations};
pub use refs::{ancestry, by_refs, by_uid};

/// One `filter=` parameter: conditions that must all hold.
type Alternative = Vec<(String, Option<String>)>;

/// Filters are matched in memory against every candidate entity, so their number bounds the
/// work a request can ask for.
const MAX_CONDITIONS: usize = 100;
/// `fields=` and `facet=` entries per request.
const MAX_FIELDS: usize = 100;

fn parse_filters(values: &[String]) -> Result<Vec<Alternative>, ApiError> {
    for v in values {
        input::value("filter", v)?;
    }
    let conditions: usize = values.iter().map(|f| f.split(',').count()).sum();
    if conditions > MAX_CONDITIONS {
        return Err(ApiError::BadRequest(format!(
            "filter: {conditions} conditions; at most {MAX_CONDITIONS} are accepted"
        )));
    }
    values
        .iter()
        .map(|f| {
            f.split(',')
                .filter(|c| !c.trim().is_empty())
                .map(|c| match c.split_once('=') {
                    Some((k, v)) if !k.trim().is_empty() => {
                        Ok((k.trim().to_lowercase(), Some(v.trim().to_lowercase())))
                    }
                    Some(_) => Err(ApiError::BadRequest(format!(
                        "filter {f:?}: a condition has no key"
                    ))),
                    None => Ok((c.trim().to_lowercase(), None)),
                })
                .collect()
        })
        .collect()
}

/// Every (dotted path, value) of a document, lower-cased; arrays of scalars give one pair per
/// element under the array's path; `relations` become `relations.<type>` = target ref.
fn flatten(doc: &Value) -> Vec<(String, String)> {
    fn walk(v: &Value, path: &str, out: &mut Vec<(String, String)>) {
        match v {
            Value::Object(m) => {
                for (k, v) in m {
                    let p = if path.is_empty() {
                        k.to_lowercase()
                    } else {
                        format!("{path}.{}", k.to_lowercase())
                    };
                    walk(v, &p, out);
                }
            }
            Value::Array(items) => {
                for i in items {
                    if !i.is_object() {
                        walk(i, path, out);
                    }
                }
            }
            Value::String(s) => out.push((path.to_string(), s.to_lowercase())),
            Value::Number(n) => out.push((path.to_string(), n.to_string())),
            Value::Bool(b) => out.push((path.to_string(), b.to_string())),
            Value::Null => {}
        }
    }
    let mut out = Vec::new();
    if let Value::Object(m) = doc {
        for (k, v) in m {
            if k == "relations" {
                for r in v.as_array().into_iter().flatten() {
                    if let (Some(t), Some(target)) = (r["type"].as_str(), r["targetRef"].as_str()) {
                        out.push((
                            format!("relations.{}", t.to_lowercase()),
                            target.to_lowercase(),
                        ));
                    }
                }
            } else {
                walk(v, &k.to_lowercase(), &mut out);
            }
        }
    }
    out
}

fn matches(flat: &[(String, String)], alternatives: &[Alternative]) -> bool {
    alternatives.is_empty()
        || alternatives.iter().any(|conds| {
            conds.iter().all(|(k, v)| match v {
                Some(v) => flat.iter().any(|(fk, fv)| fk == k && fv == v),
                None => flat.iter().any(|(fk, _)| fk == k),
            })
        })
}

/// Filter keys the store evaluates exactly as [`matches`] does (both compare lower-cased keys).
const STORE_KEYS: [&str; 3] = ["kind", "metadata.namespace", "relations.ownedby"];

/// The store filter every alternative agrees on (kind, namespace, owner), to narrow the scan.
fn pushdown(alternatives: &[Alternative]) -> EntityFilter {
    let common = |key: &str| -> Option<String> {
        let mut value = None;
        for conds in alternatives {
            let v = conds
                .iter()
                .find(|(k, _)| k == key)
                .and_then(|(_, v)| v.clone())?;
            if value.as_ref().is_some_and(|x| x != &v) {
                return None;
            }
            value = Some(v);
        }
        value
    };
    EntityFilter {
        kind: common("kind"),
        namespace: common("metadata.namespace"),
        owner: common("relations.ownedby"),
        ..EntityFilter::default()
    }
}

/// The store filter that selects exactly what the filters select, when it exists: one
/// alternative (or none) whose conditions all have a value, each on a different key the store
/// evaluates. Then the store counts and pages, instead of every candidate being matched here.
fn exact(alternatives: &[Alternative]) -> Option<EntityFilter> {
    let conds = match alternatives {
        [] => return Some(EntityFilter::default()),
        [one] => one,
        _ => return None,
    };
    let mut keys = std::collections::BTreeSet::new();
    let pushable = conds
        .iter()
        .all(|(k, v)| v.is_some() && STORE_KEYS.contains(&k.as_str()) && keys.insert(k.as_str()));
    pushable.then(|| pushdown(alternatives))
}

/// The raw query's values per key (`filter` may repeat).
fn params(raw: Option<&str>) -> BTreeMap<String, Vec<String>> {
    let mut out: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for (k, v) in form_urlencoded::parse(raw.unwrap_or_default().as_bytes()) {
        out.entry(k.into_owned()).or_default().push(v.into_owned());
    }
    out
}

/// A parameter that takes one value: given twice, the request is ambiguous.
fn one(p: &BTreeMap<String, Vec<String>>, key: &str) -> Result<Option<String>, ApiError> {
    match p.get(key).map(Vec::as_slice) {
        None | Some([]) => Ok(None),
        // A by-query cursor carries the whole query; what it holds is checked once decoded.
        Some([v]) if key == "cursor" => Ok(Some(v.clone())),
        Some([v]) => Ok(Some(input::value(key, v)?.to_string())),
        Some(_) => Err(ApiError::BadRequest(format!(
            "{key} is given more than once"
        ))),
    }
}

fn number(p: &BTreeMap<String, Vec<String>>, key: &str) -> Result<Option<usize>, ApiError> {
    one(p, key)?
        .map(|v| {
            v.parse::<usize>()
                .map_err(|_| ApiError::BadRequest(format!("{key}: {v:?} is not a number")))
        })
        .transpose()
}

fn fields(p: &BTreeMap<String, Vec<String>>) -> Result<Vec<String>, ApiError> {
    let out: Vec<String> = p
        .get("fields")
        .into_iter()
        .flatten()
        .flat_map(|f| f.split(','))
        .map(str::trim)
        .filter(|f| !f.is_empty())
        .map(str::to_string)
        .collect();
    checked_fields("fields", &out)?;
    Ok(out)
}

fn checked_fields(name: &str, fields: &[String]) -> Result<(), ApiError> {
    if fields.len() > MAX_FIELDS {
        return Err(ApiError::BadRequest(format!(
            "{name}: {} entries; at most {MAX_FIELDS} are accepted",
            fields.len()
        )));
    }
    for f in fields {
        input::value(name, f)?;
    }
    Ok(())
}

/// What a list request selects, beyond paging: the filters, a search term (in `text_fields`
/// when given, else surveyor's ref, title and description) and the sort order.
#[derive(Default)]
pub(crate) struct Selection {
    pub alternatives: Vec<Alternative>,
    pub text: Option<String>,
    pub text_fields: Vec<String>,
    pub order: Order,
}

impl Selection {
    /// Whether the store can count and page it; else every candidate is matched in memory.
    fn paged_by_store(&self) -> bool {
        self.order.is_empty() && self.text_fields.is_empty() && exact(&self.alternatives).is_some()
    }
}

/// Sort directives, first to last: (lower-cased dotted field, descending).
pub(crate) type Order = Vec<(String, bool)>;

/// `orderField=field[,asc|desc]`, repeatable (by-query): the first sorts, the next break ties.
fn order_fields(values: &[String]) -> Result<Order, ApiError> {
    values
        .iter()
        .map(|o| {
            input::value("orderField", o)?;
            let (field, dir) = o.split_once(',').unwrap_or((o, "asc"));
            let desc = descending("orderField", o, dir)?;
            ordered_field("orderField", o, field).map(|f| (f, desc))
        })
        .collect()
}

/// `order=asc:field` or `order=desc:field`, repeatable (GET /entities, as the catalog client
/// sends `getEntities({order})`).
fn order_params(values: &[String]) -> Result<Order, ApiError> {
    values
        .iter()
        .map(|o| {
            input::value("order", o)?;
            let (dir, field) = o.split_once(':').ok_or_else(|| {
                ApiError::BadRequest(format!("order {o:?}: expected asc:<field> or desc:<field>"))
            })?;
            let desc = descending("order", o, dir)?;
            ordered_field("order", o, field).map(|f| (f, desc))
        })
        .collect()
}

/// Whether the direction `dir` of `param`'s value `o` is `desc` (`asc` is not).
fn descending(param: &str, o: &str, dir: &str) -> Result<bool, ApiError> {
    match dir.trim() {
        "asc" => Ok(false),
        "desc" => Ok(true),
        other => Err(ApiError::BadRequest(format!(
            "{param} {o:?}: direction {other:?} is not asc or desc"
        ))),
    }
}

fn ordered_field(name: &str, given: &str, field: &str) -> Result<String, ApiError> {
    let field = field.trim().to_lowercase();
    if field.is_empty() {
        return Err(ApiError::BadRequest(format!("{name} {given:?}: no field")));
    }
    Ok(field)
}

/// Sorts documents by the directives, in memory (any dotted field can be asked for, most of
/// which no index has). Values compare lower-cased, as Backstage's search table holds them;
/// an entity without the field sorts after those with it, either way; ties keep ref order.
fn sort(docs: &mut Vec<Value>, order: &Order) {
    if order.is_empty() {
        return;
    }
    let mut keyed: Vec<(Vec<Option<String>>, Value)> = std::mem::take(docs)
        .into_iter()
        .map(|d| {
            let flat = flatten(&d);
            let keys = order
                .iter()
                .map(|(field, _)| {
                    flat.iter()
                        .filter(|(k, _)| k == field)
                        .map(|(_, v)| v.clone())
                        .min()
                })
                .collect();
            (keys, d)
        })
        .collect();
    keyed.sort_by(|(a, _), (b, _)| {
        for ((x, y), (_, desc)) in a.iter().zip(b).zip(order) {
            let o = match (x, y) {
                (Some(x), Some(y)) if *desc => y.cmp(x),
                (Some(x), Some(y)) => x.cmp(y),
                (Some(_), None) => std::cmp::Ordering::Less,
                (None, Some(_)) => std::cmp::Ordering::Greater,
                (None, None) => std::cmp::Ordering::Equal,
            };
            if o.is_ne() {
                return o;
            }
        }
        std::cmp::Ordering::Equal
    });
    *docs = keyed.into_iter().map(|(_, d)| d).collect();
}

/// Documents for rows, with their relations.
pub(crate) async fn documents(
    state: &AppState,
    rows: &[EntityRow],
) -> Result<Vec<Value>, ApiError> {
    let keys: Vec<String> = rows.iter().map(|r| r.entity_ref.clone()).collect();
    let relations = state.store.relations_of_many(&keys).await?;
    Ok(as_documents(rows, &relations).collect())
}

/// Rows as Backstage documents, each with its relations from `relations` (sorted by source).
fn as_documents<'a>(
    rows: &'a [EntityRow],
    relations: &'a [RelationRow],
) -> impl Iterator<Item = Value> + 'a {
    rows.iter()
        .map(|r| views::backstage(r, views::starting_at(relations, &r.entity_ref)))
}

/// The entities `offset..offset + limit` (all from `offset` when `limit` is `None`) that the
/// selection picks, as Backstage documents in its order, and how many it picks in all. The
/// store is read a page of `max_page_size` at a time, however many are asked for.
async fn select(
    state: &AppState,
    s: &Selection,
    offset: usize,
    limit: Option<usize>,
) -> Result<(Vec<Value>, usize), ApiError> {
    if !s.paged_by_store() {
        let mut docs = matching(state, s).await?;
        sort(&mut docs, &s.order);
        let total = docs.len();
        let docs = docs
            .into_iter()
            .skip(offset)
            .take(limit.unwrap_or(usize::MAX))
            .collect();
        return Ok((docs, total));
    }
    let mut filter = exact(&s.alternatives).unwrap_or_default();
    filter.text = s.text.clone();
    let limit = limit.unwrap_or(usize::MAX);
    let chunk = (state.config.max_page_size as usize).max(1);
    let page = |after: Option<String>, n: usize| EntityFilter {
        // The first page skips `offset`; the next ones start after the last key read.
        offset: after
            .is_none()
            .then(|| i64::try_from(offset).unwrap_or(i64::MAX)),
        after,
        limit: Some(i64::try_from(n).unwrap_or(i64::MAX)),
        ..filter.clone()
    };
    // The count and the first page are read at once.
    let mut asked = limit.min(chunk);
    let first = page(None, asked);
    let (total, mut rows, mut relations) = state.store.entity_page_counted(&first).await?;
    let total = usize::try_from(total).unwrap_or(0);
    let wanted = limit.min(total.saturating_sub(offset));
    let mut docs = Vec::with_capacity(wanted.min(chunk));
    loop {
        docs.extend(as_documents(&rows, &relations));
        let Some(last) = rows.last() else { break };
        if docs.len() >= wanted || rows.len() < asked {
            break;
        }
        asked = chunk.min(wanted - docs.len());
        (rows, relations) = state
            .store
            .entity_page(&page(Some(last.entity_ref.clone()), asked))
            .await?;
    }
    // What the count says there is (an entity written between the two reads is not shown).
    docs.truncate(wanted);
    Ok((docs, total))
}

/// Entities matching the selection's filters and text, as Backstage documents, in ref order.
async fn matching(state: &AppState, s: &Selection) -> Result<Vec<Value>, ApiError> {
    let mut filter = pushdown(&s.alternatives);
    // A search confined to named fields is matched here; the store searches its own fields.
    if s.text_fields.is_empty() {
        filter.text = s.text.clone();
    }
    let rows: Vec<EntityRow> = state.store.list_entities(&filter).await?;
    let term = s.text.as_deref().map(str::to_lowercase);
    let fields: Vec<String> = s.text_fields.iter().map(|f| f.to_lowercase()).collect();
    let mut out = Vec::new();
    for doc in documents(state, &rows).await? {
        let flat = flatten(&doc);
        if !matches(&flat, &s.alternatives) {
            continue;
        }
        if let (Some(term), false) = (&term, fields.is_empty()) {
            let found = flat
                .iter()
                .any(|(k, v)| fields.contains(k) && v.contains(term.as_str()));
            if !found {
                continue;
            }
        }
        out.push(doc);
    }
    Ok(out)
}

fn backstage_err(e: ApiError) -> Response {
    e.backstage()
}

/// Refuses parameters a route does not take: Backstage answers them, so none may be dropped
/// unnoticed.
pub(crate) fn only(p: &BTreeMap<String, Vec<String>>, allowed: &[&str]) -> Result<(), ApiError> {
    match p.keys().find(|k| !allowed.contains(&k.as_str())) {
        None => Ok(()),
        Some(k) => Err(ApiError::BadRequest(format!(
            "unknown or unsupported query parameter {:?}; this route takes {}",
            k.chars().take(64).collect::<String>(),
            if allowed.is_empty() {
                "none".to_string()
            } else {
                allowed.join(", ")
            }
        ))),
    }
}

/// GET /entities' `after`: where the next page starts, opaque to clients.
#[derive(Serialize, Deserialize)]
struct After {
    offset: usize,
}

fn decode<T: serde::de::DeserializeOwned>(name: &str, c: &str) -> Result<T, ApiError> {
    let bad = || ApiError::BadRequest(format!("{name}: not one this server gave out"));
    let bytes = URL_SAFE_NO_PAD.decode(c.as_bytes()).map_err(|_| bad())?;
    serde_json::from_slice::<T>(&bytes).map_err(|_| bad())
}

fn encode<T: Serialize>(v: &T) -> String {
    URL_SAFE_NO_PAD.encode(serde_json::to_vec(v).unwrap_or_default())
}

/// `GET /api/catalog/entities?filter=&fields=&order=&offset=&limit=&after=`: a JSON array.
/// Without `limit`, every match (as Backstage answers); with one, that many and a `Link:
/// <...&after=...>; rel="next"` header when more follow.
pub async fn entities(State(state): State<AppState>, RawQuery(raw): RawQuery) -> Response {
    async fn inner(state: AppState, raw: Option<String>) -> Result<Response, ApiError> {
        let p = params(raw.as_deref());
        only(
            &p,
            &["filter", "fields", "order", "offset", "limit", "after"],
        )?;
        let selection = Selection {
            alternatives: parse_filters(p.get("filter").map(Vec::as_slice).unwrap_or_default())?,
            order: order_params(p.get("order").map(Vec::as_slice).unwrap_or_default())?,
            ..Selection::default()
        };
        let offset = match (number(&p, "offset")?, one(&p, "after")?) {
            (Some(_), Some(_)) => {
                return Err(ApiError::BadRequest(
                    "offset and after cannot be given together".into(),
                ));
            }
            (Some(o), None) => o,
            (None, Some(a)) => decode::<After>("after", &a)?.offset,
            (None, None) => 0,
        };
        let limit = number(&p, "limit")?;
        let f = fields(&p)?;
        let max = state.config.max_page_size as usize;
        let _permit = if !selection.paged_by_store() || limit.is_none_or(|l| l > max) {
            state.expensive("/api/catalog/entities").await?
        } else {
            None
        };
        let (docs, total) = select(&state, &selection, offset, limit).await?;
        let following = offset.saturating_add(docs.len());
        let docs = views::project_all(docs, &f);
        let mut response = Json(docs).into_response();
        if limit.is_some() && following < total {
            let mut next = form_urlencoded::Serializer::new(String::new());
            for (k, vs) in &p {
                if k != "offset" && k != "after" {
                    for v in vs {
                        next.append_pair(k, v);
                    }
                }
            }
            next.append_pair("after", &encode(&After { offset: following }));
            let link = format!("</entities?{}>; rel=\"next\"", next.finish());
            if let Ok(v) = axum::http::HeaderValue::from_str(&link) {
                response.headers_mut().insert(axum::http::header::LINK, v);
            }
        }
        Ok(response)
    }
    inner(state, raw).await.unwrap_or_else(backstage_err)
}

/// The live entity a ref key names, with its relations, as Backstage's document.
pub(crate) async fn entity_by_key(state: &AppState, key: &str) -> Result<Option<Value>, ApiError> {
    let Some(row) = state
        .store
        .get_entity(key)
        .await?
        .filter(EntityRow::is_live)
    else {
        return Ok(None);
    };
    let relations = state.store.relations_of(key).await?;
    Ok(Some(views::backstage(&row, &relations)))
}

/// The key a `/{kind}/{namespace}/{name}` path names.
/// The entity a `{kind}/{namespace}/{name}` path names, on a route that takes no query
/// parameters; Backstage's 404 when there is none.
pub(crate) async fn named_entity(
    state: &AppState,
    path: Result<Path<(String, String, String)>, PathRejection>,
    raw: Option<&str>,
) -> Result<Value, ApiError> {
    only(&params(raw), &[])?;
    let key = path_key(path)?;
    entity_by_key(state, &key)
        .await?
        .ok_or_else(|| ApiError::NotFound(format!("No entity named '{key}' found")))
}

pub(crate) fn path_key(
    path: Result<Path<(String, String, String)>, PathRejection>,
) -> Result<String, ApiError> {
    let Path((kind, namespace, name)) = path.map_err(input::bad_path)?;
    input::path_ref(&kind, &namespace, &name)
}

/// `GET /api/catalog/entities/by-name/{kind}/{namespace}/{name}`.
pub async fn by_name(
    State(state): State<AppState>,
    path: Result<Path<(String, String, String)>, PathRejection>,
    RawQuery(raw): RawQuery,
) -> Response {
    async fn inner(
        state: AppState,
        path: Result<Path<(String, String, String)>, PathRejection>,
        raw: Option<String>,
    ) -> Result<Response, ApiError> {
        Ok(Json(named_entity(&state, path, raw.as_deref()).await?).into_response())
    }
    inner(state, path, raw).await.unwrap_or_else(backstage_err)
}

/// The by-query cursor: the whole query, so a client sends only the cursor for the next page.
#[derive(Serialize, Deserialize)]
struct Cursor {
    filters: Vec<String>,
    fields: Vec<String>,
    /// `orderField` values as given (`field,dir`), first to last.
    #[serde(default)]
    orders: Vec<String>,
    text: Option<String>,
    #[serde(default)]
    text_fields: Vec<String>,
    /// `None`: every remaining match (no `limit` was given).
    limit: Option<usize>,
    offset: usize,
    /// `totalItems=exclude`: answers leave `totalItems` out.
    #[serde(default)]
    no_total: bool,
}

/// `GET /api/catalog/entities/by-query`: `{items, totalItems, pageInfo: {nextCursor, prevCursor}}`.
/// Without `limit`, every match on one page (as Backstage answers).
pub async fn by_query(State(state): State<AppState>, RawQuery(raw): RawQuery) -> Response {
    async fn inner(state: AppState, raw: Option<String>) -> Result<Response, ApiError> {
        let p = params(raw.as_deref());
        let max = state.config.max_page_size as usize;
        let limit = number(&p, "limit")?;
        let cursor = match one(&p, "cursor")? {
            Some(c) => {
                // A cursor carries the query; only the page size and fields may change.
                only(&p, &["cursor", "limit", "fields"])?;
                let mut cursor: Cursor = decode("cursor", &c)?;
                if limit.is_some() {
                    cursor.limit = limit;
                }
                if p.contains_key("fields") {
                    cursor.fields = fields(&p)?;
                }
                cursor
            }
            None => {
                only(
                    &p,
                    &[
                        "filter",
                        "fields",
                        "orderField",
                        "fullTextFilterTerm",
                        "fullTextFilterFields",
                        "limit",
                        "offset",
                        "totalItems",
                    ],
                )?;
                let no_total = match one(&p, "totalItems")?.as_deref() {
                    None | Some("include") => false,
                    Some("exclude") => true,
                    Some(other) => {
                        return Err(ApiError::BadRequest(format!(
                            "totalItems: {other:?} is not include or exclude"
                        )));
                    }
                };
                let text_fields: Vec<String> = p
                    .get("fullTextFilterFields")
                    .into_iter()
                    .flatten()
                    .flat_map(|f| f.split(','))
                    .map(str::trim)
                    .filter(|f| !f.is_empty())
                    .map(str::to_string)
                    .collect();
                Cursor {
                    filters: p.get("filter").cloned().unwrap_or_default(),
                    fields: fields(&p)?,
                    orders: p.get("orderField").cloned().unwrap_or_default(),
                    text: one(&p, "fullTextFilterTerm")?.filter(|t| !t.trim().is_empty()),
                    text_fields,
                    limit,
                    offset: number(&p, "offset")?.unwrap_or(0),
                    no_total,
                }
            }
        };
        if cursor.limit == Some(0) {
            return Err(ApiError::BadRequest("limit must be at least 1".into()));
        }
        // A cursor carries the whole query, so it is held to the same limits as one.
        checked_fields("fields", &cursor.fields)?;
        checked_fields("fullTextFilterFields", &cursor.text_fields)?;
        input::opt("fullTextFilterTerm", cursor.text.as_deref())?;
        let selection = Selection {
            alternatives: parse_filters(&cursor.filters)?,
            text: cursor.text.clone(),
            text_fields: cursor.text_fields.clone(),
            order: order_fields(&cursor.orders)?,
        };
        // Paged by the store unless sorted, searched (every match is counted), filtered on
        // what only memory can match, or asked for more than a page.
        let expensive = !selection.paged_by_store()
            || selection.text.is_some()
            || cursor.limit.is_none_or(|l| l > max);
        let _permit = if expensive {
            state.expensive("/api/catalog/entities/by-query").await?
        } else {
            None
        };
        let (docs, total) = select(&state, &selection, cursor.offset, cursor.limit).await?;
        let items = views::project_all(docs, &cursor.fields);
        let at = |offset: usize| {
            encode(&Cursor {
                offset,
                filters: cursor.filters.clone(),
                fields: cursor.fields.clone(),
                orders: cursor.orders.clone(),
                text: cursor.text.clone(),
                text_fields: cursor.text_fields.clone(),
                limit: cursor.limit,
                no_total: cursor.no_total,
            })
        };
        let following = cursor.offset.saturating_add(items.len());
        let mut page_info = serde_json::Map::new();
        if following < total {
            page_info.insert("nextCursor".into(), json!(at(following)));
        }
        if cursor.offset > 0 {
            let back = cursor.limit.unwrap_or(cursor.offset);
            page_info.insert(
                "prevCursor".into(),
                json!(at(cursor.offset.saturating_sub(back))),
            );
        }
        let mut out = json!({"items": items, "pageInfo": page_info});
        if !cursor.no_total {
            out["totalItems"] = json!(total);
        }
        Ok(Json(out).into_response())
    }
    inner(state, raw).await.unwrap_or_else(backstage_err)
}

/// `GET /api/catalog/entity-facets?facet=kind&facet=spec.type&filter=...`.
pub async fn facets(State(state): State<AppState>, RawQuery(raw): RawQuery) -> Response {
    async fn inner(state: AppState, raw: Option<String>) -> Result<Response, ApiError> {
        let p = params(raw.as_deref());
        only(&p, &["facet", "filter"])?;
        let wanted = p.get("facet").cloned().unwrap_or_default();
        if wanted.is_empty() {
            return Err(ApiError::BadRequest(
                "name at least one facet (facet=kind)".into(),
            ));
        }
        checked_fields("facet", &wanted)?;
        let selection = Selection {
            alternatives: parse_filters(p.get("filter").map(Vec::as_slice).unwrap_or_default())?,
            ..Selection::default()
        };
        let _permit = state.expensive("/api/catalog/entity-facets").await?;
        let docs = matching(&state, &selection).await?;
        let flats: Vec<Vec<(String, String)>> = docs.iter().map(flatten).collect();
        let mut out = serde_json::Map::new();
        for facet in wanted {
            let key = facet.to_lowercase();
            let mut counts: BTreeMap<String, usize> = BTreeMap::new();
            for (flat, doc) in flats.iter().zip(&docs) {
                // Values as written (Backstage returns the entity's own casing).
                let raw_values = raw_values(doc, &facet);
                let mut values: Vec<String> = if raw_values.is_empty() {
                    flat.iter()
                        .filter(|(k, _)| *k == key)
                        .map(|(_, v)| v.clone())
                        .collect()
                } else {
                    raw_values
                };
                values.sort();
                values.dedup();
                for v in values {
                    *counts.entry(v).or_default() += 1;
                }
            }
            let list: Vec<Value> = counts
                .into_iter()
                .map(|(value, count)| json!({"value": value, "count": count}))
                .collect();
            out.insert(facet, Value::Array(list));
        }
        Ok(Json(json!({"facets": out})).into_response())
    }
    inner(state, raw).await.unwrap_or_else(backstage_err)
}

/// The scalar values at a dotted path, following Backstage's case-insensitive keys.
fn raw_values(doc: &Value, path: &str) -> Vec<String> {
    let mut current = vec![doc];
    for part in path.split('.') {
        let mut next = Vec::new();
        for v in current {
            if let Value::Object(m) = v
                && let Some((_, found)) = m.iter().find(|(k, _)| k.eq_ignore_ascii_case(part))
            {
                next.push(found);
            }
        }
        current = next;
    }
    let mut out = Vec::new();
    for v in current {
        match v {
            Value::String(s) => out.push(s.clone()),
            Value::Array(items) => {
                out.extend(items.iter().filter_map(|i| i.as_str().map(str::to_string)))
            }
            Value::Number(n) => out.push(n.to_string()),
            Value::Bool(b) => out.push(b.to_string()),
            _ => {}
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn filters_and_flattening_follow_backstage() {
        let doc = json!({"kind": "Component", "metadata": {"name": "Web", "namespace": "default",
            "annotations": {"backstage.io/kubernetes-id": "web"}, "tags": ["React", "shop"]},
            "spec": {"type": "website"}, "relations": [{"type": "ownedBy", "targetRef": "group:default/team-a"}]});
        let flat = flatten(&doc);
        let f = |s: &[&str]| {
            parse_filters(&s.iter().map(|x| x.to_string()).collect::<Vec<_>>()).unwrap()
        };
        assert!(matches(&flat, &f(&["kind=component,spec.type=website"])));
        assert!(!matches(&flat, &f(&["kind=component,spec.type=service"])));
        assert!(
            matches(&flat, &f(&["kind=api", "spec.type=website"])),
            "alternatives OR"
        );
        assert!(matches(
            &flat,
            &f(&["metadata.annotations.backstage.io/kubernetes-id=WEB"])
        ));
        assert!(
            matches(&flat, &f(&["metadata.tags=react"])),
            "array elements"
        );
        assert!(matches(
            &flat,
            &f(&["relations.ownedby=group:default/team-a"])
        ));
        assert!(matches(&flat, &f(&["spec.type"])), "existence");
        assert!(!matches(&flat, &f(&["spec.lifecycle"])));
        assert!(parse_filters(&["=x".to_string()]).is_err());
        let p = pushdown(&f(&["kind=component,spec.type=a", "kind=component"]));
        assert_eq!(p.kind.as_deref(), Some("component"));
        assert!(pushdown(&f(&["kind=component", "kind=api"])).kind.is_none());
        assert_eq!(raw_values(&doc, "metadata.tags"), ["React", "shop"]);
    }

    #[test]
    fn only_filters_the_store_evaluates_exactly_are_paged_there() {
        let f = |s: &[&str]| {
            parse_filters(&s.iter().map(|x| x.to_string()).collect::<Vec<_>>()).unwrap()
        };
        let e = exact(&f(&[
            "Kind=Component,relations.ownedBy=group:default/team-a,metadata.namespace=default",
        ]))
        .expect("all three keys are the store's");
        assert_eq!(e.kind.as_deref(), Some("component"));
        assert_eq!(e.owner.as_deref(), Some("group:default/team-a"));
        assert_eq!(e.namespace.as_deref(), Some("default"));
        assert!(exact(&[]).is_some(), "no filter: every entity");
        for inexact in [
            &["kind=component,spec.type=service"][..],
            &["kind=component", "kind=component"],
            &["kind=component,kind=api"],
            &["kind"],
        ] {
            assert!(exact(&f(inexact)).is_none(), "{inexact:?}");
        }
    }
}
