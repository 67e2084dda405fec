//! The catalog page (`/`): a search box, filters, counts per kind and a cursor-paged table.

use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::Response;
use maud::{Markup, html};
use serde::Deserialize;
use serde_json::Value;
use surveyor_store::{EntityFilter, EntityRow};

use super::page::{Chrome, PageError, Section, respond, shell};
use super::{entity_href, given, query};
use crate::error::ApiError;
use crate::{AppState, input, v1};

/// Rows per page.
pub const PAGE: i64 = 50;

/// The catalog's filters, as the form sends them.
#[derive(Debug, Default, Deserialize)]
pub struct CatalogQuery {
    pub q: Option<String>,
    pub kind: Option<String>,
    pub owner: Option<String>,
    pub namespace: Option<String>,
    pub source: Option<String>,
    pub lifecycle: Option<String>,
    pub label: Option<String>,
    /// A tier or a stack, as classification gave them (`tier-1`; `typescript` or
    /// `typescript/react`).
    pub tier: Option<String>,
    pub stack: Option<String>,
    pub cursor: Option<String>,
}

impl CatalogQuery {
    fn pairs(&self) -> Vec<(&'static str, String)> {
        [
            ("q", &self.q),
            ("kind", &self.kind),
            ("owner", &self.owner),
            ("namespace", &self.namespace),
            ("source", &self.source),
            ("lifecycle", &self.lifecycle),
            ("label", &self.label),
            ("tier", &self.tier),
            ("stack", &self.stack),
        ]
        .into_iter()
        .filter_map(|(k, v)| given(v).map(|v| (k, v)))
        .collect()
    }

    /// The link to this query with `kind` replaced (the chips), on its first page.
    fn with_kind(&self, kind: Option<&str>) -> String {
        let mut pairs: Vec<(&str, String)> = self
            .pairs()
            .into_iter()
            .filter(|(k, _)| *k != "kind")
            .collect();
        if let Some(k) = kind {
            pairs.push(("kind", k.to_string()));
        }
        link(&pairs)
    }

    /// What a cursor is bound to: every filter.
    fn identity(&self) -> String {
        serde_json::to_string(&self.pairs()).unwrap_or_default()
    }

    fn filter(&self) -> Result<EntityFilter, ApiError> {
        for (name, v) in self.pairs() {
            input::value(name, &v)?;
        }
        let label = match given(&self.label) {
            None => None,
            Some(l) => {
                let (k, v) = l.split_once('=').ok_or_else(|| {
                    ApiError::BadRequest(format!("label {l:?}: write it as key=value"))
                })?;
                let (k, v) = (k.trim(), v.trim());
                if !surveyor_model::validate::is_valid_label_key(k) {
                    return Err(ApiError::BadRequest(format!(
                        "label {l:?}: {k:?} is not a label key"
                    )));
                }
                Some((k.to_string(), v.to_string()))
            }
        };
        let after = match &self.cursor {
            Some(c) => Some(v1::decode_cursor("console", &self.identity(), c)?),
            None => None,
        };
        Ok(EntityFilter {
            kind: given(&self.kind),
            namespace: given(&self.namespace),
            owner: given(&self.owner)
                .as_deref()
                .map(v1::owner_key)
                .transpose()?,
            label,
            source: given(&self.source),
            text: given(&self.q),
            lifecycle: given(&self.lifecycle),
            classified: [("tier", &self.tier), ("stack", &self.stack)]
                .into_iter()
                .filter_map(|(f, v)| given(v).map(|v| (f.to_string(), v)))
                .collect(),
            after,
            limit: Some(PAGE),
            ..EntityFilter::default()
        })
    }
}

/// One row of the table, read from the stored body.
struct Row {
    href: String,
    name: String,
    title: Option<String>,
    kind: String,
    owner: Option<String>,
    lifecycle: Option<String>,
    type_: Option<String>,
    description: Option<String>,
    sources: Vec<String>,
}

fn row(e: &EntityRow) -> Row {
    let body: Value = serde_json::from_str(&e.body).unwrap_or(Value::Null);
    let text = |v: &Value| v.as_str().map(str::to_string);
    let sources: Value = serde_json::from_str(&e.sources).unwrap_or(Value::Null);
    let mut names: Vec<String> = sources
        .as_array()
        .map(|a| {
            a.iter()
                .filter_map(|c| c["source"].as_str().map(str::to_string))
                .collect()
        })
        .unwrap_or_default();
    names.dedup();
    Row {
        href: entity_href(&e.display_ref),
        name: e.display_ref.clone(),
        title: text(&body["metadata"]["title"]),
        kind: body["kind"].as_str().unwrap_or(&e.kind).to_string(),
        owner: text(&body["spec"]["owner"]),
        lifecycle: text(&body["spec"]["lifecycle"]),
        type_: text(&body["spec"]["type"]),
        description: text(&body["metadata"]["description"]).map(|d| shorten(&d, 160)),
        sources: names,
    }
}

/// `/?pairs`, or `/` when there are none.
fn link(pairs: &[(&str, String)]) -> String {
    let list: Vec<(&str, &str)> = pairs.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let q = query(&list);
    if q.is_empty() {
        "/".into()
    } else {
        format!("/?{q}")
    }
}

/// At most `n` characters, with an ellipsis when cut.
pub fn shorten(s: &str, n: usize) -> String {
    match s.char_indices().nth(n) {
        Some((i, _)) => format!("{}…", &s[..i]),
        None => s.to_string(),
    }
}

/// `GET /`.
pub async fn page_handler(
    state: AppState,
    chrome: Chrome,
    q: CatalogQuery,
) -> Result<Response, PageError> {
    let with = |e: ApiError| PageError { error: e, chrome };
    let filter = q.filter().map_err(with)?;
    let rows = state
        .store
        .list_entities(&filter)
        .await
        .map_err(|e| with(e.into()))?;
    let counts = state
        .store
        .count_by_kind(&filter)
        .await
        .map_err(|e| with(e.into()))?;
    let all: i64 = counts.iter().map(|(_, n)| n).sum();
    let selected = given(&q.kind).map(|k| k.to_ascii_lowercase());
    let matching = match &selected {
        Some(k) => counts.iter().find(|(c, _)| c == k).map_or(0, |(_, n)| *n),
        None => all,
    };
    let next = (rows.len() as i64 == PAGE)
        .then(|| rows.last())
        .flatten()
        .map(|r| v1::encode_cursor("console", &q.identity(), &r.entity_ref));
    let sources: Vec<String> = state
        .control
        .as_ref()
        .map(|c| c.connectors().into_iter().map(|v| v.id).collect())
        .unwrap_or_default();
    let rows: Vec<Row> = rows.iter().map(row).collect();
    let next_href = next.map(|c| {
        let mut pairs = q.pairs();
        pairs.push(("cursor", c));
        link(&pairs)
    });
    let v = |o: &Option<String>| o.clone().unwrap_or_default();
    let body = html! {
        h1 { "Catalog" }
        form.filters role="search" method="get" action="/" aria-label="Search the catalog" {
            label for="q" { "Search"
                input #q type="search" name="q" value=(v(&q.q)) placeholder="name, title, description, tag" aria-describedby="q-hint"; }
            span #q-hint hidden { "Matches a part of the name, title, description or a tag, in any case." }
            label for="kind" { "Kind"
                select #kind name="kind" {
                    option value="" { "any" }
                    @for (k, n) in &counts {
                        option value=(k) selected[selected.as_deref() == Some(k.as_str())] { (k) " (" (n) ")" }
                    }
                    @if let Some(k) = &selected {
                        @if !counts.iter().any(|(c, _)| c == k) {
                            option value=(k) selected { (k) " (0)" }
                        }
                    }
                }
            }
            label for="owner" { "Owner" input #owner name="owner" value=(v(&q.owner)) placeholder="group:default/team-a"; }
            label for="namespace" { "Namespace" input #namespace name="namespace" value=(v(&q.namespace)) placeholder="default"; }
            label for="source" { "Source" input #source name="source" list="sources" value=(v(&q.source)); }
            datalist #sources { @for s in &sources { option value=(s) {} } }
            label for="lifecycle" { "Lifecycle" input #lifecycle name="lifecycle" value=(v(&q.lifecycle)) placeholder="production"; }
            label for="label" { "Label" input #label name="label" value=(v(&q.label)) placeholder="key=value"; }
            label for="tier" { "Tier" input #tier name="tier" value=(v(&q.tier)) placeholder="tier-1"; }
            label for="stack" { "Stack" input #stack name="stack" value=(v(&q.stack)) placeholder="typescript/react"; }
            button.primary type="submit" { "Search" }
            @if !q.pairs().is_empty() { a href="/" { "Clear" } }
        }
        nav aria-label="Kinds" {
            ul.chips {
                li { a href=(q.with_kind(None)) aria-current=(if selected.is_none() { "true" } else { "false" }) { "All " (all) } }
                @for (k, n) in &counts {
                    li { a href=(q.with_kind(Some(k))) aria-current=(if selected.as_deref() == Some(k.as_str()) { "true" } else { "false" }) { (k) " " (n) } }
                }
            }
        }
        p.muted #result-count { (matching) " matching " (if matching == 1 { "entity" } else { "entities" }) }
        @if rows.is_empty() {
            p.notice { "Nothing matches. Try fewer filters." }
        } @else {
            (table(&rows))
        }
        nav.pager aria-label="Pages" {
            @if q.cursor.is_some() { a href=(q.with_kind(selected.as_deref())) { "← First page" } }
            @if let Some(href) = &next_href { a rel="next" href=(href) { "Next page →" } }
        }
    };
    Ok(respond(
        StatusCode::OK,
        shell("Catalog", Section::Catalog, chrome, body),
    ))
}

fn table(rows: &[Row]) -> Markup {
    html! {
        div.table-wrap {
            table #entities {
                caption.muted { "Entities, by ref" }
                thead { tr { th scope="col" { "Entity" } th scope="col" { "Kind" } th scope="col" { "Owner" }
                    th scope="col" { "Type" } th scope="col" { "Lifecycle" } th scope="col" { "Sources" } th scope="col" { "Description" } } }
                tbody {
                    @for r in rows {
                        tr {
                            td { a href=(r.href) { (r.name) } @if let Some(t) = &r.title { br; span.muted { (t) } } }
                            td { (r.kind) }
                            td { @if let Some(o) = &r.owner { a href=(entity_href_owner(o)) { (o) } } }
                            td { (r.type_.clone().unwrap_or_default()) }
                            td { (r.lifecycle.clone().unwrap_or_default()) }
                            td { (r.sources.join(", ")) }
                            td { (r.description.clone().unwrap_or_default()) }
                        }
                    }
                }
            }
        }
    }
}

/// An owner as written in `spec.owner` (`team-a` is a group in `default`).
pub fn entity_href_owner(owner: &str) -> String {
    match surveyor_model::EntityRef::parse_with(owner, Some("group"), "default") {
        Ok(r) => entity_href(&r.to_string()),
        Err(_) => entity_href(owner),
    }
}

/// Axum's entry point (unknown parameters are ignored).
pub async fn page(
    State(state): State<AppState>,
    chrome: Chrome,
    query: Result<Query<CatalogQuery>, axum::extract::rejection::QueryRejection>,
) -> Result<Response, PageError> {
    let Query(q) = query.map_err(|e| PageError {
        error: ApiError::BadRequest(e.body_text()),
        chrome,
    })?;
    page_handler(state, chrome, q).await
}
