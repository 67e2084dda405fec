//! Talking to GitHub: credentials (a token, or a GitHub App's installation token minted by
//! octocrab), GraphQL with the `rateLimit` reserve and adaptive page sizes, and REST lists
//! followed by their `Link` headers with ETags kept between runs.

use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde::de::DeserializeOwned;
use serde_json::{Value, json};
use surveyor_http::{
    ApiClient, ApiStats, GraphqlResponse, HeaderMap, HeaderValue, HttpClient, HttpError, Pause,
    QuotaSpent, Unreadable, secret_header,
};
use tokio::sync::Mutex;

use crate::config::{Auth, MIN_PAGE, Settings};
use crate::queries::{self, NodesData, OrgData, RateLimit, Rated, RepoNode};

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
    #[error(transparent)]
    Decode(#[from] Unreadable),
    #[error("organisation {0:?} not found, or not visible to these credentials")]
    OrgNotFound(String),
    #[error(transparent)]
    QuotaExhausted(#[from] QuotaSpent),
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
            Self::Http(e) => e.may_pass_smaller(),
            Self::Graphql { kind, message } => {
                kind.as_deref().is_some_and(|k| {
                    k.contains("RESOURCE_LIMITS") || k == "MAX_NODE_LIMIT_EXCEEDED"
                }) || message.contains("timeout")
            }
            _ => false,
        }
    }
}

enum Credentials {
    Token(HeaderValue),
    /// The installation client, and a lock so concurrent requests mint one token, not one each
    /// (octocrab caches the token but does not coalesce concurrent refreshes).
    App(Box<octocrab::Octocrab>, Mutex<()>),
}

pub struct Api {
    client: ApiClient,
    credentials: Credentials,
    settings: Arc<Settings>,
    /// No GraphQL request before this moment (the quota reserve).
    pub reserve: Pause,
    /// Errors GitHub reported about single items of otherwise good pages, since last taken.
    /// Orgs are crawled one after another, so what is taken after an org belongs to it.
    field_errors: Mutex<Vec<String>>,
}

impl Api {
    pub fn new(settings: Arc<Settings>) -> Result<Self, ApiError> {
        let http = HttpClient::cached_in(settings.http.clone(), &settings.cache_dir)?;
        let credentials = match &settings.auth {
            Auth::Token(token) => {
                let value =
                    secret_header(&format!("Bearer {}", token.expose())).ok_or_else(|| {
                        ApiError::App("the token has characters a header cannot carry".into())
                    })?;
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
            client: ApiClient::new(http, &settings.graphql_url),
            credentials,
            reserve: Pause::new(
                settings.max_pause,
                "GraphQL quota is spent or under the reserve",
                "GraphQL quota at its reserve",
            ),
            settings,
            field_errors: Mutex::new(Vec::new()),
        })
    }

    pub fn http(&self) -> &HttpClient {
        self.client.http()
    }

    /// What the client has done so far.
    pub fn stats(&self) -> ApiStats {
        self.client.stats(&self.reserve)
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
                secret_header(&format!("Bearer {}", token.expose_secret()))
                    .ok_or_else(|| ApiError::App("unusable installation token".into()))?
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
        self.reserve.wait().await?;
        // The next answer says how the quota stands now.
        self.reserve.set(None).await;
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

    /// One GraphQL request; when GitHub says the quota is spent (another client shares it),
    /// waits for the reset and asks again. The answer's errors are the caller's to read.
    async fn graphql_answer<D: DeserializeOwned + Rated>(
        &self,
        query: &str,
        variables: &Value,
        what: &str,
        retry_big: bool,
    ) -> Result<GraphqlResponse<D>, ApiError> {
        loop {
            self.respect_reserve().await?;
            let headers = self.headers().await?;
            let response = self
                .client
                .graphql(headers, query, variables, retry_big)
                .await?;
            let parsed: GraphqlResponse<D> = response.parse(format!("GraphQL ({what})"))?;
            if let Some(rate) = parsed.data.as_ref().and_then(Rated::rate_limit) {
                self.reserve.set(self.note_rate_limit(&rate)).await;
            }
            // Documented as `RATE_LIMITED`; since 2025 also `RATE_LIMIT` with a code.
            let rate_limited = parsed.errors.iter().any(|e| {
                matches!(e.kind.as_deref(), Some("RATE_LIMITED" | "RATE_LIMIT"))
                    || e.code.as_deref() == Some("graphql_rate_limit")
            });
            if rate_limited {
                let reset = response
                    .header("x-ratelimit-reset")
                    .and_then(|v| v.parse::<u64>().ok())
                    .map(|s| UNIX_EPOCH + Duration::from_secs(s + 1))
                    .unwrap_or_else(|| SystemTime::now() + Duration::from_secs(60));
                self.reserve.set(Some(reset)).await;
                continue;
            }
            return Ok(parsed);
        }
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
        let parsed: GraphqlResponse<OrgData<T>> = self
            .graphql_answer(query, variables, org, retry_big)
            .await?;
        if let Some(error) = parsed.errors.first() {
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
        parsed
            .data
            .and_then(|d| d.organization)
            .ok_or_else(|| ApiError::OrgNotFound(org.to_string()))
    }

    /// Repositories by node id in one request (at most 100 ids), in the order asked: `None`
    /// where GitHub says the id resolves to nothing (`NOT_FOUND`: deleted, or out of these
    /// credentials' sight, where an org's listing would not show it either). Any other error
    /// about an item (forbidden, behind SAML) fails the read: it is not an absence.
    pub async fn repositories_by_id(
        &self,
        ids: &[String],
    ) -> Result<Vec<Option<RepoNode>>, ApiError> {
        let query = queries::repositories_by_id_query();
        let variables = json!({ "ids": ids });
        let parsed: GraphqlResponse<NodesData<RepoNode>> = self
            .graphql_answer(&query, &variables, "repositories by id", true)
            .await?;
        let mut missing = std::collections::BTreeSet::new();
        for e in &parsed.errors {
            match (e.kind.as_deref(), e.path.as_slice()) {
                (Some("NOT_FOUND"), [Value::String(f), Value::Number(i)]) if f == "nodes" => {
                    missing.insert(i.as_u64().unwrap_or(u64::MAX) as usize);
                }
                _ => {
                    return Err(ApiError::Graphql {
                        kind: e.kind.clone(),
                        message: e.message.clone(),
                    });
                }
            }
        }
        let nodes = parsed.data.map(|d| d.nodes).unwrap_or_default();
        if nodes.len() != ids.len() {
            return Err(ApiError::Graphql {
                kind: None,
                message: format!("asked for {} repositories, got {}", ids.len(), nodes.len()),
            });
        }
        nodes
            .into_iter()
            .enumerate()
            .map(|(i, node)| match node {
                Some(n) => Ok(Some(n)),
                None if missing.contains(&i) => Ok(None),
                // A null without a NOT_FOUND beside it says nothing about the repository.
                None => Err(ApiError::Graphql {
                    kind: None,
                    message: format!("repository {} came back empty without a reason", ids[i]),
                }),
            })
            .collect()
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
                    self.client.shrunk();
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
            items.extend(response.parse::<Vec<T>>(surveyor_http::redact(&url))?);
            let Some(next) = response.next_link() else {
                return Ok(items);
            };
            url = next;
        }
    }

    /// One REST object.
    pub async fn rest_object<T: DeserializeOwned>(&self, path: &str) -> Result<T, ApiError> {
        let url = format!("{}{path}", self.settings.api_url);
        Ok(self
            .rest_get(&url)
            .await?
            .parse(surveyor_http::redact(&url))?)
    }

    async fn rest_get(&self, url: &str) -> Result<surveyor_http::Response, ApiError> {
        let headers = self.headers().await?;
        Ok(self.client.rest(url, headers).await?)
    }
}

/// octocrab's errors can embed response bodies; keep the first line, which names the failure.
fn app_error(e: &octocrab::Error) -> String {
    let text = match e {
        octocrab::Error::GitHub { source, .. } => format!("GitHub said: {}", source.message),
        other => other.to_string(),
    };
    text.lines().next().unwrap_or_default().to_string()
}
