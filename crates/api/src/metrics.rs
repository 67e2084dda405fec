//! `/metrics` in Prometheus' text format: this process's API requests and latencies, its
//! connections (open, refused at the cap, timed out) and expensive requests shed, and the
//! catalog's own figures (entities by kind, runs, changes, refusals) read from the database at
//! scrape time, so every replica reports the same catalog.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Extension;
use axum::extract::State;
use axum::http::header;
use axum::response::{IntoResponse, Response};
use surveyor_store::EntityFilter;

use crate::AppState;
use crate::error::ApiError;
use crate::server::ConnectionStats;

/// One connector metric across connectors: help, counter or gauge, (connector, value)s.
type Family = (&'static str, bool, Vec<(String, f64)>);

/// Upper bounds of the latency buckets, in seconds.
const BUCKETS: [f64; 12] = [
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 10.0,
];

#[derive(Default)]
struct Histogram {
    counts: [u64; BUCKETS.len()],
    count: u64,
    sum: f64,
}

/// Per-process request counters and latency histograms, by route template.
#[derive(Default)]
pub struct Metrics {
    requests: Mutex<BTreeMap<(String, u16), u64>>,
    latency: Mutex<BTreeMap<String, Histogram>>,
    /// Expensive requests refused (503) because the limit was reached, by route template.
    shed: Mutex<BTreeMap<&'static str, u64>>,
}

impl Metrics {
    pub fn observe(&self, route: &str, status: u16, took: Duration) {
        if let Ok(mut r) = self.requests.lock() {
            *r.entry((route.to_string(), status)).or_default() += 1;
        }
        if let Ok(mut l) = self.latency.lock() {
            let h = l.entry(route.to_string()).or_default();
            let secs = took.as_secs_f64();
            for (i, bound) in BUCKETS.iter().enumerate() {
                if secs <= *bound {
                    h.counts[i] += 1;
                }
            }
            h.count += 1;
            h.sum += secs;
        }
    }

    pub(crate) fn shed(&self, route: &'static str) {
        if let Ok(mut s) = self.shed.lock() {
            *s.entry(route).or_default() += 1;
        }
    }

    fn write(&self, out: &mut String) {
        out.push_str(
            "# HELP surveyor_api_requests_total API requests answered, by route and status.\n",
        );
        out.push_str("# TYPE surveyor_api_requests_total counter\n");
        if let Ok(r) = self.requests.lock() {
            for ((route, status), n) in r.iter() {
                let _ = writeln!(
                    out,
                    "surveyor_api_requests_total{{route=\"{}\",status=\"{status}\"}} {n}",
                    escape(route)
                );
            }
        }
        out.push_str("# HELP surveyor_api_request_duration_seconds Time to answer API requests.\n");
        out.push_str("# TYPE surveyor_api_request_duration_seconds histogram\n");
        if let Ok(l) = self.latency.lock() {
            for (route, h) in l.iter() {
                let route = escape(route);
                for (i, bound) in BUCKETS.iter().enumerate() {
                    let _ = writeln!(
                        out,
                        "surveyor_api_request_duration_seconds_bucket{{route=\"{route}\",le=\"{bound}\"}} {}",
                        h.counts[i]
                    );
                }
                let _ = writeln!(
                    out,
                    "surveyor_api_request_duration_seconds_bucket{{route=\"{route}\",le=\"+Inf\"}} {}",
                    h.count
                );
                let _ = writeln!(
                    out,
                    "surveyor_api_request_duration_seconds_sum{{route=\"{route}\"}} {}",
                    h.sum
                );
                let _ = writeln!(
                    out,
                    "surveyor_api_request_duration_seconds_count{{route=\"{route}\"}} {}",
                    h.count
                );
            }
        }
        out.push_str(
            "# HELP surveyor_api_requests_shed_total Expensive requests answered 503 because max_expensive_requests were running, by route.\n",
        );
        out.push_str("# TYPE surveyor_api_requests_shed_total counter\n");
        if let Ok(s) = self.shed.lock() {
            for (route, n) in s.iter() {
                let _ = writeln!(
                    out,
                    "surveyor_api_requests_shed_total{{route=\"{}\"}} {n}",
                    escape(route)
                );
            }
        }
    }
}

fn escape(s: &str) -> String {
    s.replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

/// `GET /metrics`.
#[utoipa::path(get, path = "/metrics", tag = "operations",
    responses((status = 200, description = "Prometheus text format", body = String, content_type = "text/plain; version=0.0.4")))]
pub async fn render(
    State(state): State<AppState>,
    connections: Option<Extension<Arc<ConnectionStats>>>,
) -> Result<Response, ApiError> {
    let mut out = String::new();
    state.metrics.write(&mut out);
    // Served by `serve_with`: its connection figures too.
    if let Some(Extension(c)) = connections {
        c.write(&mut out);
    }
    let kinds = state
        .store
        .facet_counts("kind", &EntityFilter::default())
        .await?;
    out.push_str("# HELP surveyor_entities Live entities in the catalog, by kind.\n# TYPE surveyor_entities gauge\n");
    for (kind, n) in kinds {
        let _ = writeln!(out, "surveyor_entities{{kind=\"{}\"}} {n}", escape(&kind));
    }
    let stats = state.store.catalog_stats().await?;
    out.push_str("# HELP surveyor_runs_total Connector runs recorded, by connector and status.\n# TYPE surveyor_runs_total counter\n");
    for (connector, status, n) in &stats.runs {
        let _ = writeln!(
            out,
            "surveyor_runs_total{{connector=\"{}\",status=\"{}\"}} {n}",
            escape(connector),
            escape(status)
        );
    }
    out.push_str("# HELP surveyor_run_seconds_total Wall time of finished runs, by connector.\n# TYPE surveyor_run_seconds_total counter\n");
    for (connector, secs) in &stats.run_seconds {
        let _ = writeln!(
            out,
            "surveyor_run_seconds_total{{connector=\"{}\"}} {secs}",
            escape(connector)
        );
    }
    out.push_str("# HELP surveyor_changes_total Changes recorded in the catalog's history, by op.\n# TYPE surveyor_changes_total counter\n");
    for (op, n) in &stats.changes {
        let _ = writeln!(out, "surveyor_changes_total{{op=\"{}\"}} {n}", escape(op));
    }
    out.push_str("# HELP surveyor_deletion_refusals_total Deletions the guard refused.\n# TYPE surveyor_deletion_refusals_total counter\n");
    let _ = writeln!(out, "surveyor_deletion_refusals_total {}", stats.refusals);
    // Only leases held now: a replica killed mid-run shows as a holder whose lease stops
    // being renewed (its expiry no longer moves) until another replica takes it over.
    let now = chrono::Utc::now();
    let leases = state.store.leases().await?;
    out.push_str("# HELP surveyor_lease_held_since_seconds When the process holding a connector's lease took it (Unix time), by connector and holder; only leases held now.\n# TYPE surveyor_lease_held_since_seconds gauge\n");
    for l in leases.iter().filter(|l| l.expires_at > now) {
        let since = l.taken_at.unwrap_or(l.tick);
        let _ = writeln!(
            out,
            "surveyor_lease_held_since_seconds{{connector=\"{}\",holder=\"{}\"}} {}",
            escape(&l.name),
            escape(&l.holder),
            since.timestamp()
        );
    }
    out.push_str("# HELP surveyor_lease_expires_seconds When each held lease runs out unless renewed (Unix time), by connector and holder.\n# TYPE surveyor_lease_expires_seconds gauge\n");
    for l in leases.iter().filter(|l| l.expires_at > now) {
        let _ = writeln!(
            out,
            "surveyor_lease_expires_seconds{{connector=\"{}\",holder=\"{}\"}} {}",
            escape(&l.name),
            escape(&l.holder),
            l.expires_at.timestamp()
        );
    }
    if let Some(control) = &state.control {
        // Grouped by metric, as the exposition format wants each family together.
        let mut families: BTreeMap<&'static str, Family> = BTreeMap::new();
        for (connector, metrics) in control.connector_metrics() {
            for m in metrics {
                families
                    .entry(m.name)
                    .or_insert((m.help, m.counter, Vec::new()))
                    .2
                    .push((connector.clone(), m.value));
            }
        }
        for (name, (help, counter, values)) in families {
            let kind = if counter { "counter" } else { "gauge" };
            let _ = writeln!(
                out,
                "# HELP surveyor_connector_{name} {help}\n# TYPE surveyor_connector_{name} {kind}"
            );
            for (connector, v) in values {
                let _ = writeln!(
                    out,
                    "surveyor_connector_{name}{{connector=\"{}\"}} {v}",
                    escape(&connector)
                );
            }
        }
    }
    Ok((
        [(
            header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        out,
    )
        .into_response())
}
