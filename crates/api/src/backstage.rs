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
//! matched in memory over every candidate, so it runs under the expensive-request limit.

use std::collections::BTreeMap;

use axum::Json;
use axum::extract::rejection::PathRejection;
use axum::extract::{Path, RawQuery, State};
use axum::response::{IntoResponse, Response};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use surveyor_store::{EntityFilter, EntityRow};

use crate::error::ApiError;
use crate::{AppState, input, views};

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

/// The page `offset..offset + limit` of the entities matching the filters (and the text), as
/// Backstage documents in ref order, and how many match in all.
async fn page(
    state: &AppState,
    alternatives: &[Alternative],
    text: Option<&str>,
    offset: usize,
    limit: usize,
) -> Result<(Vec<Value>, usize), ApiError> {
    let Some(mut filter) = exact(alternatives) else {
        let docs = matching(state, alternatives, text).await?;
        let total = docs.len();
        return Ok((docs.into_iter().skip(offset).take(limit).collect(), total));
    };
    filter.text = text.map(str::to_string);
    let total = state.store.count_entities(&filter).await?;
    let rows = state
        .store
        .list_entities(&EntityFilter {
            offset: Some(i64::try_from(offset).unwrap_or(i64::MAX)),
            limit: Some(i64::try_from(limit).unwrap_or(i64::MAX)),
            ..filter
        })
        .await?;
    let keys: Vec<String> = rows.iter().map(|r| r.entity_ref.clone()).collect();
    let mut relations = views::by_source(state.store.relations_of_many(&keys).await?);
    let docs = rows
        .iter()
        .map(|r| views::backstage(r, &relations.remove(&r.entity_ref).unwrap_or_default()))
        .collect();
    Ok((docs, usize::try_from(total).unwrap_or(0)))
}

/// Entities matching the filters, as Backstage documents, in ref order.
async fn matching(
    state: &AppState,
    alternatives: &[Alternative],
    text: Option<&str>,
) -> Result<Vec<Value>, ApiError> {
    let mut filter = pushdown(alternatives);
    filter.text = text.map(str::to_string);
    let rows: Vec<EntityRow> = state.store.list_entities(&filter).await?;
    let keys: Vec<String> = rows.iter().map(|r| r.entity_ref.clone()).collect();
    let mut relations = views::by_source(state.store.relations_of_many(&keys).await?);
    let mut out = Vec::new();
    for r in &rows {
        let doc = views::backstage(r, &relations.remove(&r.entity_ref).unwrap_or_default());
        if matches(&flatten(&doc), alternatives) {
            out.push(doc);
        }
    }
    Ok(out)
}

fn backstage_err(e: ApiError) -> Response {
    e.backstage()
}

/// `GET /api/catalog/entities?filter=...&fields=...&offset=&limit=`: a JSON array.
#[utoipa::path(get, path = "/api/catalog/entities", responses((status = 200, description = "entities (Backstage shape)")))]
pub async fn entities(State(state): State<AppState>, RawQuery(raw): RawQuery) -> Response {
    async fn inner(state: AppState, raw: Option<String>) -> Result<Response, ApiError> {
        let p = params(raw.as_deref());
        let alternatives = parse_filters(p.get("filter").map(Vec::as_slice).unwrap_or_default())?;
        let offset = number(&p, "offset")?.unwrap_or(0);
        let max = state.config.max_page_size as usize;
        let limit = number(&p, "limit")?.unwrap_or(max);
        if limit > max {
            return Err(ApiError::BadRequest(format!(
                "limit {limit} is over this server's max_page_size ({max})"
            )));
        }
        let f = fields(&p)?;
        let _permit = if exact(&alternatives).is_none() {
            state.expensive("/api/catalog/entities").await?
        } else {
            None
        };
        let (docs, _) = page(&state, &alternatives, None, offset, limit).await?;
        let docs: Vec<Value> = docs.iter().map(|d| views::project(d, &f)).collect();
        Ok(Json(docs).into_response())
    }
    inner(state, raw).await.unwrap_or_else(backstage_err)
}

/// `GET /api/catalog/entities/by-name/{kind}/{namespace}/{name}`.
#[utoipa::path(get, path = "/api/catalog/entities/by-name/{kind}/{namespace}/{name}",
    responses((status = 200, description = "the entity (Backstage shape)"), (status = 404, description = "NotFoundError")))]
pub async fn by_name(
    State(state): State<AppState>,
    path: Result<Path<(String, String, String)>, PathRejection>,
) -> Response {
    async fn inner(state: AppState, key: String) -> Result<Response, ApiError> {
        let row = state
            .store
            .get_entity(&key)
            .await?
            .filter(EntityRow::is_live)
            .ok_or_else(|| ApiError::NotFound(format!("No entity named '{key}' found")))?;
        let relations = state.store.relations_of(&key).await?;
        Ok(Json(views::backstage(&row, &relations)).into_response())
    }
    let key = match path.map_err(input::bad_path) {
        Ok(Path((kind, namespace, name))) => input::path_ref(&kind, &namespace, &name),
        Err(e) => Err(e),
    };
    match key {
        Ok(key) => inner(state, key).await.unwrap_or_else(backstage_err),
        Err(e) => backstage_err(e),
    }
}

/// The by-query cursor: the whole query, so a client sends only the cursor for the next page.
#[derive(Serialize, Deserialize)]
struct Cursor {
    filters: Vec<String>,
    fields: Vec<String>,
    order: Option<String>,
    text: Option<String>,
    limit: usize,
    offset: usize,
}

/// `GET /api/catalog/entities/by-query`: `{items, totalItems, pageInfo: {nextCursor, prevCursor}}`.
#[utoipa::path(get, path = "/api/catalog/entities/by-query", responses((status = 200, description = "a page (Backstage shape)")))]
pub async fn by_query(State(state): State<AppState>, RawQuery(raw): RawQuery) -> Response {
    async fn inner(state: AppState, raw: Option<String>) -> Result<Response, ApiError> {
        let p = params(raw.as_deref());
        let max = state.config.max_page_size as usize;
        let cursor = match one(&p, "cursor")? {
            Some(c) => {
                let bytes = URL_SAFE_NO_PAD.decode(c.as_bytes()).map_err(|_| {
                    ApiError::BadRequest("cursor: not one this server gave out".into())
                })?;
                serde_json::from_slice::<Cursor>(&bytes).map_err(|_| {
                    ApiError::BadRequest("cursor: not one this server gave out".into())
                })?
            }
            None => Cursor {
                filters: p.get("filter").cloned().unwrap_or_default(),
                fields: fields(&p)?,
                order: one(&p, "orderField")?,
                text: one(&p, "fullTextFilterTerm")?,
                limit: number(&p, "limit")?.unwrap_or(20.min(max)),
                offset: 0,
            },
        };
        if cursor.limit == 0 || cursor.limit > max {
            return Err(ApiError::BadRequest(format!("limit must be 1 to {max}")));
        }
        // A cursor carries the whole query, so it is held to the same limits as one.
        checked_fields("fields", &cursor.fields)?;
        input::opt("orderField", cursor.order.as_deref())?;
        input::opt("fullTextFilterTerm", cursor.text.as_deref())?;
        let alternatives = parse_filters(&cursor.filters)?;
        let text = cursor.text.as_deref();
        // Paged by the store unless sorted, searched (every match is counted) or filtered on
        // what only memory can match.
        let in_memory = cursor.order.is_some() || text.is_some() || exact(&alternatives).is_none();
        let _permit = if in_memory {
            state.expensive("/api/catalog/entities/by-query").await?
        } else {
            None
        };
        let (docs, total) = match &cursor.order {
            None => page(&state, &alternatives, text, cursor.offset, cursor.limit).await?,
            Some(order) => {
                let mut docs = matching(&state, &alternatives, text).await?;
                sort(&mut docs, order)?;
                let total = docs.len();
                let docs = docs
                    .into_iter()
                    .skip(cursor.offset)
                    .take(cursor.limit)
                    .collect();
                (docs, total)
            }
        };
        let items: Vec<Value> = docs
            .iter()
            .map(|d| views::project(d, &cursor.fields))
            .collect();
        let encode = |offset: usize| {
            let c = Cursor {
                offset,
                filters: cursor.filters.clone(),
                fields: cursor.fields.clone(),
                order: cursor.order.clone(),
                text: cursor.text.clone(),
                limit: cursor.limit,
            };
            URL_SAFE_NO_PAD.encode(serde_json::to_vec(&c).unwrap_or_default())
        };
        let following = cursor.offset.saturating_add(cursor.limit);
        let next = (following < total).then(|| encode(following));
        let prev = (cursor.offset > 0).then(|| encode(cursor.offset.saturating_sub(cursor.limit)));
        let mut page_info = serde_json::Map::new();
        if let Some(n) = next {
            page_info.insert("nextCursor".into(), json!(n));
        }
        if let Some(p) = prev {
            page_info.insert("prevCursor".into(), json!(p));
        }
        Ok(
            Json(json!({"items": items, "totalItems": total, "pageInfo": page_info}))
                .into_response(),
        )
    }
    inner(state, raw).await.unwrap_or_else(backstage_err)
}

/// Sorts documents by `orderField` (`field` or `field,asc|desc`), in memory: any dotted field
/// can be asked for, most of which no index has.
fn sort(docs: &mut [Value], order: &str) -> Result<(), ApiError> {
    let (field, dir) = order.split_once(',').unwrap_or((order, "asc"));
    let desc = match dir.trim() {
        "asc" => false,
        "desc" => true,
        other => {
            return Err(ApiError::BadRequest(format!(
                "orderField {order:?}: direction {other:?} is not asc or desc"
            )));
        }
    };
    let field = field.trim().to_lowercase();
    let key = |d: &Value| {
        flatten(d)
            .into_iter()
            .find(|(k, _)| *k == field)
            .map(|(_, v)| v)
    };
    // Entities without the field sort last either way, as in Backstage.
    docs.sort_by(|a, b| match (key(a), key(b)) {
        (Some(x), Some(y)) => {
            if desc {
                y.cmp(&x)
            } else {
                x.cmp(&y)
            }
        }
        (Some(_), None) => std::cmp::Ordering::Less,
        (None, Some(_)) => std::cmp::Ordering::Greater,
        (None, None) => std::cmp::Ordering::Equal,
    });
    Ok(())
}

/// `GET /api/catalog/entity-facets?facet=kind&facet=spec.type&filter=...`.
#[utoipa::path(get, path = "/api/catalog/entity-facets", responses((status = 200, description = "`{facets: {field: [{value, count}]}}`")))]
pub async fn facets(State(state): State<AppState>, RawQuery(raw): RawQuery) -> Response {
    async fn inner(state: AppState, raw: Option<String>) -> Result<Response, ApiError> {
        let p = params(raw.as_deref());
        let wanted = p.get("facet").cloned().unwrap_or_default();
        if wanted.is_empty() {
            return Err(ApiError::BadRequest(
                "name at least one facet (facet=kind)".into(),
            ));
        }
        checked_fields("facet", &wanted)?;
        let alternatives = parse_filters(p.get("filter").map(Vec::as_slice).unwrap_or_default())?;
        let _permit = state.expensive("/api/catalog/entity-facets").await?;
        let docs = matching(&state, &alternatives, None).await?;
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
