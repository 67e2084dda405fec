//! Concurrent HTTP clients for the API scenarios: each asks, back to back, for the URLs a query
//! mix gives it until told to stop; then latencies, errors and lock errors are summed up.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use serde::Serialize;

use crate::report::{percentile_ms, round};

/// Gives client `client` its `n`th request: a label (the query type) and a URL path+query.
pub type QueryMix = Arc<dyn Fn(usize, u64) -> (&'static str, String) + Send + Sync>;

pub struct Sample {
    pub label: &'static str,
    pub latency: Duration,
    pub error: Option<String>,
    /// Whether a sync was writing when the request was sent.
    pub during_sync: bool,
}

/// Runs `clients` clients against `base` until `stop` is set; `syncing` marks samples.
pub async fn drive(
    base: &str,
    clients: usize,
    mix: QueryMix,
    stop: Arc<AtomicBool>,
    syncing: Arc<AtomicBool>,
) -> anyhow::Result<Vec<Sample>> {
    let http = reqwest::Client::builder()
        .pool_max_idle_per_host(clients)
        .timeout(Duration::from_secs(60))
        .build()?;
    let mut tasks = Vec::new();
    for c in 0..clients {
        let (http, base, mix, stop, syncing) = (
            http.clone(),
            base.to_string(),
            Arc::clone(&mix),
            Arc::clone(&stop),
            Arc::clone(&syncing),
        );
        tasks.push(tokio::spawn(async move {
            let mut mine = Vec::new();
            let mut n = 0u64;
            while !stop.load(Ordering::Relaxed) {
                let (label, path) = mix(c, n);
                n += 1;
                let during_sync = syncing.load(Ordering::Relaxed);
                let t = Instant::now();
                let error = match http.get(format!("{base}{path}")).send().await {
                    Ok(r) => {
                        let status = r.status();
                        match r.bytes().await {
                            Ok(_) if status.is_success() => None,
                            Ok(body) => Some(format!(
                                "{status}: {}",
                                String::from_utf8_lossy(&body[..body.len().min(300)])
                            )),
                            Err(e) => Some(format!("reading the body: {e}")),
                        }
                    }
                    Err(e) => Some(format!("request: {e}")),
                };
                mine.push(Sample {
                    label,
                    latency: t.elapsed(),
                    error,
                    during_sync,
                });
            }
            mine
        }));
    }
    let mut all = Vec::new();
    for t in tasks {
        all.extend(t.await?);
    }
    Ok(all)
}

/// Latency figures of a set of samples.
#[derive(Serialize, Clone)]
pub struct Latency {
    /// Concurrent clients (0 where the samples come from a mix of phases).
    pub clients: usize,
    pub requests: usize,
    pub requests_per_s: f64,
    pub errors: usize,
    /// Errors that name a database lock ("database is locked", lock timeouts).
    pub lock_errors: usize,
    pub p50_ms: f64,
    pub p90_ms: f64,
    pub p99_ms: f64,
    pub max_ms: f64,
    /// Up to five distinct error messages, for the reader.
    pub error_examples: Vec<String>,
}

pub fn is_lock_error(message: &str) -> bool {
    let m = message.to_ascii_lowercase();
    m.contains("database is locked")
        || m.contains("database table is locked")
        || m.contains("lock timeout")
        || m.contains("lock_timeout")
        || m.contains("deadlock")
        || m.contains("could not obtain lock")
        || m.contains("pool timed out")
}

pub fn latency<'a>(samples: impl Iterator<Item = &'a Sample>, seconds: f64) -> Latency {
    let mut times = Vec::new();
    let mut errors = 0;
    let mut lock_errors = 0;
    let mut examples: Vec<String> = Vec::new();
    for s in samples {
        times.push(s.latency);
        if let Some(e) = &s.error {
            errors += 1;
            if is_lock_error(e) {
                lock_errors += 1;
            }
            if examples.len() < 5 && !examples.contains(e) {
                examples.push(e.clone());
            }
        }
    }
    times.sort();
    Latency {
        clients: 0,
        requests: times.len(),
        requests_per_s: round(times.len() as f64 / seconds.max(1e-9), 1),
        errors,
        lock_errors,
        p50_ms: round(percentile_ms(&times, 0.5), 2),
        p90_ms: round(percentile_ms(&times, 0.9), 2),
        p99_ms: round(percentile_ms(&times, 0.99), 2),
        max_ms: round(
            times.last().map_or(f64::NAN, |d| d.as_secs_f64() * 1000.0),
            2,
        ),
        error_examples: examples,
    }
}

/// Latency per query label, in label order.
pub fn by_label(samples: &[Sample], seconds: f64) -> BTreeMap<&'static str, Latency> {
    let mut labels: Vec<&'static str> = samples.iter().map(|s| s.label).collect();
    labels.sort_unstable();
    labels.dedup();
    labels
        .into_iter()
        .map(|l| (l, latency(samples.iter().filter(|s| s.label == l), seconds)))
        .collect()
}

/// Fails when a query matches nothing: a benchmark of empty answers measures nothing.
pub async fn check_not_empty(base: &str, label: &str, path: &str) -> anyhow::Result<()> {
    let body: serde_json::Value = reqwest::get(format!("{base}{path}"))
        .await?
        .error_for_status()?
        .json()
        .await?;
    let n = body["items"].as_array().map_or(0, Vec::len);
    anyhow::ensure!(n > 0, "query {label} ({path}) matches no entity: {body}");
    Ok(())
}
