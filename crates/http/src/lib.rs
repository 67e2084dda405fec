//! HTTP plumbing shared by connectors: one reqwest client with timeouts and gzip, a rate limit
//! per host, retries that honour `Retry-After` and rate-limit reset headers (bounded in count
//! and total wait), conditional GETs from a persistent ETag cache, and per-connector counters;
//! and what connectors' API clients share around it (GraphQL, `Link` paging, quota pauses).

mod cache;
mod client;
mod graphql;
mod kit;
mod metrics;
mod retry;
pub mod webhook;

pub use cache::{CacheEntry, FileCache, MemoryCache, ResponseCache};
pub use client::{HttpClient, HttpConfig, Response};
pub use graphql::{GraphqlError, GraphqlResponse, PageInfo};
pub use kit::{
    ApiClient, ApiStats, Pause, QuotaSpent, Unreadable, cache_dir, next_link, secret_header,
};
pub use metrics::{HttpMetrics, MetricsSnapshot};
pub use reqwest::Method;
pub use reqwest::header::{HeaderMap, HeaderName, HeaderValue};
pub use retry::server_wait;

/// Why a request failed. URLs in messages have their query strings removed (some APIs take
/// tokens there); headers, which carry credentials, are never included.
#[derive(Debug, thiserror::Error)]
pub enum HttpError {
    #[error("invalid request to {url}: {message}")]
    Invalid { url: String, message: String },
    #[error("{url}: HTTP {status}{}", .detail.as_deref().map(|d| format!(": {d}")).unwrap_or_default())]
    Status {
        url: String,
        status: u16,
        detail: Option<String>,
        /// How long the server asked us to wait, when it said.
        #[source]
        retry_after: Option<RetryAfter>,
    },
    #[error("{url}: timed out")]
    Timeout { url: String },
    #[error("{url}: connection failed: {message}")]
    Connect { url: String, message: String },
    #[error("{url}: gave up after {attempts} attempts: {last}")]
    Exhausted {
        url: String,
        attempts: usize,
        last: Box<HttpError>,
    },
}

/// A wait the server asked for, carried on the error that asked for it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("the server asked to wait {0:?}")]
pub struct RetryAfter(pub std::time::Duration);

impl HttpError {
    /// Whether trying again may help: server errors, rate limits, timeouts, broken connections.
    pub fn is_retryable(&self) -> bool {
        match self {
            Self::Status {
                status,
                retry_after,
                ..
            } => {
                matches!(status, 429 | 500 | 502 | 503 | 504)
                    || (*status == 403 && retry_after.is_some())
            }
            Self::Timeout { .. } | Self::Connect { .. } => true,
            Self::Invalid { .. } | Self::Exhausted { .. } => false,
        }
    }

    /// Gateway and client timeouts: the server gave up computing the answer, or we gave up
    /// waiting. A smaller request (a page, a batch) may pass where this one did not.
    pub fn may_pass_smaller(&self) -> bool {
        matches!(
            self,
            Self::Status {
                status: 502 | 504,
                ..
            } | Self::Timeout { .. }
        )
    }

    /// The HTTP status, when there was a response.
    pub fn status(&self) -> Option<u16> {
        match self {
            Self::Status { status, .. } => Some(*status),
            Self::Exhausted { last, .. } => last.status(),
            _ => None,
        }
    }

    fn retry_after(&self) -> Option<std::time::Duration> {
        match self {
            Self::Status { retry_after, .. } => retry_after.map(|r| r.0),
            _ => None,
        }
    }
}

/// `https://user:pass@host/path?token=x` -> `https://***@host/path`: a URL fit for errors and
/// logs (no query, no credentials).
pub fn redact(url: &str) -> String {
    let bare = url.split(['?', '#']).next().unwrap_or(url);
    surveyor_model::secret::hide_userinfo(bare).into_owned()
}
