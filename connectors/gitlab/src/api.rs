//! Talking to GitLab: the token header, REST lists followed by `Link: rel="next"` (keyset or
//! offset alike, never `x-total`) with ETags kept between runs, GraphQL queries by global ids
//! in batches that halve when GitLab finds them too complex or too slow, and a pause whenever
//! `RateLimit-Remaining` reaches zero (429s and `Retry-After` are waited out by crates/http).

use std::collections::{BTreeSet, VecDeque};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde::de::DeserializeOwned;
use serde_json::{Value, json};
use surveyor_http::{
    ApiClient, ApiStats, GraphqlResponse, HeaderMap, HeaderName, HeaderValue, HttpClient,
    HttpError, Pause, QuotaSpent, Unreadable, secret_header,
};

use crate::config::{Settings, TokenHeader};
use crate::queries::Connection;

/// Why a request to GitLab did not give an answer the crawl can use. Messages never carry
/// credentials: URLs lose their query strings in the HTTP layer and tokens never enter errors.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    #[error(transparent)]
    Http(#[from] HttpError),
    #[error("GraphQL: {0}")]
    Graphql(String),
    #[error(transparent)]
    Decode(#[from] Unreadable),
    #[error(transparent)]
    QuotaExhausted(#[from] QuotaSpent),
    #[error("a next-page link points outside the configured url: {0}")]
    ForeignLink(String),
}

impl ApiError {
    /// The credentials were refused or lack access (401/403): nothing read can be trusted.
    pub fn is_denied(&self) -> bool {
        matches!(self, Self::Http(e) if matches!(e.status(), Some(401 | 403)))
    }

    pub fn is_not_found(&self) -> bool {
        matches!(self, Self::Http(e) if e.status() == Some(404))
    }

    /// Failures a smaller batch may avoid: complexity limits, timeouts, gateway errors.
    fn batch_too_big(&self) -> bool {
        match self {
            Self::Http(e) => e.may_pass_smaller(),
            Self::Graphql(message) => {
                let m = message.to_lowercase();
                m.contains("complexity") || m.contains("timeout") || m.contains("timed out")
            }
            _ => false,
        }
    }
}

/// Nodes read by id, and the ids that could not be read with why.
#[derive(Debug)]
pub struct Batch<N> {
    pub nodes: Vec<N>,
    pub failed: Vec<(u64, String)>,
}

pub struct Api {
    client: ApiClient,
    auth: (HeaderName, HeaderValue),
    settings: Arc<Settings>,
    /// No request before this moment (the rate limit is spent until then).
    pub quota: Pause,
    /// Ids per GraphQL query; halves when GitLab refuses a batch as too big, and stays so.
    batch: AtomicUsize,
}

impl Api {
    pub fn new(settings: Arc<Settings>) -> Result<Self, ApiError> {
        let http = HttpClient::cached_in(settings.http.clone(), &settings.cache_dir)?;
        let token = settings.token.expose();
        let (name, value) = match settings.token_header {
            TokenHeader::Bearer => ("authorization", format!("Bearer {token}")),
            TokenHeader::PrivateToken => ("private-token", token.to_string()),
        };
        let value = secret_header(&value)
            .ok_or_else(|| Unreadable::new("the token", "has characters a header cannot carry"))?;
        Ok(Self {
            client: ApiClient::new(http, &settings.graphql_url),
            auth: (HeaderName::from_static(name), value),
            batch: AtomicUsize::new(settings.page_size as usize),
            quota: Pause::new(
                settings.max_pause,
                "rate limit is spent",
                "GitLab rate limit spent",
            ),
            settings,
        })
    }

    pub fn http(&self) -> &HttpClient {
        self.client.http()
    }

    /// What the client has done so far.
    pub fn stats(&self) -> ApiStats {
        self.client.stats(&self.quota)
    }

    pub fn api_url(&self) -> &str {
        &self.settings.api_url
    }

    fn headers(&self) -> HeaderMap {
        let mut headers = HeaderMap::new();
        headers.insert(self.auth.0.clone(), self.auth.1.clone());
        headers.insert("accept", HeaderValue::from_static("application/json"));
        headers
    }

    /// Waits out a spent rate limit, or says the wait is longer than allowed.
    async fn respect_quota(&self) -> Result<(), ApiError> {
        self.quota.wait().await?;
        self.quota.end_if_over().await;
        Ok(())
    }

    /// A success that spent the last request of the window: the next one would be a 429, so
    /// wait for the reset instead (GitLab's `RateLimit-Reset` is epoch seconds).
    async fn note_quota(&self, response: &surveyor_http::Response) {
        let remaining = response
            .header("ratelimit-remaining")
            .and_then(|v| v.trim().parse::<u64>().ok());
        if remaining != Some(0) {
            return;
        }
        let now = SystemTime::now();
        let reset = response
            .header("ratelimit-reset")
            .and_then(|v| v.trim().parse::<u64>().ok())
            .map(|secs| {
                if secs > 1_000_000_000 {
                    UNIX_EPOCH + Duration::from_secs(secs)
                } else {
                    now + Duration::from_secs(secs)
                }
            })
            .unwrap_or(now + Duration::from_secs(60));
        // A second past the reset, so the new window has surely begun.
        self.quota.set(Some(reset + Duration::from_secs(1))).await;
    }

    /// A 429 whose `Retry-After` is past what we may wait says why in our terms.
    fn classify(&self, e: HttpError) -> ApiError {
        let asked = match &e {
            HttpError::Status {
                status: 429,
                retry_after: Some(wait),
                ..
            } => Some(wait.0),
            _ => None,
        };
        match asked.and_then(|wait| self.quota.refuses(wait)) {
            Some(refused) => refused.into(),
            None => ApiError::Http(e),
        }
    }

    async fn rest_get(&self, url: &str) -> Result<surveyor_http::Response, ApiError> {
        self.respect_quota().await?;
        let response = self
            .client
            .rest(url, self.headers())
            .await
            .map_err(|e| self.classify(e))?;
        // A 304 counts against the limit too, and carries the live headers.
        self.note_quota(&response).await;
        Ok(response)
    }

    /// One REST page at `url` (absolute), and the next page's URL if there is one.
    pub async fn rest_page<T: DeserializeOwned>(
        &self,
        url: &str,
    ) -> Result<(Vec<T>, Option<String>), ApiError> {
        let response = self.rest_get(url).await?;
        let items: Vec<T> = response.parse(self.describe(url))?;
        let next = match response.next_link() {
            Some(link) => Some(self.rebase(&link)?),
            None => None,
        };
        Ok((items, next))
    }

    /// Every item of a REST list (`path` below `/api/v4`), page after page.
    pub async fn rest_list<T: DeserializeOwned>(&self, path: &str) -> Result<Vec<T>, ApiError> {
        let mut url = format!("{}{path}", self.settings.api_url);
        let mut items = Vec::new();
        loop {
            let (page, next) = self.rest_page(&url).await?;
            items.extend(page);
            match next {
                Some(n) => url = n,
                None => return Ok(items),
            }
        }
    }

    /// One REST object (`path` below `/api/v4`).
    pub async fn rest_object<T: DeserializeOwned>(&self, path: &str) -> Result<T, ApiError> {
        let url = format!("{}{path}", self.settings.api_url);
        Ok(self.rest_get(&url).await?.parse(self.describe(&url))?)
    }

    /// A path for messages: below the API root, without the query.
    fn describe(&self, url: &str) -> String {
        let bare = url.split(['?', '#']).next().unwrap_or(url);
        bare.strip_prefix(self.settings.api_url.as_str())
            .unwrap_or(bare)
            .to_string()
    }

    /// A next-page link, on the configured host. GitLab writes links with its external URL,
    /// which behind a proxy may not be the URL we were given; the token must only ever go to
    /// the configured one, so the path below `/api/v4` is re-rooted there.
    fn rebase(&self, link: &str) -> Result<String, ApiError> {
        if link.starts_with(&format!("{}/", self.settings.api_url)) {
            return Ok(link.to_string());
        }
        match link.find("/api/v4/") {
            Some(at) => Ok(format!(
                "{}{}",
                self.settings.api_url,
                &link[at + "/api/v4".len()..]
            )),
            None => Err(ApiError::ForeignLink(
                link.split(['?', '#']).next().unwrap_or(link).to_string(),
            )),
        }
    }

    /// One GraphQL request. `retry_big` says whether failures a smaller batch may avoid are
    /// retried here (only when the batch cannot shrink further).
    async fn graphql(
        &self,
        query: &str,
        variables: &Value,
        retry_big: bool,
    ) -> Result<GraphqlResponse<Value>, ApiError> {
        self.respect_quota().await?;
        let response = self
            .client
            .graphql(self.headers(), query, variables, retry_big)
            .await
            .map_err(|e| self.classify(e))?;
        self.note_quota(&response).await;
        Ok(response.parse("GraphQL")?)
    }

    /// The nodes of `field` (`projects`, `users`) for `ids`, in batches of the current size;
    /// a batch GitLab finds too big is halved (down to one id) and the rest follow at the new
    /// size. Ids of nodes GitLab reported errors for, or of failed batches, come back failed.
    pub async fn by_ids<N: DeserializeOwned>(
        &self,
        query: &str,
        field: &str,
        ids: &[u64],
        gid: fn(u64) -> String,
        extra: &Value,
    ) -> Batch<N> {
        let mut out = Batch {
            nodes: Vec::new(),
            failed: Vec::new(),
        };
        let size = self.batch.load(Ordering::Relaxed).max(1);
        let mut queue: VecDeque<Vec<u64>> = ids.chunks(size).map(<[u64]>::to_vec).collect();
        while let Some(chunk) = queue.pop_front() {
            match self.one_batch::<N>(query, field, &chunk, gid, extra).await {
                Ok(mut got) => {
                    out.nodes.append(&mut got.nodes);
                    out.failed.append(&mut got.failed);
                }
                Err(e) if chunk.len() > 1 && e.batch_too_big() => {
                    let smaller = chunk.len().div_ceil(2);
                    let now = self.batch.load(Ordering::Relaxed);
                    self.batch.store(now.min(smaller).max(1), Ordering::Relaxed);
                    self.client.shrunk();
                    tracing::info!(from = chunk.len(), to = smaller, error = %e, "halving the GraphQL batch");
                    let rest: Vec<u64> =
                        chunk.into_iter().chain(queue.drain(..).flatten()).collect();
                    queue = rest.chunks(smaller).map(<[u64]>::to_vec).collect();
                }
                Err(e) => {
                    let message = e.to_string();
                    out.failed
                        .extend(chunk.into_iter().map(|id| (id, message.clone())));
                }
            }
        }
        out
    }

    async fn one_batch<N: DeserializeOwned>(
        &self,
        query: &str,
        field: &str,
        chunk: &[u64],
        gid: fn(u64) -> String,
        extra: &Value,
    ) -> Result<Batch<N>, ApiError> {
        let mut vars = extra.clone();
        vars["ids"] = json!(chunk.iter().map(|id| gid(*id)).collect::<Vec<_>>());
        vars["first"] = json!(chunk.len().clamp(1, 100));
        let mut out = Batch {
            nodes: Vec::new(),
            failed: Vec::new(),
        };
        // `first` covers the batch, so one page is the rule; more pages are followed, up to one
        // per id, in case a server pages anyway (and so that one that loops cannot hang us).
        for _ in 0..=chunk.len() {
            let response = self.graphql(query, &vars, chunk.len() == 1).await?;
            let conn = response
                .data
                .as_ref()
                .map(|d| &d[field])
                .filter(|c| !c.is_null());
            let Some(conn) = conn else {
                return Err(match response.errors.first() {
                    Some(e) => ApiError::Graphql(e.to_string()),
                    None => {
                        Unreadable::new(format!("GraphQL {field}"), "no data and no errors").into()
                    }
                });
            };
            let conn: Connection<Value> = serde_json::from_value(conn.clone())
                .map_err(|e| Unreadable::new(format!("GraphQL {field}"), e))?;
            // Errors inside nodes (a repository Gitaly could not read): those nodes are lost,
            // the rest of the batch is good. Errors elsewhere spoil the whole answer.
            let mut bad_nodes: BTreeSet<usize> = BTreeSet::new();
            for e in &response.errors {
                match e.node_index() {
                    Some(i) => {
                        bad_nodes.insert(i);
                        let id = conn
                            .nodes
                            .get(i)
                            .and_then(|n| n.as_ref())
                            .and_then(|n| n["id"].as_str())
                            .and_then(crate::queries::gid_number);
                        if let Some(id) = id {
                            out.failed.push((id, e.to_string()));
                        }
                    }
                    None => return Err(ApiError::Graphql(e.to_string())),
                }
            }
            for (i, node) in conn.nodes.into_iter().enumerate() {
                let Some(node) = node else { continue };
                if bad_nodes.contains(&i) {
                    continue;
                }
                let parsed: N = serde_json::from_value(node)
                    .map_err(|e| Unreadable::new(format!("GraphQL {field}"), e))?;
                out.nodes.push(parsed);
            }
            match conn.page_info {
                Some(p) if p.has_next_page && p.end_cursor.is_some() => {
                    vars["after"] = json!(p.end_cursor);
                }
                _ => return Ok(out),
            }
        }
        Err(ApiError::Graphql(format!(
            "{field}: more pages than ids asked for"
        )))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn api(url: &str) -> Api {
        let dir = tempfile::tempdir().unwrap();
        let config: crate::GitlabConfig =
            toml::from_str(&format!("groups = [\"a\"]\ntoken = \"t\"\nurl = \"{url}\"")).unwrap();
        Api::new(Arc::new(config.settings("gl", dir.path()).unwrap())).unwrap()
    }

    #[test]
    fn links_stay_on_the_configured_host() {
        let a = api("http://127.0.0.1:8080/gitlab");
        assert_eq!(
            a.rebase("http://127.0.0.1:8080/gitlab/api/v4/groups/1/members?page=2")
                .unwrap(),
            "http://127.0.0.1:8080/gitlab/api/v4/groups/1/members?page=2"
        );
        assert_eq!(
            a.rebase("https://gitlab.example.com/api/v4/groups/1/members?page=2")
                .unwrap(),
            "http://127.0.0.1:8080/gitlab/api/v4/groups/1/members?page=2"
        );
        let err = a.rebase("https://evil.example.com/steal?x=1").unwrap_err();
        assert_eq!(
            err.to_string(),
            "a next-page link points outside the configured url: https://evil.example.com/steal"
        );
    }

    #[test]
    fn batch_errors_that_a_smaller_batch_may_avoid() {
        assert!(
            ApiError::Graphql(
                "Query has complexity of 301, which exceeds max complexity of 250".into()
            )
            .batch_too_big()
        );
        assert!(ApiError::Graphql("Request timed out".into()).batch_too_big());
        assert!(!ApiError::Graphql("Field 'x' doesn't exist".into()).batch_too_big());
    }
}
