//! Talking to GitHub: credentials (a token, or a GitHub App's installation token minted by
//! octocrab), GraphQL with the `rateLimit` reserve and adaptive page sizes, and REST lists
//! followed by their `Link` headers with ETags kept between runs.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde::de::DeserializeOwned;
use serde_json::{Value, json};
use surveyor_http::{
    FileCache, HeaderMap, HeaderValue, HttpClient, HttpConfig, HttpError, Method, ResponseCache,
};
use tokio::sync::Mutex;

use crate::config::{Auth, MIN_PAGE, Settings};
use crate::queries::{GraphqlResponse, OrgData, RateLimit};

/// Why a request to GitHub did not give an answer the crawl can use. Messages never carry
/// credentials: URLs are redacted by the HTTP layer and tokens never enter errors.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    #[error(transparent)]
    Http(#[from] HttpError),
    #[error("GraphQL error{}: {message}", .kind.as_deref().map(|k| format!(" {k}")).unwrap_or_default())]
    Graphql {
        kind: Option<String>,
        message: String,
    },
    #[error("unreadable answer from {what}: {message}")]
    Decode { what: String, message: String },
    #[error("organisation {0:?} not found, or not visible to these credentials")]
    OrgNotFound(String),
    #[error(
        "the GraphQL quota is spent or under the reserve until {reset_in_secs}s from now, longer than max_rate_limit_pause_secs"
    )]
    QuotaExhausted { reset_in_secs: u64 },
    #[error(
        "{asked} was redirected to {answered}: these credentials see only part of it (for an org's members: not a member of the org)"
    )]
    Redirected { asked: String, answered: String },
    #[error("GitHub App authentication failed: {0}")]
    App(String),
    #[error("{what}: the last page came after {read} of {total}; the rest was not read")]
    EndedEarly {
        what: &'static str,
        read: u64,
        total: u64,
    },
}

impl ApiError {
    /// Failures a smaller page may avoid: gateway timeouts, client timeouts, resource limits.
    fn page_too_big(&self) -> bool {
        match self {
            Self::Http(e) => http_page_too_big(e),
            Self::Graphql { kind, message } => {
                kind.as_deref().is_some_and(|k| {
                    k.contains("RESOURCE_LIMITS") || k == "MAX_NODE_LIMIT_EXCEEDED"
                }) || message.contains("timeout")
            }
            _ => false,
        }
    }
}

/// What the connector did beyond plain requests (the HTTP layer counts those).
#[derive(Debug, Default)]
pub struct ApiStats {
    pub graphql_requests: AtomicU64,
    pub rest_requests: AtomicU64,
    /// Pauses to keep the GraphQL quota above the reserve.
    pub reserve_pauses: AtomicU64,
    /// Times a page was halved after a timeout or resource-limit error.
    pub page_shrinks: AtomicU64,
}

enum Credentials {
    Token(HeaderValue),
    /// The installation client, and a lock so concurrent requests mint one token, not one each
    /// (octocrab caches the token but does not coalesce concurrent refreshes).
    App(Box<octocrab::Octocrab>, Mutex<()>),
}

pub struct Api {
    http: HttpClient,
    credentials: Credentials,
    settings: Arc<Settings>,
    /// No GraphQL request before this moment (the quota reserve).
    paused_until: Mutex<Option<SystemTime>>,
    /// Errors GitHub reported about single items of otherwise good pages, since last taken.
    /// Orgs are crawled one after another, so what is taken after an org belongs to it.
    field_errors: Mutex<Vec<String>>,
    pub stats: ApiStats,
}

impl Api {
    pub fn new(settings: Arc<Settings>) -> Result<Self, ApiError> {
        let cache: Option<Arc<dyn ResponseCache>> = match FileCache::new(&settings.cache_dir) {
            Ok(c) => Some(Arc::new(c)),
            Err(e) => {
                tracing::warn!(dir = %settings.cache_dir.display(), error = %e, "no ETag cache: every REST request will be a full one");
                None
            }
        };
        let http = HttpClient::new(
            HttpConfig {
                timeout: settings.timeout,
                requests_per_second: settings.requests_per_second,
                burst: settings.requests_per_second.saturating_mul(2),
                max_retries: settings.max_retries,
                max_total_wait: settings.max_pause.max(Duration::from_secs(60)),
                ..HttpConfig::default()
            },
            cache,
        )?;
        let credentials = match &settings.auth {
            Auth::Token(token) => {
                let mut value = HeaderValue::from_str(&format!("Bearer {}", token.expose()))
                    .map_err(|_| {
                        ApiError::App("the token has characters a header cannot carry".into())
                    })?;
                value.set_sensitive(true);
                Credentials::Token(value)
            }
            Auth::App {
                app_id,
                key,
                installation_id,
            } => {
                let key = octocrab::EncodingKey::from_rsa_pem(key.expose().as_bytes())
                    .map_err(|e| ApiError::App(format!("private key: {e}")))?;
                let app = octocrab::Octocrab::builder()
                    .base_uri(settings.api_url.as_str())
                    .map_err(|e| ApiError::App(format!("api_url: {e}")))?
                    .app(octocrab::models::AppId(*app_id), key)
                    .build()
                    .map_err(|e| ApiError::App(e.to_string()))?;
                let installation = app
                    .installation(octocrab::models::InstallationId(*installation_id))
                    .map_err(|e| ApiError::App(e.to_string()))?;
                Credentials::App(Box::new(installation), Mutex::new(()))
            }
        };
        Ok(Self {
            http,
            credentials,
            settings,
            paused_until: Mutex::new(None),
            field_errors: Mutex::new(Vec::new()),
            stats: ApiStats::default(),
        })
    }

    pub fn http(&self) -> &HttpClient {
        &self.http
    }

    async fn headers(&self) -> Result<HeaderMap, ApiError> {
        let mut headers = HeaderMap::new();
        let auth = match &self.credentials {
            Credentials::Token(v) => v.clone(),
            Credentials::App(crab, minting) => {
                // Cached by octocrab and re-minted shortly before it expires.
                use octocrab::secrecy::ExposeSecret;
                let _one_at_a_time = minting.lock().await;
                let token = crab
                    .installation_token()
                    .await
                    .map_err(|e| ApiError::App(app_error(&e)))?;
                let mut v = HeaderValue::from_str(&format!("Bearer {}", token.expose_secret()))
                    .map_err(|_| ApiError::App("unusable installation token".into()))?;
                v.set_sensitive(true);
                v
            }
        };
        headers.insert("authorization", auth);
        headers.insert(
            "accept",
            HeaderValue::from_static("application/vnd.github+json"),
        );
        headers.insert(
            "x-github-api-version",
            HeaderValue::from_static("2022-11-28"),
        );
        Ok(headers)
    }

    /// Waits out a reserve pause, or says the wait is longer than allowed.
    async fn respect_reserve(&self) -> Result<(), ApiError> {
        let until = *self.paused_until.lock().await;
        if let Some(until) = until {
            let wait = until.duration_since(SystemTime::now()).unwrap_or_default();
            if wait > self.settings.max_pause {
                return Err(ApiError::QuotaExhausted {
                    reset_in_secs: wait.as_secs(),
                });
            }
            if !wait.is_zero() {
                self.stats.reserve_pauses.fetch_add(1, Ordering::Relaxed);
                tracing::info!(
                    wait_secs = wait.as_secs_f64(),
                    "GraphQL quota at its reserve; pausing until it resets"
                );
                tokio::time::sleep(wait).await;
            }
            *self.paused_until.lock().await = None;
        }
        Ok(())
    }

    fn note_rate_limit(&self, rate: &RateLimit) -> Option<SystemTime> {
        let floor = (rate.limit as f64 * self.settings.reserve).ceil() as u64;
        if rate.remaining > floor {
            return None;
        }
        let reset = rate
            .reset_at
            .and_then(|t| u64::try_from(t.timestamp()).ok())
            .map(|t| UNIX_EPOCH + Duration::from_secs(t))?;
        // A second past the reset, so the new window has surely begun.
        Some(reset + Duration::from_secs(1))
    }

    /// One GraphQL request for an organisation-rooted query. `retry_big` says whether failures a
    /// smaller page could avoid are retried here (only once the page cannot shrink further).
    async fn graphql_once<T: DeserializeOwned>(
        &self,
        query: &str,
        variables: &Value,
        org: &str,
        retry_big: bool,
    ) -> Result<T, ApiError> {
        loop {
            self.respect_reserve().await?;
            let body = serde_json::to_vec(&json!({"query": query, "variables": variables}))
                .map_err(|e| ApiError::Decode {
                    what: "the query".into(),
                    message: e.to_string(),
                })?;
            let mut headers = self.headers().await?;
            headers.insert("content-type", HeaderValue::from_static("application/json"));
            self.stats.graphql_requests.fetch_add(1, Ordering::Relaxed);
            let response = self
                .http
                .send_when(
                    Method::POST,
                    &self.settings.graphql_url,
                    headers,
                    Some(body.into()),
                    |e| e.is_retryable() && (retry_big || !http_page_too_big(e)),
                )
                .await?;
            let parsed: GraphqlResponse<OrgData<T>> =
                response.json().map_err(|e| ApiError::Decode {
                    what: format!("GraphQL ({org})"),
                    message: e.to_string(),
                })?;
            if let Some(rate) = parsed.data.as_ref().and_then(|d| d.rate_limit) {
                *self.paused_until.lock().await = self.note_rate_limit(&rate);
            }
            if let Some(error) = parsed.errors.first() {
                // Documented as `RATE_LIMITED`; since 2025 also `RATE_LIMIT` with a code.
                let rate_limited = parsed.errors.iter().any(|e| {
                    matches!(e.kind.as_deref(), Some("RATE_LIMITED" | "RATE_LIMIT"))
                        || e.code.as_deref() == Some("graphql_rate_limit")
                });
                if rate_limited {
                    // The quota ran out anyway (another client shares it): wait for the reset.
                    let reset = response
                        .header("x-ratelimit-reset")
                        .and_then(|v| v.parse::<u64>().ok())
                        .map(|s| UNIX_EPOCH + Duration::from_secs(s + 1))
                        .unwrap_or_else(|| SystemTime::now() + Duration::from_secs(60));
                    *self.paused_until.lock().await = Some(reset);
                    continue;
                }
                if error.kind.as_deref() == Some("NOT_FOUND") && error.depth() <= 1 {
                    return Err(ApiError::OrgNotFound(org.to_string()));
                }
                // Errors inside nodes (a SAML-protected or forbidden item comes back as `null`
                // beside its error): the rest of the page is good; the org is partial.
                let inside_nodes = parsed.errors.iter().all(|e| e.depth() > 1);
                if inside_nodes && let Some(data) = parsed.data.and_then(|d| d.organization) {
                    let mut notes = self.field_errors.lock().await;
                    notes.extend(parsed.errors.iter().map(ToString::to_string));
                    return Ok(data);
                }
                return Err(ApiError::Graphql {
                    kind: error.kind.clone(),
                    message: error.message.clone(),
                });
            }
            return parsed
                .data
                .and_then(|d| d.organization)
                .ok_or_else(|| ApiError::OrgNotFound(org.to_string()));
        }
    }

    /// A GraphQL page of `first` items; on a failure a smaller page may avoid, halves `first`
    /// (not under [`MIN_PAGE`]) and asks again. `first` keeps the size that worked.
    pub async fn graphql_page<T: DeserializeOwned>(
        &self,
        query: &str,
        mut variables: Value,
        org: &str,
        first: &mut u32,
    ) -> Result<T, ApiError> {
        loop {
            variables["first"] = json!(*first);
            let floor = *first <= MIN_PAGE;
            match self.graphql_once(query, &variables, org, floor).await {
                Err(e) if !floor && e.page_too_big() => {
                    let smaller = (*first / 2).max(MIN_PAGE);
                    tracing::info!(org, from = *first, to = smaller, error = %e, "shrinking the GraphQL page");
                    self.stats.page_shrinks.fetch_add(1, Ordering::Relaxed);
                    *first = smaller;
                }
                other => return other,
            }
        }
    }

    /// Errors about single items since the last call (each leaves its org partial).
    pub async fn take_field_errors(&self) -> Vec<String> {
        std::mem::take(&mut *self.field_errors.lock().await)
    }

    /// Every item of a REST list, following `Link: rel="next"`; pages come from the ETag cache
    /// when GitHub answers 304.
    pub async fn rest_list<T: DeserializeOwned>(&self, path: &str) -> Result<Vec<T>, ApiError> {
        let mut url = format!("{}{path}", self.settings.api_url);
        let mut items = Vec::new();
        loop {
            let response = self.rest_get(&url).await?;
            let asked = path.split('?').next().unwrap_or(path);
            let answered = response
                .final_url
                .split(['?', '#'])
                .next()
                .unwrap_or_default();
            if !answered.ends_with(asked) {
                // GitHub sends non-members of an org from its member list to its public members:
                // a shorter list that must not read as everyone.
                return Err(ApiError::Redirected {
                    asked: asked.to_string(),
                    answered: answered
                        .strip_prefix(self.settings.api_url.as_str())
                        .unwrap_or(answered)
                        .to_string(),
                });
            }
            let page: Vec<T> = response.json().map_err(|e| ApiError::Decode {
                what: surveyor_http::redact(&url),
                message: e.to_string(),
            })?;
            items.extend(page);
            match response.header("link").and_then(next_link) {
                Some(next) => url = next,
                None => return Ok(items),
            }
        }
    }

    /// One REST object.
    pub async fn rest_object<T: DeserializeOwned>(&self, path: &str) -> Result<T, ApiError> {
        let url = format!("{}{path}", self.settings.api_url);
        let response = self.rest_get(&url).await?;
        response.json().map_err(|e| ApiError::Decode {
            what: surveyor_http::redact(&url),
            message: e.to_string(),
        })
    }

    async fn rest_get(&self, url: &str) -> Result<surveyor_http::Response, ApiError> {
        let headers = self.headers().await?;
        self.stats.rest_requests.fetch_add(1, Ordering::Relaxed);
        Ok(self.http.get(url, headers).await?)
    }
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

/// Gateway and client timeouts: GitHub gave up computing the page, or we gave up waiting.
fn http_page_too_big(e: &HttpError) -> bool {
    matches!(
        e,
        HttpError::Status {
            status: 502 | 504,
            ..
        } | HttpError::Timeout { .. }
    )
}

/// octocrab's errors can embed response bodies; keep the first line, which names the failure.
fn app_error(e: &octocrab::Error) -> String {
    let text = match e {
        octocrab::Error::GitHub { source, .. } => format!("GitHub said: {}", source.message),
        other => other.to_string(),
    };
    text.lines().next().unwrap_or_default().to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_the_next_link() {
        let h = r#"<https://api.github.com/orgs/a/members?page=2>; rel="next", <https://api.github.com/orgs/a/members?page=5>; rel="last""#;
        assert_eq!(
            next_link(h).as_deref(),
            Some("https://api.github.com/orgs/a/members?page=2")
        );
        let last = r#"<https://api.github.com/orgs/a/members?page=4>; rel="prev", <https://api.github.com/orgs/a/members?page=1>; rel="first""#;
        assert_eq!(next_link(last), None);
    }
}
