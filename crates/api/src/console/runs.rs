//! Runs and connectors (`/runs`): each connector's schedule, lease, last run and its counts
//! and errors, then the latest runs by any process.

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::Response;
use maud::html;
use serde_json::Value;

use super::page::{Chrome, PageError, Section, respond, shell};
use super::{query, when};
use crate::AppState;
use crate::error::ApiError;

/// Runs listed.
const RUNS: i64 = 100;

/// `GET /runs`.
pub async fn page(State(state): State<AppState>, chrome: Chrome) -> Result<Response, PageError> {
    let with = |e: ApiError| PageError { error: e, chrome };
    let mut connectors = state
        .control
        .as_ref()
        .map(|c| c.connectors())
        .unwrap_or_default();
    let leases = state.store.leases().await.map_err(|e| with(e.into()))?;
    let latest = state
        .store
        .latest_runs()
        .await
        .map_err(|e| with(e.into()))?;
    for c in &mut connectors {
        if let Some(run) = latest.iter().find(|r| r.connector == c.id) {
            crate::v1::with_latest_run(c, run);
        }
    }
    let runs = state
        .store
        .list_runs(None, RUNS)
        .await
        .map_err(|e| with(e.into()))?;
    let now = chrono::Utc::now();
    let body = html! {
        h1 { "Runs and connectors" }
        section aria-labelledby="connectors-h" {
            h2 #connectors-h { "Connectors" }
            @if connectors.is_empty() {
                p.muted { "This server runs no connectors (it serves a catalog that `surveyor sync` fills)." }
            } @else {
                div.table-wrap { table #connectors {
                    thead { tr { th scope="col" { "Connector" } th scope="col" { "Kind" } th scope="col" { "Schedule" }
                        th scope="col" { "Next run" } th scope="col" { "Last run" } th scope="col" { "Status" } th scope="col" { "Its counts" } th scope="col" { "Lease" } } }
                    tbody { @for c in &connectors {
                        @let lease = leases.iter().find(|l| l.name == c.id && l.expires_at > now);
                        @let last = latest.iter().find(|r| r.connector == c.id);
                        tr {
                            td { a href=(format!("/changes?{}", query(&[("source", &c.id)]))) { (c.id) } }
                            td { (c.kind) }
                            td.mono { (c.schedule.clone().unwrap_or_else(|| "—".into())) }
                            td { (c.next_run.map(when).unwrap_or_else(|| "—".into())) }
                            td { (c.last_started.map(when).unwrap_or_else(|| "never".into())) }
                            td { @if let Some(s) = &c.last_status { span class=(format!("badge st-{s}")) { (s) } }
                                 @if c.running { " " span.badge { "running" } }
                                 @if let Some(e) = &c.last_error { br; span.muted { (e) } } }
                            td { (counts(last.and_then(|r| r.counts.as_ref()))) }
                            td { @if let Some(l) = lease { (l.holder) " until " (when(l.expires_at)) } @else { "free" } }
                        }
                    } }
                } }
            }
        }
        section aria-labelledby="runs-h" {
            h2 #runs-h { "Latest runs" }
            @if runs.is_empty() { p.muted { "No runs recorded yet." } }
            @else {
                div.table-wrap { table #runs {
                    thead { tr { th scope="col" { "Started" } th scope="col" { "Connector" } th scope="col" { "Status" }
                        th scope="col" { "Took" } th scope="col" { "Counts" } th scope="col" { "Error" } } }
                    tbody { @for r in &runs {
                        tr {
                            td { (when(r.started_at)) br; span.muted.mono { (r.id) } }
                            td { (r.connector) }
                            td { span class=(format!("badge st-{}", r.status)) { (r.status) } }
                            td { (r.finished_at.map(|f| format!("{:.1} s", (f - r.started_at).num_milliseconds() as f64 / 1000.0)).unwrap_or_else(|| "—".into())) }
                            td { (counts(r.counts.as_ref())) }
                            td { (r.error.clone().unwrap_or_default()) }
                        }
                    } }
                } }
            }
        }
    };
    Ok(respond(
        StatusCode::OK,
        shell("Runs", Section::Runs, chrome, body),
    ))
}

/// A run's counts (`{"entities": {"created": 3, ...}, "observations": {...}}`) as
/// `entities: created 3 · updated 1; observations: observed 70`, zeros left out.
fn counts(v: Option<&Value>) -> String {
    fn line(m: &serde_json::Map<String, Value>) -> String {
        m.iter()
            .filter_map(|(k, n)| match n {
                Value::Number(x) if x.as_f64() != Some(0.0) => Some(format!("{k} {x}")),
                _ => None,
            })
            .collect::<Vec<_>>()
            .join(" · ")
    }
    let Some(Value::Object(m)) = v else {
        return String::new();
    };
    let mut parts = Vec::new();
    let top = line(m);
    if !top.is_empty() {
        parts.push(top);
    }
    for (group, inner) in m {
        if let Value::Object(inner) = inner {
            let l = line(inner);
            if !l.is_empty() {
                parts.push(format!("{group}: {l}"));
            }
        }
    }
    parts.join("; ")
}

#[cfg(test)]
mod tests {
    #[test]
    fn counts_read_as_a_line_without_zeros() {
        let v = serde_json::json!({"entities": {"created": 3, "deleted": 0, "updated": 1},
            "observations": {"observed": 70, "gone": 0}});
        assert_eq!(
            super::counts(Some(&v)),
            "entities: created 3 · updated 1; observations: observed 70"
        );
        assert_eq!(super::counts(None), "");
    }
}
