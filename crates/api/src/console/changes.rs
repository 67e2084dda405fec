//! The change feed (`/changes`): newest first, filtered by source, operation, kind, entity and
//! time, a page at a time in both directions.

use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::Response;
use chrono::{DateTime, NaiveDate, NaiveDateTime, Utc};
use maud::html;
use serde::Deserialize;
use serde_json::Value;
use surveyor_store::{ChangeFilter, ChangeOp};

use super::entity::display;
use super::page::{Chrome, PageError, Section, respond, shell};
use super::{entity_href, given, query, when};
use crate::error::ApiError;
use crate::{AppState, input, v1};

const PAGE: i64 = 50;

#[derive(Debug, Default, Deserialize)]
pub struct ChangesQuery {
    pub source: Option<String>,
    pub op: Option<String>,
    pub kind: Option<String>,
    pub entity: Option<String>,
    pub since: Option<String>,
    pub until: Option<String>,
    pub cursor: Option<String>,
}

impl ChangesQuery {
    fn pairs(&self) -> Vec<(&'static str, String)> {
        [
            ("source", &self.source),
            ("op", &self.op),
            ("kind", &self.kind),
            ("entity", &self.entity),
            ("since", &self.since),
            ("until", &self.until),
        ]
        .into_iter()
        .filter_map(|(k, v)| given(v).map(|v| (k, v)))
        .collect()
    }

    fn identity(&self) -> String {
        serde_json::to_string(&self.pairs()).unwrap_or_default()
    }

    fn href(&self, cursor: Option<String>) -> String {
        let mut pairs = self.pairs();
        if let Some(c) = cursor {
            pairs.push(("cursor", c));
        }
        let list: Vec<(&str, &str)> = pairs.iter().map(|(k, v)| (*k, v.as_str())).collect();
        format!("/changes?{}", query(&list))
    }
}

/// A time as a form gives it: RFC 3339, `datetime-local` (`2026-12-03T16:31`, read as UTC) or
/// a date (its start, UTC).
fn time(name: &str, v: &str) -> Result<DateTime<Utc>, ApiError> {
    if let Ok(t) = DateTime::parse_from_rfc3339(v) {
        return Ok(t.with_timezone(&Utc));
    }
    for f in ["%Y-%m-%dT%H:%M", "%Y-%m-%dT%H:%M:%S", "%Y-%m-%d %H:%M"] {
        if let Ok(t) = NaiveDateTime::parse_from_str(v, f) {
            return Ok(t.and_utc());
        }
    }
    if let Ok(d) = NaiveDate::parse_from_str(v, "%Y-%m-%d") {
        return Ok(d.and_hms_opt(0, 0, 0).unwrap_or_default().and_utc());
    }
    Err(ApiError::BadRequest(format!(
        "{name} {v:?}: write a time as 2026-12-03, 2026-12-03T16:30 or RFC 3339"
    )))
}

/// `GET /changes`.
pub async fn page(
    State(state): State<AppState>,
    chrome: Chrome,
    q: Result<Query<ChangesQuery>, axum::extract::rejection::QueryRejection>,
) -> Result<Response, PageError> {
    let with = |e: ApiError| PageError { error: e, chrome };
    let Query(q) = q.map_err(|e| with(ApiError::BadRequest(e.body_text())))?;
    for (name, v) in q.pairs() {
        input::value(name, &v).map_err(with)?;
    }
    let op = match given(&q.op) {
        None => None,
        Some(o) => Some(ChangeOp::parse(&o).ok_or_else(|| {
            with(ApiError::BadRequest(format!(
                "op {o:?}: one of created, updated, renamed, deleted, restored"
            )))
        })?),
    };
    let kind = given(&q.kind);
    if let Some(k) = &kind
        && !k.chars().all(|c| c.is_ascii_alphanumeric())
    {
        return Err(with(ApiError::BadRequest(format!("kind {k:?} is no kind"))));
    }
    let since = given(&q.since)
        .map(|v| time("since", &v))
        .transpose()
        .map_err(with)?;
    let until = given(&q.until)
        .map(|v| time("until", &v))
        .transpose()
        .map_err(with)?;
    let entity_uid = match given(&q.entity) {
        None => None,
        Some(e) => {
            let key = surveyor_model::EntityRef::parse_with(&e, None, "default")
                .map_err(|err| with(ApiError::BadRequest(format!("entity: {err}"))))?
                .key();
            Some(
                state
                    .store
                    .resolve_uid(&key)
                    .await
                    .map_err(|e| with(e.into()))?
                    .unwrap_or_default(),
            )
        }
    };
    // `o<seq>`: older than seq (the next page); `n<seq>`: newer than seq (the previous one).
    let position = q
        .cursor
        .as_deref()
        .map(|c| v1::decode_cursor("console-changes", &q.identity(), c))
        .transpose()
        .map_err(with)?;
    let bad = || {
        with(ApiError::BadRequest(
            "cursor is not one this server gave out".into(),
        ))
    };
    let (older_than, newer_than) = match position.as_deref() {
        None => (None, None),
        Some(p) => match p.split_at_checked(1) {
            Some(("o", n)) => (Some(n.parse::<i64>().map_err(|_| bad())?), None),
            Some(("n", n)) => (None, Some(n.parse::<i64>().map_err(|_| bad())?)),
            _ => return Err(bad()),
        },
    };
    let backwards = newer_than.is_some();
    let mut rows = state
        .store
        .list_changes(&ChangeFilter {
            since,
            until,
            op,
            entity_uid,
            source: given(&q.source),
            kind,
            before_seq: older_than,
            after_seq: newer_than,
            descending: !backwards,
            limit: Some(PAGE + 1),
        })
        .await
        .map_err(|e| with(e.into()))?;
    let more = rows.len() as i64 > PAGE;
    rows.truncate(PAGE as usize);
    if backwards {
        rows.reverse();
    }
    let cursor = |p: String| v1::encode_cursor("console-changes", &q.identity(), &p);
    let (older, newer) = if backwards {
        (
            rows.last().map(|r| cursor(format!("o{}", r.seq))),
            rows.first()
                .filter(|_| more)
                .map(|r| cursor(format!("n{}", r.seq))),
        )
    } else {
        (
            rows.last()
                .filter(|_| more)
                .map(|r| cursor(format!("o{}", r.seq))),
            rows.first()
                .filter(|_| q.cursor.is_some())
                .map(|r| cursor(format!("n{}", r.seq))),
        )
    };
    let v = |o: &Option<String>| o.clone().unwrap_or_default();
    let ops = ["created", "updated", "renamed", "deleted", "restored"];
    let selected_op = given(&q.op).unwrap_or_default();
    let body = html! {
        h1 { "Changes" }
        form.filters method="get" action="/changes" aria-label="Filter changes" {
            label for="source" { "Source" input #source name="source" value=(v(&q.source)) placeholder="github"; }
            label for="op" { "Operation"
                select #op name="op" {
                    option value="" { "any" }
                    @for o in ops { option value=(o) selected[selected_op == o] { (o) } }
                }
            }
            label for="kind" { "Kind" input #kind name="kind" value=(v(&q.kind)) placeholder="component"; }
            label for="entity" { "Entity" input #entity name="entity" value=(v(&q.entity)) placeholder="component:default/web"; }
            label for="since" { "From" input #since name="since" value=(v(&q.since)) placeholder="2026-12-01"; }
            label for="until" { "Until" input #until name="until" value=(v(&q.until)) placeholder="2026-12-03T18:00"; }
            button.primary type="submit" { "Filter" }
            @if !q.pairs().is_empty() { a href="/changes" { "Clear" } }
        }
        @if rows.is_empty() { p.notice { "No changes match." } }
        @else {
            div.table-wrap { table #changes {
                caption.muted { "Newest first" }
                thead { tr { th scope="col" { "When" } th scope="col" { "Change" } th scope="col" { "Entity" } th scope="col" { "Source" } th scope="col" { "What changed" } } }
                tbody { @for c in &rows {
                    tr {
                        td { time datetime=(c.at.to_rfc3339()) { (when(c.at)) } br; span.muted.mono { "#" (c.seq) } }
                        td { span class=(format!("badge op-{}", c.op.as_str())) { (c.op.as_str()) } }
                        td { a href=(entity_href(&c.entity_ref)) { (c.entity_ref) }
                            @if let Some(p) = &c.previous_ref { br; span.muted { "was " (p) } } }
                        td { (c.source) }
                        td { (summary(c.op, &c.patch)) }
                    }
                } }
            } }
        }
        nav.pager aria-label="Pages" {
            @if let Some(c) = newer { a rel="prev" href=(q.href(Some(c))) { "← Newer" } }
            @if let Some(c) = older { a rel="next" href=(q.href(Some(c))) { "Older →" } }
        }
    };
    Ok(respond(
        StatusCode::OK,
        shell("Changes", Section::Changes, chrome, body),
    ))
}

/// What a change's patch did, briefly: the fields it touched and their new values.
fn summary(op: ChangeOp, patch: &Value) -> maud::Markup {
    let ops = patch.as_array().cloned().unwrap_or_default();
    match op {
        ChangeOp::Created => return html! { span.muted { "its first version" } },
        ChangeOp::Deleted => return html! { span.muted { "no source describes it any more" } },
        _ if ops.is_empty() => return html! { span.muted { "no field changed" } },
        _ => {}
    }
    html! {
        ul {
            @for o in ops.iter().take(8) {
                li { (super::entity::readable(o["path"].as_str().unwrap_or(""))) " "
                    @match o["op"].as_str().unwrap_or("") {
                        "remove" => span.muted { "removed" },
                        other => { span.muted { (other) } " → " (super::catalog::shorten(&display(&o["value"]), 120)) },
                    }
                }
            }
            @if ops.len() > 8 { li.muted { "and " (ops.len() - 8) " more" } }
        }
    }
}
