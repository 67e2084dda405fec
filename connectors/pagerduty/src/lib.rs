//! The `pagerduty` connector: services with their on-call coverage, teams with members, users
//! and escalation policies, from PagerDuty's REST API v2.
//!
//! One scope, the account. Every list is read by classic offset pagination (100 at a time);
//! PagerDuty stops those at 10,000 records, and a list that reaches the cap leaves the account
//! partial, saying so, rather than looking complete. A refused token (401/403) fails it.

mod api;
mod config;
mod map;

use std::collections::BTreeMap;

use serde_json::Value;
use surveyor_model::{ConfigError, Crawl, Crawled, Observation};

pub use api::OFFSET_CAP;
pub use config::PagerDutyConfig;

use crate::api::{Api, ListError};
use crate::config::Settings;

/// The connector's kind name in `surveyor.toml`.
pub const KIND: &str = "pagerduty";

pub struct PagerDutyConnector {
    id: String,
    settings: Settings,
    api: Api,
}

impl PagerDutyConnector {
    pub fn new(id: &str, config: PagerDutyConfig) -> Result<Self, ConfigError> {
        let settings = config.settings()?;
        Ok(Self {
            id: id.to_string(),
            api: Api::new(&settings)?,
            settings,
        })
    }

    /// The account: one scope.
    async fn crawl_account(&self, scope: &str, Crawl { sink, outcome }: Crawl<'_>) -> Crawled {
        let mut problems: Vec<String> = Vec::new();
        macro_rules! read {
            ($path:expr, $key:expr, $extra:expr) => {
                match self.api.list($path, $key, $extra).await {
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
                        outcome.failed(scope, format!("{}: {e}", $key));
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
            sink.send(Observation::discovered(scope, id, entity))
                .await?;
        }
        for (id, entity) in index.groups() {
            sink.send(Observation::discovered(scope, id, entity))
                .await?;
        }
        for service in &services {
            if let Some((id, entity)) = index.component(service) {
                sink.send(Observation::discovered(scope, id, entity))
                    .await?;
            }
        }
        for p in problems {
            outcome.partial(scope, p);
        }
        outcome.complete(scope);
        Ok(())
    }
}

surveyor_model::connector!(PagerDutyConnector(PagerDutyConfig):
    each |c| [&c.settings.subdomain] => crawl_account, metrics |c| c.api.http().connector_metrics());

#[cfg(test)]
mod tests;
