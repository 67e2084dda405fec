//! PagerDuty's REST API v2 as the connector reads it: the client with the account's API key,
//! and whole lists by classic offset pagination (100 at a time, up to PagerDuty's 10,000 cap).

use serde_json::Value;
use surveyor_http::{HeaderMap, HeaderValue, HttpClient, HttpError, secret_header};
use surveyor_model::ConfigError;

use crate::config::Settings;

/// Classic pagination's documented ceiling: `offset + limit` may not pass it.
pub const OFFSET_CAP: usize = 10_000;
const PAGE: usize = 100;

/// The requests of one account.
pub struct Api {
    http: HttpClient,
    headers: HeaderMap,
    api_url: String,
}

/// Why a list could not be read.
#[derive(Debug, thiserror::Error)]
pub enum ListError {
    /// The token was refused: nothing from the account can be trusted.
    #[error("the API key was refused (HTTP {status}){}", .detail.as_deref().map(|d| format!(": {d}")).unwrap_or_default())]
    Denied { status: u16, detail: Option<String> },
    #[error(transparent)]
    Http(HttpError),
    #[error("unreadable answer: {0}")]
    Decode(String),
    #[error("{path}: the last page came after {read} of {total}; the rest was not read")]
    EndedEarly {
        path: String,
        read: usize,
        total: usize,
    },
}

impl From<HttpError> for ListError {
    fn from(e: HttpError) -> Self {
        match e.status() {
            Some(status @ (401 | 403)) => {
                let detail = match &e {
                    HttpError::Status { detail, .. } => detail.clone(),
                    _ => None,
                };
                Self::Denied { status, detail }
            }
            _ => Self::Http(e),
        }
    }
}

impl ListError {
    /// PagerDuty says there is no such thing (a deleted service).
    pub fn is_not_found(&self) -> bool {
        matches!(self, Self::Http(e) if e.status() == Some(404))
    }
}

/// A whole list, or as much of it as the offset cap allows.
pub struct Listed {
    pub items: Vec<Value>,
    /// PagerDuty had more, past the 10,000-record cap.
    pub capped: bool,
}

impl Api {
    pub fn new(settings: &Settings) -> Result<Self, ConfigError> {
        let http = HttpClient::new(settings.http.clone(), None)
            .map_err(|e| ConfigError::new("api_url", e.to_string()))?;
        let mut headers = HeaderMap::new();
        let auth = secret_header(&format!("Token token={}", settings.token.expose()))
            .ok_or_else(|| ConfigError::new("token", "has characters a header cannot carry"))?;
        headers.insert("authorization", auth);
        headers.insert(
            "accept",
            HeaderValue::from_static("application/vnd.pagerduty+json;version=2"),
        );
        Ok(Self {
            http,
            headers,
            api_url: settings.api_url.clone(),
        })
    }

    pub fn http(&self) -> &HttpClient {
        &self.http
    }

    /// One object: `path` (`/services/P123`) answers `{key: {...}}`; `query` (`include[]=teams`)
    /// as PagerDuty takes it.
    pub async fn object(&self, path: &str, key: &str, query: &str) -> Result<Value, ListError> {
        let url = format!("{}{path}?{query}", self.api_url);
        let response = self.http.get(&url, self.headers.clone()).await?;
        let mut body: Value = response
            .json()
            .map_err(|e| ListError::Decode(format!("{path}: {e}")))?;
        match body.get_mut(key).map(Value::take) {
            Some(v @ Value::Object(_)) => Ok(v),
            _ => Err(ListError::Decode(format!("{path}: no `{key}` object"))),
        }
    }

    /// Every item of `path`'s list (`key` in the answer), `PAGE` at a time. The first page asks
    /// for the `total`, so that a list that says it is done before reaching it is caught.
    pub async fn list(&self, path: &str, key: &str, extra: &str) -> Result<Listed, ListError> {
        let mut items = Vec::new();
        let mut offset = 0;
        let mut total: Option<usize> = None;
        loop {
            let count = if offset == 0 { "&total=true" } else { "" };
            let url = format!(
                "{}{path}?limit={PAGE}&offset={offset}{count}{extra}",
                self.api_url
            );
            let response = self.http.get(&url, self.headers.clone()).await?;
            let body: Value = response
                .json()
                .map_err(|e| ListError::Decode(format!("{path}: {e}")))?;
            let page = body[key]
                .as_array()
                .ok_or_else(|| ListError::Decode(format!("{path}: no `{key}` list")))?;
            offset += page.len();
            items.extend(page.iter().cloned());
            if offset == page.len() {
                total = body["total"].as_u64().map(|t| t as usize);
            }
            let more = body["more"].as_bool().unwrap_or(false);
            if !more || page.is_empty() {
                // Fewer than the first page counted: the list was cut (or shrank while it was
                // read); either way what is missing must not read as deleted.
                if let Some(total) = total.filter(|t| items.len() < *t) {
                    return Err(ListError::EndedEarly {
                        path: path.to_string(),
                        read: items.len(),
                        total,
                    });
                }
                return Ok(Listed {
                    items,
                    capped: false,
                });
            }
            if offset + PAGE > OFFSET_CAP {
                return Ok(Listed {
                    items,
                    capped: true,
                });
            }
        }
    }
}
