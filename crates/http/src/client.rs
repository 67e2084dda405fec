//! The client: rate limit per host, then the request, retried while the failure is transient
//! and the server's requested waits fit the budget; GETs are conditional when cached.

use std::num::NonZeroU32;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, SystemTime};

use backon::{ExponentialBuilder, Retryable};
use bytes::Bytes;
use governor::{DefaultKeyedRateLimiter, Quota, RateLimiter};
use reqwest::header::{
    ETAG, HeaderMap, HeaderValue, IF_MODIFIED_SINCE, IF_NONE_MATCH, LAST_MODIFIED, LINK,
};
use reqwest::{Method, StatusCode};

use crate::cache::{CacheEntry, ResponseCache};
use crate::metrics::HttpMetrics;
use crate::retry::server_wait;
use crate::{HttpError, RetryAfter, redact};

/// Client settings; every connector exposes the rate and retry knobs in its config.
#[derive(Debug, Clone)]
pub struct HttpConfig {
    pub user_agent: String,
    pub connect_timeout: Duration,
    /// Per attempt, headers and body.
    pub timeout: Duration,
    /// Requests per second per host (our own limit, below the service's).
    pub requests_per_second: u32,
    pub burst: u32,
    /// Attempts after the first.
    pub max_retries: usize,
    /// All waits of one request together, ours and the server's, stay under this.
    pub max_total_wait: Duration,
    pub min_backoff: Duration,
    pub max_backoff: Duration,
}

impl Default for HttpConfig {
    fn default() -> Self {
        Self {
            user_agent: concat!("surveyor/", env!("CARGO_PKG_VERSION")).to_string(),
            connect_timeout: Duration::from_secs(10),
            timeout: Duration::from_secs(60),
            requests_per_second: 10,
            burst: 20,
            max_retries: 5,
            max_total_wait: Duration::from_secs(15 * 60),
            min_backoff: Duration::from_millis(500),
            max_backoff: Duration::from_secs(60),
        }
    }
}

/// A response with its body read.
#[derive(Debug, Clone)]
pub struct Response {
    pub status: u16,
    pub headers: HeaderMap,
    pub body: Bytes,
    /// Answered by a 304 and the cache.
    pub from_cache: bool,
    /// Where the answer came from after redirects (may carry a query string: do not log it).
    pub final_url: String,
}

impl Response {
    pub fn json<T: serde::de::DeserializeOwned>(&self) -> Result<T, serde_json::Error> {
        serde_json::from_slice(&self.body)
    }

    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }
}

/// A connector's HTTP client. Clone it freely: clones share limits, cache and counters.
#[derive(Clone)]
pub struct HttpClient {
    inner: reqwest::Client,
    limiter: Arc<DefaultKeyedRateLimiter<String>>,
    cache: Option<Arc<dyn ResponseCache>>,
    metrics: Arc<HttpMetrics>,
    config: HttpConfig,
}

impl std::fmt::Debug for HttpClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HttpClient")
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}

impl HttpClient {
    pub fn new(
        config: HttpConfig,
        cache: Option<Arc<dyn ResponseCache>>,
    ) -> Result<Self, HttpError> {
        let inner = reqwest::Client::builder()
            .user_agent(config.user_agent.clone())
            .connect_timeout(config.connect_timeout)
            .timeout(config.timeout)
            .gzip(true)
            .build()
            .map_err(|e| HttpError::Invalid {
                url: String::new(),
                message: format!("cannot build the HTTP client: {e}"),
            })?;
        let rate = NonZeroU32::new(config.requests_per_second.max(1)).unwrap_or(NonZeroU32::MIN);
        let burst = NonZeroU32::new(config.burst.max(1)).unwrap_or(NonZeroU32::MIN);
        Ok(Self {
            inner,
            limiter: Arc::new(RateLimiter::keyed(
                Quota::per_second(rate).allow_burst(burst),
            )),
            cache,
            metrics: Arc::new(HttpMetrics::default()),
            config,
        })
    }

    pub fn metrics(&self) -> &HttpMetrics {
        &self.metrics
    }

    /// A GET, conditional when an earlier response is cached.
    pub async fn get(&self, url: &str, headers: HeaderMap) -> Result<Response, HttpError> {
        self.send(Method::GET, url, headers, None).await
    }

    /// A POST with a JSON body (GraphQL); never cached.
    pub async fn post_json(
        &self,
        url: &str,
        headers: HeaderMap,
        body: &serde_json::Value,
    ) -> Result<Response, HttpError> {
        let bytes = serde_json::to_vec(body).map_err(|e| HttpError::Invalid {
            url: redact(url),
            message: e.to_string(),
        })?;
        let mut headers = headers;
        headers.insert(
            reqwest::header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        );
        self.send(Method::POST, url, headers, Some(Bytes::from(bytes)))
            .await
    }

    /// Sends with rate limiting and retries. Non-2xx answers other than 304 are errors.
    pub async fn send(
        &self,
        method: Method,
        url: &str,
        headers: HeaderMap,
        body: Option<Bytes>,
    ) -> Result<Response, HttpError> {
        self.send_when(method, url, headers, body, HttpError::is_retryable)
            .await
    }

    /// Like [`HttpClient::send`], retrying only the errors `retry_when` accepts. A caller that
    /// answers some failures itself (a smaller GraphQL page after a 502) returns those at once.
    pub async fn send_when(
        &self,
        method: Method,
        url: &str,
        headers: HeaderMap,
        body: Option<Bytes>,
        retry_when: impl Fn(&HttpError) -> bool,
    ) -> Result<Response, HttpError> {
        let cached = match (&self.cache, method == Method::GET) {
            (Some(cache), true) => cache.get(url),
            _ => None,
        };
        let waited_ms = AtomicU64::new(0);
        let budget = self.config.max_total_wait;
        let attempts = AtomicU64::new(0);
        let backoff = ExponentialBuilder::default()
            .with_min_delay(self.config.min_backoff)
            .with_max_delay(self.config.max_backoff)
            .with_max_times(self.config.max_retries)
            .with_jitter();
        let result = (|| async {
            attempts.fetch_add(1, Ordering::Relaxed);
            self.attempt(&method, url, &headers, body.clone(), cached.as_ref()).await
        })
        .retry(backoff)
        .when(|e| retry_when(e))
        .adjust(|e, planned| {
            // The server's word beats our backoff; the total budget beats both.
            let wait = e.retry_after().unwrap_or(planned?);
            let total = waited_ms.load(Ordering::Relaxed) + wait.as_millis() as u64;
            if total > budget.as_millis() as u64 {
                return None;
            }
            waited_ms.store(total, Ordering::Relaxed);
            if e.retry_after().is_some() {
                self.metrics.rate_limit_wait();
            }
            self.metrics.retry();
            tracing::debug!(url = %redact(url), error = %e, wait_ms = wait.as_millis() as u64, "retrying");
            Some(wait)
        })
        .await;
        let attempts = attempts.load(Ordering::Relaxed) as usize;
        match result {
            Err(e) if attempts > 1 && retry_when(&e) => Err(HttpError::Exhausted {
                url: redact(url),
                attempts,
                last: Box::new(e),
            }),
            other => other,
        }
    }

    async fn attempt(
        &self,
        method: &Method,
        url: &str,
        headers: &HeaderMap,
        body: Option<Bytes>,
        cached: Option<&CacheEntry>,
    ) -> Result<Response, HttpError> {
        let parsed = reqwest::Url::parse(url).map_err(|e| HttpError::Invalid {
            url: redact(url),
            message: e.to_string(),
        })?;
        let host = parsed.host_str().unwrap_or_default().to_string();
        if self.limiter.check_key(&host).is_err() {
            self.metrics.rate_limit_wait();
            self.limiter.until_key_ready(&host).await;
        }
        let mut request = self
            .inner
            .request(method.clone(), parsed)
            .headers(headers.clone());
        if let Some(entry) = cached {
            if let Some(etag) = entry
                .etag
                .as_deref()
                .and_then(|v| HeaderValue::from_str(v).ok())
            {
                request = request.header(IF_NONE_MATCH, etag);
            }
            if let Some(lm) = entry
                .last_modified
                .as_deref()
                .and_then(|v| HeaderValue::from_str(v).ok())
            {
                request = request.header(IF_MODIFIED_SINCE, lm);
            }
        }
        if let Some(b) = body {
            request = request.body(b);
        }
        self.metrics.request();
        let response = request.send().await.map_err(|e| classify(url, &e))?;
        let status = response.status();
        let final_url = response.url().to_string();
        let headers = response.headers().clone();
        let body = response.bytes().await.map_err(|e| classify(url, &e))?;
        self.metrics.bytes(body.len());
        if let Some(left) = ["x-ratelimit-remaining", "ratelimit-remaining"]
            .iter()
            .find_map(|h| headers.get(*h)?.to_str().ok()?.trim().parse::<u64>().ok())
        {
            self.metrics.remaining(left);
        }

        if status == StatusCode::NOT_MODIFIED
            && let Some(entry) = cached
        {
            self.metrics.not_modified();
            let mut headers = headers;
            if !headers.contains_key(LINK)
                && let Some(link) = entry
                    .link
                    .as_deref()
                    .and_then(|v| HeaderValue::from_str(v).ok())
            {
                headers.insert(LINK, link);
            }
            return Ok(Response {
                status: 200,
                headers,
                body: entry.body.clone(),
                from_cache: true,
                final_url,
            });
        }
        if !status.is_success() {
            let wait = server_wait(status.as_u16(), &headers, SystemTime::now());
            return Err(HttpError::Status {
                url: redact(url),
                status: status.as_u16(),
                detail: error_detail(&body),
                retry_after: wait.map(RetryAfter),
            });
        }
        if *method == Method::GET
            && let Some(cache) = &self.cache
        {
            let etag = headers
                .get(ETAG)
                .and_then(|v| v.to_str().ok())
                .map(str::to_string);
            let last_modified = headers
                .get(LAST_MODIFIED)
                .and_then(|v| v.to_str().ok())
                .map(str::to_string);
            if etag.is_some() || last_modified.is_some() {
                cache.put(
                    url,
                    CacheEntry {
                        etag,
                        last_modified,
                        link: headers
                            .get(LINK)
                            .and_then(|v| v.to_str().ok())
                            .map(str::to_string),
                        body: body.clone(),
                    },
                );
            }
        }
        Ok(Response {
            status: status.as_u16(),
            headers,
            body,
            from_cache: false,
            final_url,
        })
    }
}

fn classify(url: &str, e: &reqwest::Error) -> HttpError {
    if e.is_timeout() {
        HttpError::Timeout { url: redact(url) }
    } else if e.is_builder() {
        // reqwest's own message repeats the URL, credentials and all: only its cause.
        HttpError::Invalid {
            url: redact(url),
            message: std::error::Error::source(e).map_or_else(
                || "the request could not be built".into(),
                |s| s.to_string(),
            ),
        }
    } else {
        // Connection resets, truncated bodies, refused connections: worth another try.
        HttpError::Connect {
            url: redact(url),
            message: std::error::Error::source(e).map_or_else(|| e.to_string(), |s| s.to_string()),
        }
    }
}

/// The `message` of a JSON error body, or its first 200 characters.
fn error_detail(body: &[u8]) -> Option<String> {
    if body.is_empty() {
        return None;
    }
    if let Ok(v) = serde_json::from_slice::<serde_json::Value>(body)
        && let Some(m) = v.get("message").and_then(|m| m.as_str())
    {
        return Some(m.to_string());
    }
    let text = String::from_utf8_lossy(body);
    Some(text.chars().take(200).collect())
}

#[cfg(test)]
mod tests;
