//! The entity page: every field with the source that set it, what other sources said instead,
//! relations as links, the sources' own links, and the history as a timeline of readable diffs
//! (following the entity through renames: history is kept by uid).

use std::collections::BTreeMap;

use axum::extract::rejection::PathRejection;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::Response;
use maud::{Markup, html};
use serde_json::Value;
use surveyor_store::{ChangeFilter, ChangeOp, ChangeRow, RelationRow};

use super::catalog::entity_href_owner;
use super::page::{Chrome, PageError, Section, respond, shell};
use super::{entity_href, query, when};
use crate::error::ApiError;
use crate::v1::EntityPath;
use crate::{AppState, input};

/// Changes replayed to show what each one replaced: an entity's whole history up to this.
const HISTORY_READ: i64 = 2000;
/// Changes shown on the page, newest first; the rest are one link away.
const HISTORY_SHOWN: usize = 50;

/// A source's claim, as stored in `entities.sources`.
#[derive(Debug, Default, serde::Deserialize)]
#[serde(rename_all = "camelCase", default)]
struct Claim {
    source: String,
    external_id: String,
    declared: bool,
    winner: bool,
    fields: Vec<String>,
    disagrees: BTreeMap<String, Value>,
    own: BTreeMap<String, Value>,
    cosmetic: BTreeMap<String, Value>,
}

/// A field of the entity as shown: JSON pointer, value, and who set it.
struct Field {
    pointer: String,
    value: String,
    source: String,
}

/// Leaves of `metadata` and `spec` worth a row each: scalars, and lists or maps of scalars
/// as one value.
fn fields(body: &Value, claims: &[Claim]) -> Vec<Field> {
    let winner = claims
        .iter()
        .find(|c| c.winner)
        .or(claims.first())
        .map(|c| c.source.clone())
        .unwrap_or_default();
    let mut out = Vec::new();
    let mut walk = |pointer: String, v: &Value| {
        // The sources whose supplied fields include this one or a parent of it, the most
        // specific first: a union field (links, tags) names every source that added to it.
        let mut best = 0;
        let mut by: Vec<&str> = Vec::new();
        for c in claims {
            let Some(len) = c
                .fields
                .iter()
                .filter(|f| pointer == **f || pointer.starts_with(&format!("{f}/")))
                .map(|f| f.len())
                .max()
            else {
                continue;
            };
            if len > best {
                best = len;
                by.clear();
            }
            if len == best && !by.contains(&c.source.as_str()) {
                by.push(&c.source);
            }
        }
        let by = if by.is_empty() {
            winner.clone()
        } else {
            by.join(", ")
        };
        out.push(Field {
            value: field_text(&pointer, v),
            pointer,
            source: by,
        });
    };
    for section in ["metadata", "spec"] {
        let Some(map) = body[section].as_object() else {
            continue;
        };
        for (k, v) in map {
            let p = format!("/{section}/{}", escape_pointer(k));
            match v {
                // Labels and annotations: a row per key (each can come from another source).
                Value::Object(inner) if section == "metadata" => {
                    for (ik, iv) in inner {
                        walk(format!("{p}/{}", escape_pointer(ik)), iv);
                    }
                }
                _ => walk(p, v),
            }
        }
    }
    out
}

fn escape_pointer(s: &str) -> String {
    s.replace('~', "~0").replace('/', "~1")
}

/// A field's value in the fields table: lists of names joined, lists of records counted (they
/// have their own sections), the rest as [`display`].
fn field_text(pointer: &str, v: &Value) -> String {
    match v {
        Value::Array(items) if items.iter().all(|i| !i.is_object() && !i.is_array()) => {
            items.iter().map(display).collect::<Vec<_>>().join(", ")
        }
        Value::Array(items) => {
            let what = match pointer {
                "/metadata/links" => "links, under Sources and links",
                "/spec/packageDependencies" => "packages, under Package dependencies",
                _ => "entries",
            };
            match pointer {
                "/metadata/links" | "/spec/packageDependencies" => {
                    format!("{} {what}", items.len())
                }
                _ => display(v),
            }
        }
        _ => display(v),
    }
}

/// A JSON pointer as people read it: `/metadata/annotations/github.com~1project-slug` is
/// `metadata › annotations › github.com/project-slug`.
pub fn readable(pointer: &str) -> String {
    if pointer.is_empty() || !pointer.starts_with('/') {
        return pointer.to_string();
    }
    pointer[1..]
        .split('/')
        .map(|s| s.replace("~1", "/").replace("~0", "~"))
        .collect::<Vec<_>>()
        .join(" › ")
}

/// A value as one line of text: strings bare, the rest as JSON.
pub fn display(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        Value::Null => "—".into(),
        other => other.to_string(),
    }
}

/// A link safe to put in `href`: only http(s) and mailto (never `javascript:`).
fn safe_url(url: &str) -> Option<&str> {
    // Backstage's location annotations prefix the URL with its type.
    let url = url.strip_prefix("url:").unwrap_or(url);
    let lower = url.trim_start().to_ascii_lowercase();
    (lower.starts_with("https://") || lower.starts_with("http://") || lower.starts_with("mailto:"))
        .then_some(url.trim())
}

/// One row of a change's diff.
pub struct DiffLine {
    pub path: String,
    pub before: Option<String>,
    pub after: Option<String>,
}

/// A change, with what each of its operations replaced (found by replaying the history).
pub struct Step {
    pub change: ChangeRow,
    pub lines: Vec<DiffLine>,
}

/// Replays an entity's changes in order, recording each operation's value before and after.
pub fn replay(changes: Vec<ChangeRow>) -> Vec<Step> {
    let mut doc = Value::Null;
    let mut steps = Vec::with_capacity(changes.len());
    for change in changes {
        let mut lines = Vec::new();
        let ops = change.patch.as_array().cloned().unwrap_or_default();
        for op in ops {
            let path = op["path"].as_str().unwrap_or_default().to_string();
            let before = doc.pointer(&path).cloned();
            let applied = serde_json::from_value::<json_patch::Patch>(Value::Array(vec![op]))
                .ok()
                .is_some_and(|p| json_patch::patch(&mut doc, &p).is_ok());
            let after = if applied {
                doc.pointer(&path).cloned()
            } else {
                None
            };
            if change.op == ChangeOp::Created && path.is_empty() {
                // The whole first version: one line per field rather than one blob.
                if let Some(v) = &after {
                    flatten("", v, &mut |p, v| {
                        lines.push(DiffLine {
                            path: p,
                            before: None,
                            after: Some(display(v)),
                        })
                    });
                }
                continue;
            }
            lines.push(DiffLine {
                path: if path.is_empty() {
                    "(whole entity)".into()
                } else {
                    path
                },
                before: before.as_ref().map(display),
                after: after.as_ref().map(display),
            });
        }
        steps.push(Step { change, lines });
    }
    steps
}

/// Calls `f` for each leaf of `metadata`/`spec` (and other top-level scalars).
fn flatten(prefix: &str, v: &Value, f: &mut dyn FnMut(String, &Value)) {
    match v {
        Value::Object(m) if prefix.matches('/').count() < 2 => {
            for (k, inner) in m {
                flatten(&format!("{prefix}/{}", escape_pointer(k)), inner, f);
            }
        }
        _ => f(prefix.to_string(), v),
    }
}

/// `GET /entities/{kind}/{namespace}/{name}`.
pub async fn page(
    State(state): State<AppState>,
    chrome: Chrome,
    path: Result<Path<EntityPath>, PathRejection>,
) -> Result<Response, PageError> {
    let with = |e: ApiError| PageError { error: e, chrome };
    let Path(p) = path.map_err(|e| with(input::bad_path(e)))?;
    let key = input::path_ref(&p.kind, &p.namespace, &p.name).map_err(with)?;
    let store = &state.store;
    let row = store
        .get_entity(&key)
        .await
        .map_err(|e| with(e.into()))?
        .ok_or_else(|| with(ApiError::NotFound(format!("no entity {key}"))))?;
    let relations = store.relations_of(&key).await.map_err(|e| with(e.into()))?;
    let changes = store
        .list_changes(&ChangeFilter {
            entity_uid: Some(row.uid.clone()),
            limit: Some(HISTORY_READ),
            ..ChangeFilter::default()
        })
        .await
        .map_err(|e| with(e.into()))?;
    let body: Value = serde_json::from_str(&row.body).unwrap_or(Value::Null);
    let claims: Vec<Claim> = serde_json::from_str(&row.sources).unwrap_or_default();
    let fields = fields(&body, &claims);
    let classes = store
        .classifications_of(&key)
        .await
        .map_err(|e| with(e.into()))?;
    let mut grades = Vec::new();
    for card in &state.config.scorecards {
        let mine = store
            .score_of(&card.name, &key)
            .await
            .map_err(|e| with(e.into()))?;
        grades.extend(mine.map(|g| (card, g)));
    }
    let total_changes = changes.len();
    let mut steps = replay(changes);
    steps.reverse();
    steps.truncate(HISTORY_SHOWN);
    let title = body["metadata"]["title"].as_str();
    let kind = body["kind"].as_str().unwrap_or(&row.kind);
    let graph = format!("{}/graph", entity_href(&row.display_ref));
    let history_href = format!(
        "/changes?{}",
        query(&[("entity", row.display_ref.as_str())])
    );
    let markup = html! {
        nav aria-label="Breadcrumb" {
            p.muted { a href="/" { "Catalog" } " › " a href=(format!("/?{}", query(&[("kind", &kind.to_ascii_lowercase())]))) { (kind) } }
        }
        h1 { (row.display_ref) }
        @if let Some(t) = title { p.muted { (t) } }
        @if let Some(d) = body["metadata"]["description"].as_str() { p #description { (d) } }
        @if let Some(at) = row.deleted_at {
            div.notice.error role="status" { p { "No source describes this entity any more: deleted " (when(at)) "." } }
        }
        p { a href=(graph) { "Graph of its neighbourhood" } " · " a href=(history_href) { "All changes" } }
        section aria-labelledby="fields-h" {
            h2 #fields-h { "Fields" }
            div.table-wrap { table.stack #fields {
                thead { tr { th scope="col" { "Field" } th scope="col" { "Value" } th scope="col" { "Set by" } } }
                tbody { @for f in &fields {
                    tr { td { (readable(&f.pointer)) } td { (field_value(&f.pointer, &f.value)) } td { (f.source) } }
                } }
            } }
        }
        (super::score::classification_section(&classes))
        (super::score::grades_section(&grades))
        (disagreements(&body, &claims))
        (relations_section(&relations))
        (links_section(&body, &claims))
        (packages_section(&body))
        section aria-labelledby="history-h" {
            h2 #history-h { "History" }
            p.muted { (total_changes) " change" (if total_changes == 1 { "" } else { "s" }) " recorded"
                @if total_changes > HISTORY_SHOWN { ", the latest " (HISTORY_SHOWN) " shown: " a href=(history_href) { "see all" } } }
            (timeline(&steps))
        }
    };
    Ok(respond(
        StatusCode::OK,
        shell(&row.display_ref, Section::Catalog, chrome, markup),
    ))
}

/// A field's value, as a link where it names an entity (the owner, the system, ...).
fn field_value(pointer: &str, value: &str) -> Markup {
    let refers = matches!(
        pointer,
        "/spec/owner" | "/spec/system" | "/spec/domain" | "/spec/subcomponentOf" | "/spec/parent"
    );
    html! {
        @if refers { a href=(entity_href_owner_for(pointer, value)) { (value) } }
        @else if let Some(url) = safe_url(value) { a href=(url) rel="noreferrer" { (value) } }
        @else { (value) }
    }
}

fn entity_href_owner_for(pointer: &str, value: &str) -> String {
    let kind = match pointer {
        "/spec/system" => Some("system"),
        "/spec/domain" => Some("domain"),
        "/spec/subcomponentOf" => Some("component"),
        "/spec/parent" => Some("group"),
        _ => None,
    };
    match kind {
        Some(k) => surveyor_model::EntityRef::parse_with(value, Some(k), "default")
            .map(|r| entity_href(&r.to_string()))
            .unwrap_or_else(|_| entity_href(value)),
        None => entity_href_owner(value),
    }
}

fn disagreements(body: &Value, claims: &[Claim]) -> Markup {
    let mut rows: Vec<(String, String, String, String, &'static str)> = Vec::new();
    for c in claims {
        for (map, what) in [
            (&c.disagrees, "disagrees"),
            (&c.own, "its own value"),
            (&c.cosmetic, "cosmetic"),
        ] {
            for (pointer, theirs) in map {
                let shown = body
                    .pointer(pointer)
                    .map(display)
                    .unwrap_or_else(|| "—".into());
                rows.push((
                    pointer.clone(),
                    shown,
                    c.source.clone(),
                    display(theirs),
                    what,
                ));
            }
        }
    }
    html! {
        section aria-labelledby="disagree-h" {
            h2 #disagree-h { "What other sources say" }
            @if rows.is_empty() {
                p.muted { "Every source that describes this entity agrees with the values shown." }
            } @else {
                div.table-wrap { table.stack #disagreements {
                    thead { tr { th scope="col" { "Field" } th scope="col" { "Shown" } th scope="col" { "Source" } th scope="col" { "Says" } th scope="col" { "Kind" } } }
                    tbody { @for (p, shown, source, theirs, what) in &rows {
                        tr { td { (readable(p)) } td { (shown) } td { (source) } td { (theirs) } td { (what) } }
                    } }
                } }
            }
        }
    }
}

fn relations_section(relations: &[RelationRow]) -> Markup {
    let mut by_type: BTreeMap<&str, Vec<&RelationRow>> = BTreeMap::new();
    for r in relations {
        by_type.entry(r.kind.as_str()).or_default().push(r);
    }
    html! {
        section aria-labelledby="relations-h" {
            h2 #relations-h { "Relations" }
            @if by_type.is_empty() { p.muted { "None." } }
            @else {
                dl.fields #relations {
                    @for (t, rs) in &by_type {
                        dt { (t) }
                        dd { @for (i, r) in rs.iter().enumerate() {
                            @if i > 0 { ", " }
                            a href=(entity_href(&r.target_display)) { (r.target_display) }
                        } }
                    }
                }
            }
        }
    }
}

fn links_section(body: &Value, claims: &[Claim]) -> Markup {
    let links: Vec<(String, String)> = body["metadata"]["links"]
        .as_array()
        .map(|a| {
            a.iter()
                .filter_map(|l| {
                    let url = l["url"].as_str()?;
                    let title = l["title"].as_str().unwrap_or(url);
                    Some((url.to_string(), title.to_string()))
                })
                .collect()
        })
        .unwrap_or_default();
    html! {
        section aria-labelledby="sources-h" {
            h2 #sources-h { "Sources and links" }
            ul #sources {
                @for c in claims {
                    li { strong { (c.source) } " — " span.mono { (c.external_id) }
                        @if c.declared { " " span.badge { "declared" } }
                        @if c.winner { " " span.badge { "names the entity" } } }
                }
            }
            @if !links.is_empty() {
                ul #links { @for (url, title) in &links {
                    li { @if let Some(u) = safe_url(url) { a href=(u) rel="noreferrer" { (title) } } @else { (title) " (" (url) ")" } }
                } }
            }
        }
    }
}

/// `spec.packageDependencies`: what the entity's manifests depend on.
fn packages_section(body: &Value) -> Markup {
    let Some(deps) = body["spec"]["packageDependencies"]
        .as_array()
        .filter(|d| !d.is_empty())
    else {
        return html! {};
    };
    let cell = |d: &Value, k: &str| d[k].as_str().unwrap_or_default().to_string();
    html! {
        section aria-labelledby="packages-h" {
            h2 #packages-h { "Package dependencies" }
            div.table-wrap { table #packages {
                thead { tr { th scope="col" { "Ecosystem" } th scope="col" { "Package" } th scope="col" { "Requirement" } th scope="col" { "Scope" } th scope="col" { "File" } } }
                tbody { @for d in deps {
                    tr { td { (cell(d, "ecosystem")) }
                         td { (cell(d, "package")) }
                         td.mono { (cell(d, "requirement")) } td { (cell(d, "scope")) } td { (cell(d, "file")) } }
                } }
            } }
        }
    }
}

/// The history, newest first, each change with its diff.
pub fn timeline(steps: &[Step]) -> Markup {
    html! {
        @if steps.is_empty() { p.muted { "No changes recorded." } }
        ol.timeline #history {
            @for s in steps {
                @let c = &s.change;
                li {
                    p { span class=(format!("badge op-{}", c.op.as_str())) { (c.op.as_str()) } " "
                        time datetime=(c.at.to_rfc3339()) { (when(c.at)) } " by " strong { (c.source) }
                        span.muted { " · run " span.mono { (c.run_id) } } }
                    @if let Some(prev) = &c.previous_ref {
                        p { "Renamed from " a href=(entity_href(prev)) { (prev) } " to " a href=(entity_href(&c.entity_ref)) { (c.entity_ref) } }
                    }
                    @if !s.lines.is_empty() {
                        @let open = c.op != ChangeOp::Created;
                        details open[open] {
                            summary { (s.lines.len()) " field" (if s.lines.len() == 1 { "" } else { "s" }) }
                            div.table-wrap { table.diff {
                                thead { tr { th scope="col" { "Field" } th scope="col" { "Before" } th scope="col" { "After" } } }
                                tbody { @for l in &s.lines {
                                    tr {
                                        td { (readable(&l.path)) }
                                        @match &l.before { Some(b) => td.del { (b) }, None => td { } }
                                        @match &l.after { Some(a) => td.add { (a) }, None => td { } }
                                    }
                                } }
                            } }
                        }
                    }
                }
            }
        }
    }
}
