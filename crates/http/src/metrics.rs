//! Counters for one connector's HTTP traffic.

use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};

use serde::Serialize;

/// Live counters; cheap to update from many tasks.
#[derive(Debug)]
pub struct HttpMetrics {
    requests: AtomicU64,
    not_modified: AtomicU64,
    retries: AtomicU64,
    rate_limit_waits: AtomicU64,
    bytes: AtomicU64,
    /// The last `x-ratelimit-remaining` / `ratelimit-remaining` the server sent; -1 before any.
    remaining: AtomicI64,
}

impl Default for HttpMetrics {
    fn default() -> Self {
        Self {
            requests: AtomicU64::new(0),
            not_modified: AtomicU64::new(0),
            retries: AtomicU64::new(0),
            rate_limit_waits: AtomicU64::new(0),
            bytes: AtomicU64::new(0),
            remaining: AtomicI64::new(-1),
        }
    }
}

/// A point-in-time copy of the counters.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct MetricsSnapshot {
    /// Requests sent (every attempt counts).
    pub requests: u64,
    /// Responses that were 304 Not Modified, answered from the cache.
    pub not_modified: u64,
    pub retries: u64,
    /// Times a request waited for a rate limit (ours or the server's).
    pub rate_limit_waits: u64,
    /// Response body bytes received.
    pub bytes: u64,
    /// The server's last word on the requests left in its rate-limit window.
    pub rate_limit_remaining: Option<u64>,
}

impl MetricsSnapshot {
    /// The counters as connector metrics for `/metrics`.
    pub fn connector_metrics(&self) -> Vec<surveyor_model::ConnectorMetric> {
        use surveyor_model::ConnectorMetric as M;
        let mut out = vec![
            M {
                name: "http_requests_total",
                help: "HTTP requests sent (every attempt).",
                value: self.requests as f64,
                counter: true,
            },
            M {
                name: "http_not_modified_total",
                help: "Requests answered 304 from the ETag cache.",
                value: self.not_modified as f64,
                counter: true,
            },
            M {
                name: "http_retries_total",
                help: "Requests retried after a transient failure.",
                value: self.retries as f64,
                counter: true,
            },
            M {
                name: "http_rate_limit_waits_total",
                help: "Waits for a rate limit (ours or the server's).",
                value: self.rate_limit_waits as f64,
                counter: true,
            },
            M {
                name: "http_received_bytes_total",
                help: "Response bytes received.",
                value: self.bytes as f64,
                counter: true,
            },
        ];
        if let Some(r) = self.rate_limit_remaining {
            out.push(M {
                name: "rate_limit_remaining",
                help: "Requests left in the server's rate-limit window, as it last said.",
                value: r as f64,
                counter: false,
            });
        }
        out
    }
}

impl HttpMetrics {
    pub(crate) fn request(&self) {
        self.requests.fetch_add(1, Ordering::Relaxed);
    }
    pub(crate) fn not_modified(&self) {
        self.not_modified.fetch_add(1, Ordering::Relaxed);
    }
    pub(crate) fn retry(&self) {
        self.retries.fetch_add(1, Ordering::Relaxed);
    }
    pub(crate) fn rate_limit_wait(&self) {
        self.rate_limit_waits.fetch_add(1, Ordering::Relaxed);
    }
    pub(crate) fn bytes(&self, n: usize) {
        self.bytes.fetch_add(n as u64, Ordering::Relaxed);
    }
    pub(crate) fn remaining(&self, n: u64) {
        self.remaining
            .store(i64::try_from(n).unwrap_or(i64::MAX), Ordering::Relaxed);
    }

    pub fn snapshot(&self) -> MetricsSnapshot {
        MetricsSnapshot {
            requests: self.requests.load(Ordering::Relaxed),
            not_modified: self.not_modified.load(Ordering::Relaxed),
            retries: self.retries.load(Ordering::Relaxed),
            rate_limit_waits: self.rate_limit_waits.load(Ordering::Relaxed),
            bytes: self.bytes.load(Ordering::Relaxed),
            rate_limit_remaining: u64::try_from(self.remaining.load(Ordering::Relaxed)).ok(),
        }
    }
}
