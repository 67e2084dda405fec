//! The audit pages (`/audit/ownership`, `/audit/drift`): the findings recorded after each sync,
//! counted per rule and per owner, filtered, paged by id, and downloaded as CSV or Markdown.
//!
//! Nothing here runs an audit: over a large catalog that takes seconds, so the pages read what
//! `surveyor serve` recorded after the last sync, with the store's indexed queries.

use axum::body::Body;
use axum::extract::{Query, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::Response;
use maud::{Markup, html};
use serde::Deserialize;
use surveyor_store::{FindingFilter, FindingRow, FindingStatus, Store};

use super::catalog::entity_href_owner;
use super::page::{Chrome, PageError, Section, respond, secure, shell};
use super::{entity_href, given, query, when};
use crate::bodies::EvidenceView;
use crate::error::ApiError;
use crate::{AppState, input, v1};

/// Rows per page.
const PAGE: i64 = 50;
/// Owners in the table of counts per owner.
const TOP_OWNERS: i64 = 50;
/// Rows per statement while a download streams: the whole view, never all of it in memory.
#[cfg(not(test))]
const DOWNLOAD_CHUNK: i64 = 1000;
/// Small in tests, so that a download of a few dozen findings crosses chunks.
#[cfg(test)]
const DOWNLOAD_CHUNK: i64 = 7;

/// Which audit a page shows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Audit {
    Ownership,
    Drift,
}

impl Audit {
    fn name(self) -> &'static str {
        match self {
            Self::Ownership => "ownership",
            Self::Drift => "drift",
        }
    }
    fn title(self) -> &'static str {
        match self {
            Self::Ownership => "Ownership gaps",
            Self::Drift => "Drift",
        }
    }
    fn path(self) -> &'static str {
        match self {
            Self::Ownership => "/audit/ownership",
            Self::Drift => "/audit/drift",
        }
    }
    fn section(self) -> Section {
        match self {
            Self::Ownership => Section::Ownership,
            Self::Drift => Section::Drift,
        }
    }
    /// The download's file name without its extension.
    fn file_stem(self) -> &'static str {
        match self {
            Self::Ownership => "surveyor-ownership-gaps",
            Self::Drift => "surveyor-drift",
        }
    }
    fn rules(self) -> &'static [(&'static str, &'static str)] {
        match self {
            Self::Ownership => surveyor_audit::OWNERSHIP_RULES,
            Self::Drift => surveyor_audit::DRIFT_RULES,
        }
    }
}

/// The filters, as the form sends them.
#[derive(Debug, Default, Deserialize)]
pub struct AuditQuery {
    pub rule: Option<String>,
    pub owner: Option<String>,
    pub severity: Option<String>,
    /// `open` (the default), `resolved` or `all`.
    pub status: Option<String>,
    /// A substring of the entity's ref.
    pub q: Option<String>,
    pub cursor: Option<String>,
    /// `csv` or `md`: the whole view as a download.
    pub format: Option<String>,
}

const SEVERITIES: &[&str] = &["high", "medium", "low"];
const STATUSES: &[&str] = &["open", "resolved", "all"];

impl AuditQuery {
    fn pairs(&self) -> Vec<(&'static str, String)> {
        [
            ("rule", &self.rule),
            ("owner", &self.owner),
            ("severity", &self.severity),
            ("status", &self.status),
            ("q", &self.q),
        ]
        .into_iter()
        .filter_map(|(k, v)| given(v).map(|v| (k, v)))
        .collect()
    }

    /// What a cursor is bound to: every filter.
    fn identity(&self) -> String {
        serde_json::to_string(&self.pairs()).unwrap_or_default()
    }

    /// This view's link with `key` set to `value` (or left out), on its first page.
    fn with(&self, audit: Audit, key: &str, value: Option<&str>) -> String {
        let mut pairs: Vec<(&str, String)> = self
            .pairs()
            .into_iter()
            .filter(|(k, _)| *k != key)
            .collect();
        if let Some(v) = value {
            pairs.push((key, v.to_string()));
        }
        let list: Vec<(&str, &str)> = pairs.iter().map(|(k, v)| (*k, v.as_str())).collect();
        let q = query(&list);
        if q.is_empty() {
            audit.path().to_string()
        } else {
            format!("{}?{q}", audit.path())
        }
    }

    /// The store's filter, every value checked.
    fn filter(&self, audit: Audit) -> Result<FindingFilter, ApiError> {
        for (name, v) in self.pairs() {
            input::value(name, &v)?;
        }
        let rule = given(&self.rule);
        if let Some(r) = &rule
            && !audit.rules().iter().any(|(name, _)| name == r)
        {
            let names: Vec<&str> = audit.rules().iter().map(|(n, _)| *n).collect();
            return Err(ApiError::BadRequest(format!(
                "rule {r:?}: one of {}",
                names.join(", ")
            )));
        }
        let severity = given(&self.severity).map(|s| s.to_ascii_lowercase());
        if let Some(s) = &severity
            && !SEVERITIES.contains(&s.as_str())
        {
            return Err(ApiError::BadRequest(format!(
                "severity {s:?}: one of high, medium, low"
            )));
        }
        let status = match given(&self.status).as_deref() {
            None | Some("open") => FindingStatus::Open,
            Some("resolved") => FindingStatus::Resolved,
            Some("all") => FindingStatus::All,
            Some(other) => {
                return Err(ApiError::BadRequest(format!(
                    "status {other:?}: one of open, resolved, all"
                )));
            }
        };
        let after_id = match &self.cursor {
            None => None,
            Some(c) => {
                let position = v1::decode_cursor(&list_name(audit), &self.identity(), c)?;
                Some(position.parse::<i64>().map_err(|_| {
                    ApiError::BadRequest("cursor is not one this server gave out".into())
                })?)
            }
        };
        Ok(FindingFilter {
            audit: audit.name().to_string(),
            status,
            rule,
            owner: given(&self.owner)
                .as_deref()
                .map(v1::owner_key)
                .transpose()?,
            severity,
            entity: given(&self.q),
            after_id,
            limit: Some(PAGE + 1),
        })
    }
}

/// The name cursors of this audit's pages carry, so one list's cursor is refused by another.
fn list_name(audit: Audit) -> String {
    format!("console-audit-{}", audit.name())
}

/// `GET /audit/ownership`.
pub async fn ownership(
    State(state): State<AppState>,
    chrome: Chrome,
    q: Result<Query<AuditQuery>, axum::extract::rejection::QueryRejection>,
) -> Result<Response, PageError> {
    handle(Audit::Ownership, state, chrome, q).await
}

/// `GET /audit/drift`.
pub async fn drift(
    State(state): State<AppState>,
    chrome: Chrome,
    q: Result<Query<AuditQuery>, axum::extract::rejection::QueryRejection>,
) -> Result<Response, PageError> {
    handle(Audit::Drift, state, chrome, q).await
}

async fn handle(
    audit: Audit,
    state: AppState,
    chrome: Chrome,
    q: Result<Query<AuditQuery>, axum::extract::rejection::QueryRejection>,
) -> Result<Response, PageError> {
    let with = |e: ApiError| PageError { error: e, chrome };
    let Query(q) = q.map_err(|e| with(ApiError::BadRequest(e.body_text())))?;
    let filter = q.filter(audit).map_err(with)?;
    match given(&q.format).as_deref() {
        None => page(audit, &state.store, chrome, &q, filter).await,
        Some("csv") => download(audit, state.store.clone(), filter, Format::Csv)
            .await
            .map_err(|e| with(e.into())),
        Some("md") => download(audit, state.store.clone(), filter, Format::Markdown)
            .await
            .map_err(|e| with(e.into())),
        Some(other) => Err(with(ApiError::BadRequest(format!(
            "format {other:?}: csv or md"
        )))),
    }
}

async fn page(
    audit: Audit,
    store: &Store,
    chrome: Chrome,
    q: &AuditQuery,
    filter: FindingFilter,
) -> Result<Response, PageError> {
    let with = |e: surveyor_store::StoreError| PageError {
        error: e.into(),
        chrome,
    };
    if !store.any_findings(audit.name()).await.map_err(with)? {
        let body = html! {
            h1 { (audit.title()) }
            div.notice #no-findings {
                p { "No " (audit.name()) " findings have been recorded yet." }
                p { code { "surveyor serve" } " runs the audits after each sync and records what they find here, with when each finding was first and last seen and when it was resolved. They appear once a connector has synced (or when that sync found nothing to report)." }
            }
        };
        return Ok(respond(
            StatusCode::OK,
            shell(audit.title(), audit.section(), chrome, body),
        ));
    }
    // Each table of counts leaves out its own filter, so it lists the other rules or owners.
    let by_rule = store
        .count_findings_by_rule(&FindingFilter {
            rule: None,
            ..filter.clone()
        })
        .await
        .map_err(with)?;
    let by_owner = store
        .count_findings_by_owner(
            &FindingFilter {
                owner: None,
                ..filter.clone()
            },
            TOP_OWNERS,
        )
        .await
        .map_err(with)?;
    let mut rows = store.list_findings(&filter).await.map_err(with)?;
    let more = rows.len() as i64 > PAGE;
    rows.truncate(PAGE as usize);
    let matching: i64 = by_rule
        .iter()
        .filter(|(r, _)| filter.rule.as_ref().is_none_or(|f| f == r))
        .map(|(_, n)| n)
        .sum();
    let next = rows.last().filter(|_| more).map(|r| {
        let c = v1::encode_cursor(&list_name(audit), &q.identity(), &r.id.to_string());
        q.with(audit, "cursor", Some(&c))
    });
    // Every rule of the audit, then any rule only older findings name.
    let mut rules: Vec<(String, &str, i64)> = audit
        .rules()
        .iter()
        .map(|(name, meaning)| {
            let n = by_rule
                .iter()
                .find(|(r, _)| r == name)
                .map_or(0, |(_, n)| *n);
            (name.to_string(), *meaning, n)
        })
        .collect();
    for (r, n) in &by_rule {
        if !rules.iter().any(|(name, _, _)| name == r) {
            rules.push((r.clone(), "", *n));
        }
    }
    let v = |o: &Option<String>| o.clone().unwrap_or_default();
    let selected_rule = v(&q.rule);
    let selected_severity = given(&q.severity).unwrap_or_default().to_ascii_lowercase();
    let selected_status = given(&q.status).unwrap_or_else(|| "open".into());
    let status_word = match filter.status {
        FindingStatus::Open => "open",
        FindingStatus::Resolved => "resolved",
        FindingStatus::All => "open or resolved",
    };
    let body = html! {
        h1 { (audit.title()) }
        form.filters method="get" action=(audit.path()) aria-label=(format!("Filter {} findings", audit.name())) {
            label for="rule" { "Rule"
                select #rule name="rule" {
                    option value="" { "any" }
                    @for (name, _) in audit.rules() {
                        option value=(name) selected[selected_rule == *name] { (name) }
                    }
                }
            }
            label for="owner" { "Owner" input #owner name="owner" value=(v(&q.owner)) placeholder="group:default/team-a"; }
            label for="severity" { "Severity"
                select #severity name="severity" {
                    option value="" { "any" }
                    @for s in SEVERITIES { option value=(s) selected[selected_severity == *s] { (s) } }
                }
            }
            label for="status" { "Status"
                select #status name="status" {
                    @for s in STATUSES { option value=(s) selected[selected_status == *s] { (s) } }
                }
            }
            label for="q" { "Entity" input #q type="search" name="q" value=(v(&q.q)) placeholder="payments"; }
            button.primary type="submit" { "Filter" }
            @if !q.pairs().is_empty() { a href=(audit.path()) { "Clear" } }
        }
        p.muted #result-count {
            (matching) " " (status_word) " " (if matching == 1 { "finding" } else { "findings" }) " match. "
            "Download them all: "
            a href=(q.with(audit, "format", Some("csv"))) download { "CSV" } ", "
            a href=(q.with(audit, "format", Some("md"))) download { "Markdown" }
        }
        h2 #by-rule { "By rule" }
        div.table-wrap { table #rule-counts {
            thead { tr { th scope="col" { "Rule" } th scope="col" { "Meaning" } th scope="col" { "Findings" } } }
            tbody { @for (name, meaning, n) in &rules {
                tr {
                    td { a href=(q.with(audit, "rule", Some(name))) aria-current=(if selected_rule == *name { "true" } else { "false" }) { (name) } }
                    td { (meaning) }
                    td { (n) }
                }
            } }
        } }
        h2 #by-owner { "By owner" }
        @if by_owner.is_empty() { p.muted { "No owner is involved in these findings." } }
        @else {
            div.table-wrap { table #owner-counts {
                caption.muted { "The " (TOP_OWNERS) " owners with the most findings" }
                thead { tr { th scope="col" { "Owner" } th scope="col" { "Findings" } } }
                tbody { @for (owner, n) in &by_owner {
                    tr {
                        @if let Some(o) = owner {
                            td { a href=(entity_href_owner(o)) { (o) } }
                            td { a href=(q.with(audit, "owner", Some(o))) aria-label=(format!("{n} findings of {o}")) { (n) } }
                        } @else {
                            td.muted { "no owner" }
                            td { (n) }
                        }
                    }
                } }
            } }
        }
        h2 #list { "Findings" }
        @if rows.is_empty() { p.notice { "No findings match. Try fewer filters, or status all." } }
        @else { (findings_table(&rows)) }
        nav.pager aria-label="Pages" {
            @if q.cursor.is_some() { a href=(q.with(audit, "cursor", None)) { "← First page" } }
            @if let Some(href) = &next { a rel="next" href=(href) { "Next page →" } }
        }
    };
    Ok(respond(
        StatusCode::OK,
        shell(audit.title(), audit.section(), chrome, body),
    ))
}

fn severity_class(severity: &str) -> &'static str {
    match severity {
        "high" => "badge sev-high",
        "medium" => "badge sev-medium",
        "low" => "badge sev-low",
        _ => "badge",
    }
}

/// A finding's evidence as stored; none for findings recorded before it was kept.
fn evidence(f: &FindingRow) -> Vec<EvidenceView> {
    f.evidence
        .as_deref()
        .and_then(|e| serde_json::from_str(e).ok())
        .unwrap_or_default()
}

fn findings_table(rows: &[FindingRow]) -> Markup {
    html! {
        div.table-wrap { table #findings {
            caption.muted { "Oldest first (by when each finding was first recorded)" }
            thead { tr {
                th scope="col" { "Entity" } th scope="col" { "Rule" } th scope="col" { "Severity" }
                th scope="col" { "Owner" } th scope="col" { "Finding" } th scope="col" { "Evidence" }
                th scope="col" { "First seen" } th scope="col" { "Last seen" } th scope="col" { "Resolved" }
            } }
            tbody { @for f in rows {
                tr {
                    td { a href=(entity_href(&f.entity_ref)) { (f.entity_ref) }
                        @if let Some(k) = &f.kind { br; span.muted { (k) } } }
                    td { (f.rule) }
                    td { span class=(severity_class(&f.severity)) { (f.severity) } }
                    td { @if let Some(o) = &f.owner { a href=(entity_href_owner(o)) { (o) } } }
                    td { (f.message) }
                    td { ul { @for e in evidence(f) {
                        li { (e.source) " said “" (e.said) "” at " time datetime=(e.at.to_rfc3339()) { (when(e.at)) } }
                    } } }
                    td { time datetime=(f.first_seen.to_rfc3339()) { (when(f.first_seen)) } }
                    td { time datetime=(f.last_seen.to_rfc3339()) { (when(f.last_seen)) } }
                    td { @match f.resolved_at {
                        Some(t) => time datetime=(t.to_rfc3339()) { (when(t)) },
                        None => span.muted { "open" },
                    } }
                }
            } }
        } }
    }
}

/// A download's shape.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Format {
    Csv,
    Markdown,
}

const COLUMNS: [&str; 11] = [
    "id",
    "entity",
    "kind",
    "rule",
    "severity",
    "owner",
    "message",
    "evidence",
    "first_seen",
    "last_seen",
    "resolved_at",
];

/// The cells of one finding in a download: times in RFC 3339, `open` while unresolved.
fn cells(f: &FindingRow) -> [String; 11] {
    let time =
        |t: chrono::DateTime<chrono::Utc>| t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
    let evidence = evidence(f)
        .iter()
        .map(|e| format!("{} said \"{}\" at {}", e.source, e.said, time(e.at)))
        .collect::<Vec<_>>()
        .join("; ");
    [
        f.id.to_string(),
        f.entity_ref.clone(),
        f.kind.clone().unwrap_or_default(),
        f.rule.clone(),
        f.severity.clone(),
        f.owner.clone().unwrap_or_default(),
        f.message.clone(),
        evidence,
        time(f.first_seen),
        time(f.last_seen),
        f.resolved_at.map(time).unwrap_or_else(|| "open".into()),
    ]
}

/// One CSV field (RFC 4180): quoted when it holds a comma, quote or line break. A field a
/// spreadsheet would read as a formula (`=`, `+`, `-`, `@`, or a tab or carriage return
/// first) gets a leading `'`, so opening the file never runs what a source wrote.
fn csv_field(s: &str) -> String {
    let s = if s.starts_with(['=', '+', '-', '@', '\t', '\r']) {
        format!("'{s}")
    } else {
        s.to_string()
    };
    if s.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", s.replace('"', "\"\""))
    } else {
        s
    }
}

/// One Markdown table cell: `|` cannot end the cell, a line break cannot end the row, and
/// HTML a source wrote stays text.
fn md_cell(s: &str) -> String {
    s.replace('\\', "\\\\")
        .replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('|', "\\|")
        .replace("\r\n", "<br>")
        .replace(['\n', '\r'], "<br>")
}

fn row_text(format: Format, f: &FindingRow) -> String {
    match format {
        Format::Csv => {
            let mut line = cells(f).map(|c| csv_field(&c)).join(",");
            line.push_str("\r\n");
            line
        }
        Format::Markdown => format!("| {} |\n", cells(f).map(|c| md_cell(&c)).join(" | ")),
    }
}

/// Every finding the view matches, as a file: the rows are read and written a chunk at a time
/// (by id, as the pages go), so a large view neither waits nor sits in memory whole.
async fn download(
    audit: Audit,
    store: Store,
    filter: FindingFilter,
    format: Format,
) -> Result<Response, surveyor_store::StoreError> {
    let head = match format {
        Format::Csv => format!("{}\r\n", COLUMNS.join(",")),
        Format::Markdown => {
            let matching: i64 = store
                .count_findings_by_rule(&filter)
                .await?
                .iter()
                .map(|(_, n)| n)
                .sum();
            let mut described: Vec<String> = Vec::new();
            for (name, v) in [
                ("rule", &filter.rule),
                ("owner", &filter.owner),
                ("severity", &filter.severity),
                ("entity containing", &filter.entity),
            ] {
                if let Some(v) = v {
                    described.push(format!("{name} {}", md_cell(v)));
                }
            }
            let status = match filter.status {
                FindingStatus::Open => "open",
                FindingStatus::Resolved => "resolved",
                FindingStatus::All => "open and resolved",
            };
            format!(
                "# {}\n\n{matching} {status} {}{}.\n\n| {} |\n|{}\n",
                audit.title(),
                if matching == 1 { "finding" } else { "findings" },
                if described.is_empty() {
                    String::new()
                } else {
                    format!(" ({})", described.join(", "))
                },
                COLUMNS.join(" | "),
                " --- |".repeat(COLUMNS.len())
            )
        }
    };
    let start = FindingFilter {
        after_id: None,
        limit: Some(DOWNLOAD_CHUNK),
        ..filter
    };
    // (the next chunk's filter, or None when the last chunk was short)
    let chunks = futures_util::stream::try_unfold(Some(start), move |next| {
        let store = store.clone();
        async move {
            let Some(f) = next else {
                return Ok::<_, surveyor_store::StoreError>(None);
            };
            let rows = store.list_findings(&f).await?;
            let Some(last) = rows.last().map(|r| r.id) else {
                return Ok(None);
            };
            let text: String = rows.iter().map(|r| row_text(format, r)).collect();
            let more = rows.len() as i64 == DOWNLOAD_CHUNK;
            let next = more.then_some(FindingFilter {
                after_id: Some(last),
                ..f
            });
            Ok(Some((text, next)))
        }
    });
    let head = futures_util::stream::once(async move { Ok(head) });
    let body = Body::from_stream(futures_util::StreamExt::chain(head, chunks));
    let (content_type, extension) = match format {
        Format::Csv => ("text/csv; charset=utf-8", "csv"),
        Format::Markdown => ("text/markdown; charset=utf-8", "md"),
    };
    let mut response = Response::new(body);
    let h = response.headers_mut();
    secure(h);
    h.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    let disposition = format!("attachment; filename=\"{}.{extension}\"", audit.file_stem());
    if let Ok(v) = HeaderValue::from_str(&disposition) {
        h.insert(header::CONTENT_DISPOSITION, v);
    }
    Ok(response)
}

#[cfg(test)]
#[path = "audit_tests.rs"]
mod tests;
