//! What connectors' API clients share beyond the client itself: the knobs every connector
//! exposes, a client with its ETag cache in a directory, a credential as a header value,
//! following `Link: rel="next"`, a pause until a spent quota resets, and what a crawl cost.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, SystemTime};

use reqwest::header::{HeaderMap, HeaderValue};
use tokio::sync::Mutex;

use crate::{FileCache, HttpClient, HttpConfig, HttpError, Response, ResponseCache};

impl HttpConfig {
    /// A connector's own knobs: its request rate (at least 1 a second, in bursts of twice
    /// that), the retries of one request, and the per-attempt timeout (at least a second).
    pub fn paced(requests_per_second: u32, max_retries: usize, timeout_secs: u64) -> Self {
        let requests_per_second = requests_per_second.max(1);
        Self {
            timeout: Duration::from_secs(timeout_secs.max(1)),
            requests_per_second,
            burst: requests_per_second.saturating_mul(2),
            max_retries,
            ..Self::default()
        }
    }

    /// The same, with every wait of one request (ours and the server's) bounded by `total`.
    pub fn waiting_at_most(self, total: Duration) -> Self {
        Self {
            max_total_wait: total,
            ..self
        }
    }
}

impl HttpClient {
    /// A client whose GETs are conditional on what is cached in `dir` from earlier runs; without
    /// a cache (and a warning saying so) when the directory cannot be used.
    pub fn cached_in(config: HttpConfig, dir: &Path) -> Result<Self, HttpError> {
        let cache: Option<Arc<dyn ResponseCache>> = match FileCache::new(dir) {
            Ok(c) => Some(Arc::new(c)),
            Err(e) => {
                tracing::warn!(dir = %dir.display(), error = %e, "no ETag cache: every REST request will be a full one");
                None
            }
        };
        Self::new(config, cache)
    }
}

impl HttpClient {
    /// The client's counters as a connector reports them.
    pub fn connector_metrics(&self) -> Vec<surveyor_model::ConnectorMetric> {
        self.metrics().snapshot().connector_metrics()
    }
}

/// A connector's client of one API with REST and GraphQL: the HTTP client, the GraphQL
/// endpoint, and counts of what was asked beyond what the HTTP layer counts.
#[derive(Debug)]
pub struct ApiClient {
    http: HttpClient,
    graphql_url: String,
    rest_requests: AtomicU64,
    graphql_requests: AtomicU64,
    shrinks: AtomicU64,
}

impl ApiClient {
    pub fn new(http: HttpClient, graphql_url: &str) -> Self {
        Self {
            http,
            graphql_url: graphql_url.to_string(),
            rest_requests: AtomicU64::new(0),
            graphql_requests: AtomicU64::new(0),
            shrinks: AtomicU64::new(0),
        }
    }

    pub fn http(&self) -> &HttpClient {
        &self.http
    }

    /// A REST GET, counted.
    pub async fn rest(&self, url: &str, headers: HeaderMap) -> Result<Response, HttpError> {
        self.rest_requests.fetch_add(1, Ordering::Relaxed);
        self.http.get(url, headers).await
    }

    /// A GraphQL request (see [`HttpClient::graphql`]), counted.
    pub async fn graphql(
        &self,
        headers: HeaderMap,
        query: &str,
        variables: &serde_json::Value,
        retry_big: bool,
    ) -> Result<Response, HttpError> {
        self.graphql_requests.fetch_add(1, Ordering::Relaxed);
        let url = &self.graphql_url;
        self.http
            .graphql(url, headers, query, variables, retry_big)
            .await
    }

    /// Counts a GraphQL page or batch halved after an error a smaller one may avoid.
    pub fn shrunk(&self) {
        self.shrinks.fetch_add(1, Ordering::Relaxed);
    }

    /// What the client has done so far, with the pauses of `pause`.
    pub fn stats(&self, pause: &Pause) -> ApiStats {
        let m = self.http.metrics().snapshot();
        ApiStats {
            rest_requests: self.rest_requests.load(Ordering::Relaxed),
            graphql_requests: self.graphql_requests.load(Ordering::Relaxed),
            rest_not_modified: m.not_modified,
            retries: m.retries,
            rate_limit_waits: m.rate_limit_waits,
            quota_pauses: pause.pauses(),
            shrinks: self.shrinks.load(Ordering::Relaxed),
            bytes: m.bytes,
        }
    }
}

/// What a connector's crawls have cost so far, for `sync` output and benchmarks.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ApiStats {
    pub rest_requests: u64,
    pub graphql_requests: u64,
    /// REST requests answered from the ETag cache (304).
    pub rest_not_modified: u64,
    pub retries: u64,
    pub rate_limit_waits: u64,
    /// Waits for the API's quota to reset (or to be back above the reserve kept for others).
    pub quota_pauses: u64,
    /// GraphQL pages or batches halved.
    pub shrinks: u64,
    pub bytes: u64,
}

/// An answer without the shape asked for: what was asked (never with credentials), and why.
#[derive(Debug, thiserror::Error)]
#[error("unreadable answer from {what}: {message}")]
pub struct Unreadable {
    pub what: String,
    pub message: String,
}

impl Unreadable {
    pub fn new(what: impl Into<String>, message: impl std::fmt::Display) -> Self {
        Self {
            what: what.into(),
            message: message.to_string(),
        }
    }
}

impl Response {
    /// The body as `T`, or why it is not one; `what` names the request in the message.
    pub fn parse<T: serde::de::DeserializeOwned>(
        &self,
        what: impl Into<String>,
    ) -> Result<T, Unreadable> {
        self.json().map_err(|e| Unreadable::new(what, e))
    }

    /// The `rel="next"` target of the answer's `Link` header.
    pub fn next_link(&self) -> Option<String> {
        self.header("link").and_then(next_link)
    }
}

/// Where a connector keeps REST ETags and bodies between runs: the configured directory, else
/// `.surveyor-cache/<connector id>`, relative to the config file's directory.
pub fn cache_dir(base_dir: &Path, configured: Option<PathBuf>, id: &str) -> PathBuf {
    base_dir.join(configured.unwrap_or_else(|| PathBuf::from(".surveyor-cache").join(id)))
}

/// A credential as a header value, marked sensitive; `None` when the text has characters a
/// header cannot carry.
pub fn secret_header(value: &str) -> Option<HeaderValue> {
    let mut v = HeaderValue::from_str(value).ok()?;
    v.set_sensitive(true);
    Some(v)
}

/// The `rel="next"` target of a `Link` header.
pub fn next_link(header: &str) -> Option<String> {
    header.split(',').find_map(|part| {
        let (target, params) = part.split_once(';')?;
        let is_next = params
            .split(';')
            .any(|p| p.trim().eq_ignore_ascii_case("rel=\"next\"") || p.trim() == "rel=next");
        is_next.then(|| {
            target
                .trim()
                .trim_start_matches('<')
                .trim_end_matches('>')
                .to_string()
        })
    })
}

/// A quota spent until later than the connector may wait: `quota` says which and how (`rate
/// limit is spent`).
#[derive(Debug, thiserror::Error)]
#[error("the {quota} until {reset_in_secs}s from now, longer than max_rate_limit_pause_secs")]
pub struct QuotaSpent {
    pub quota: &'static str,
    pub reset_in_secs: u64,
}

/// A moment no request of a connector goes out before: the API's quota is spent (or down to a
/// reserve kept for others) until it resets. A pause longer than the connector may wait is
/// refused instead of waited out.
#[derive(Debug)]
pub struct Pause {
    until: Mutex<Option<SystemTime>>,
    longest: Duration,
    /// What is spent, for errors (`rate limit is spent`).
    quota: &'static str,
    /// What the log says while it waits (`GitLab rate limit spent`).
    why: &'static str,
    pauses: AtomicU64,
}

impl Pause {
    /// No pause yet; none longer than `longest` will be waited out.
    pub fn new(longest: Duration, quota: &'static str, why: &'static str) -> Self {
        Self {
            until: Mutex::new(None),
            longest,
            quota,
            why,
            pauses: AtomicU64::new(0),
        }
    }

    /// From now on requests wait until `until` (or, with `None`, do not wait).
    pub async fn set(&self, until: Option<SystemTime>) {
        *self.until.lock().await = until;
    }

    /// The error for a wait the server asks for, when it is longer than allowed.
    pub fn refuses(&self, wait: Duration) -> Option<QuotaSpent> {
        (wait > self.longest).then_some(QuotaSpent {
            quota: self.quota,
            reset_in_secs: wait.as_secs(),
        })
    }

    /// Sleeps until the pause is over, or refuses when that is longer than allowed. Whether it
    /// ends the pause is up to the caller: see [`Pause::set`] and [`Pause::end_if_over`].
    pub async fn wait(&self) -> Result<(), QuotaSpent> {
        let until = *self.until.lock().await;
        let Some(until) = until else {
            return Ok(());
        };
        let wait = until.duration_since(SystemTime::now()).unwrap_or_default();
        if let Some(refused) = self.refuses(wait) {
            return Err(refused);
        }
        if !wait.is_zero() {
            self.pauses.fetch_add(1, Ordering::Relaxed);
            tracing::info!(
                wait_secs = wait.as_secs_f64(),
                "{}; pausing until it resets",
                self.why
            );
            tokio::time::sleep(wait).await;
        }
        Ok(())
    }

    /// Ends the pause when its moment has come (a later one set meanwhile stands).
    pub async fn end_if_over(&self) {
        let mut until = self.until.lock().await;
        if until.is_some_and(|p| p <= SystemTime::now()) {
            *until = None;
        }
    }

    /// Pauses waited out so far.
    pub fn pauses(&self) -> u64 {
        self.pauses.load(Ordering::Relaxed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_the_next_link_among_others() {
        let h = r#"<https://api.github.com/orgs/a/members?page=2>; rel="next", <https://api.github.com/orgs/a/members?page=5>; rel="last""#;
        assert_eq!(
            next_link(h).as_deref(),
            Some("https://api.github.com/orgs/a/members?page=2")
        );
        let last = r#"<https://api.github.com/orgs/a/members?page=4>; rel="prev", <https://api.github.com/orgs/a/members?page=1>; rel="first""#;
        assert_eq!(next_link(last), None);
    }

    #[test]
    fn finds_the_next_keyset_page() {
        let keyset = r#"<https://gitlab.com/api/v4/groups/9/projects?pagination=keyset&per_page=100&order_by=id&sort=asc&id_after=42>; rel="next""#;
        assert_eq!(
            next_link(keyset).as_deref(),
            Some(
                "https://gitlab.com/api/v4/groups/9/projects?pagination=keyset&per_page=100&order_by=id&sort=asc&id_after=42"
            )
        );
        let last = r#"<https://gitlab.com/api/v4/groups/9/members?page=1>; rel="first", <https://gitlab.com/api/v4/groups/9/members?page=1>; rel="last""#;
        assert_eq!(next_link(last), None);
    }

    #[test]
    fn paced_knobs_never_stop_requests() {
        let c = HttpConfig::paced(0, 3, 0);
        assert_eq!((c.requests_per_second, c.burst), (1, 2));
        assert_eq!(c.timeout, Duration::from_secs(1));
        assert_eq!(c.max_retries, 3);
        let c = HttpConfig::paced(10, 5, 60);
        assert_eq!((c.requests_per_second, c.burst), (10, 20));
        assert_eq!(c.timeout, Duration::from_secs(60));
    }

    #[test]
    fn credentials_are_sensitive_header_values() {
        assert!(secret_header("Bearer t").is_some_and(|v| v.is_sensitive()));
        assert!(secret_header("a\nb").is_none());
    }

    #[tokio::test]
    async fn a_pause_longer_than_allowed_is_refused() {
        let pause = Pause::new(Duration::from_secs(60), "rate limit is spent", "spent");
        assert!(pause.wait().await.is_ok());
        pause
            .set(Some(SystemTime::now() + Duration::from_secs(3600)))
            .await;
        let refused = pause.wait().await.unwrap_err();
        assert!(refused.reset_in_secs > 3500, "{refused}");
        assert!(
            refused
                .to_string()
                .starts_with("the rate limit is spent until 3"),
            "{refused}"
        );
        pause.end_if_over().await;
        assert!(pause.wait().await.is_err(), "not over yet");
        pause.set(Some(SystemTime::now())).await;
        assert!(pause.wait().await.is_ok());
        pause.end_if_over().await;
        assert_eq!(pause.pauses(), 0, "nothing was waited for");
        assert!(pause.refuses(Duration::from_secs(60)).is_none());
        assert!(pause.refuses(Duration::from_secs(61)).is_some());
    }
}
