//! The `pagerduty` connector: services with their on-call coverage, teams with members, users
//! and escalation policies, from PagerDuty's REST API v2.
//!
//! One scope, the account. Every list is read by classic offset pagination (100 at a time);
//! PagerDuty stops those at 10,000 records, and a list that reaches the cap leaves the account
//! partial, saying so, rather than looking complete. A refused token (401/403) fails it.

mod config;
mod map;

use std::collections::BTreeMap;

use serde_json::Value;
use surveyor_http::{HeaderMap, HeaderValue, HttpClient, HttpConfig, HttpError};
use surveyor_model::{Connector, ConnectorError, Observation, ObservationSink, Outcome};

pub use config::{KEYS, PagerDutyConfig, PagerDutyConfigError};

use crate::config::Settings;

/// The connector's kind name in `surveyor.toml`.
pub const KIND: &str = "pagerduty";

/// Classic pagination's documented ceiling: `offset + limit` may not pass it.
pub const OFFSET_CAP: usize = 10_000;
const PAGE: usize = 100;

pub struct PagerDutyConnector {
    id: String,
    settings: Settings,
    http: HttpClient,
    headers: HeaderMap,
}

/// Why a list could not be read.
#[derive(Debug, thiserror::Error)]
enum ListError {
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

/// A whole list, or as much of it as the offset cap allows.
struct Listed {
    items: Vec<Value>,
    /// PagerDuty had more, past the 10,000-record cap.
    capped: bool,
}

impl PagerDutyConnector {
    pub fn new(id: &str, config: PagerDutyConfig) -> Result<Self, PagerDutyConfigError> {
        let settings = config.settings()?;
        let http = HttpClient::new(
            HttpConfig {
                timeout: settings.timeout,
                requests_per_second: settings.requests_per_second,
                burst: settings.requests_per_second,
                max_retries: settings.max_retries,
                ..HttpConfig::default()
            },
            None,
        )
        .map_err(|e| PagerDutyConfigError {
            key: "api_url",
            message: e.to_string(),
        })?;
        let mut headers = HeaderMap::new();
        let mut auth = HeaderValue::from_str(&format!("Token token={}", settings.token.expose()))
            .map_err(|_| PagerDutyConfigError {
            key: "token",
            message: "has characters a header cannot carry".into(),
        })?;
        auth.set_sensitive(true);
        headers.insert("authorization", auth);
        headers.insert(
            "accept",
            HeaderValue::from_static("application/vnd.pagerduty+json;version=2"),
        );
        Ok(Self {
            id: id.to_string(),
            settings,
            http,
            headers,
        })
    }

    /// Every item of `path`'s list (`key` in the answer), `PAGE` at a time. The first page asks
    /// for the `total`, so that a list that says it is done before reaching it is caught.
    async fn list(&self, path: &str, key: &str, extra: &str) -> Result<Listed, ListError> {
        let mut items = Vec::new();
        let mut offset = 0;
        let mut total: Option<usize> = None;
        loop {
            let count = if offset == 0 { "&total=true" } else { "" };
            let url = format!(
                "{}{path}?limit={PAGE}&offset={offset}{count}{extra}",
                self.settings.api_url
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

    async fn crawl_account(
        &self,
        sink: &ObservationSink,
        outcome: &mut Outcome,
    ) -> Result<(), ConnectorError> {
        let scope = self.settings.subdomain.clone();
        let mut problems: Vec<String> = Vec::new();
        macro_rules! read {
            ($path:expr, $key:expr, $extra:expr) => {
                match self.list($path, $key, $extra).await {
                    Ok(l) => {
                        if l.capped {
                            problems.push(format!(
                                "{}: more than {OFFSET_CAP} records; PagerDuty's offset pagination stops there, so the rest were not read",
                                $key
                            ));
                        }
                        l.items
                    }
                    Err(e @ ListError::Denied { .. }) => {
                        outcome.failed(&scope, format!("{}: {e}", $key));
                        return Ok(());
                    }
                    Err(e) => {
                        problems.push(format!("{}: {e}", $key));
                        Vec::new()
                    }
                }
            };
        }
        let users = read!("/users", "users", "");
        let teams = read!("/teams", "teams", "");
        let mut members: BTreeMap<String, Vec<Value>> = BTreeMap::new();
        for team in &teams {
            let Some(id) = team["id"].as_str() else {
                continue;
            };
            let list = read!(&format!("/teams/{id}/members"), "members", "");
            members.insert(id.to_string(), list);
        }
        let policies = read!("/escalation_policies", "escalation_policies", "");
        let services = read!(
            "/services",
            "services",
            "&include%5B%5D=teams&include%5B%5D=escalation_policies"
        );
        let oncalls = read!("/oncalls", "oncalls", "");

        let index = map::Index::new(
            &self.settings,
            &users,
            &teams,
            &members,
            &policies,
            &oncalls,
        );
        for (id, entity) in index.users() {
            sink.send(Observation::discovered(&scope, id, entity))
                .await?;
        }
        for (id, entity) in index.groups() {
            sink.send(Observation::discovered(&scope, id, entity))
                .await?;
        }
        for service in &services {
            if let Some((id, entity)) = index.component(service) {
                sink.send(Observation::discovered(&scope, id, entity))
                    .await?;
            }
        }
        for p in problems {
            outcome.partial(&scope, p);
        }
        outcome.complete(&scope);
        Ok(())
    }
}

#[async_trait::async_trait]
impl Connector for PagerDutyConnector {
    fn id(&self) -> &str {
        &self.id
    }

    fn kind(&self) -> &'static str {
        KIND
    }

    fn metrics(&self) -> Vec<surveyor_model::ConnectorMetric> {
        self.http.metrics().snapshot().connector_metrics()
    }

    async fn crawl(&self, sink: ObservationSink) -> Result<Outcome, ConnectorError> {
        let mut outcome = Outcome::default();
        self.crawl_account(&sink, &mut outcome).await?;
        Ok(outcome)
    }
}

#[cfg(test)]
mod tests;
