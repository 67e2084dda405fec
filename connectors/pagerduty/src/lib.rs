//! The `pagerduty` connector: services with their on-call coverage, teams with members, users
//! and escalation policies, from PagerDuty's REST API v2.
//!
//! One scope, the account. Every list is read by classic offset pagination (100 at a time);
//! PagerDuty stops those at 10,000 records, and a list that reaches the cap leaves the account
//! partial, saying so, rather than looking complete. A refused token (401/403) fails it.
//!
//! With `webhook_secret` set, PagerDuty's v3 webhooks name services that changed ([`events`]);
//! a refresh reads just those services again and maps them as a crawl does, with the
//! account-wide context (users, teams, policies, on-calls) kept from the last complete crawl.

mod api;
mod config;
mod events;
mod map;

use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, Mutex};

use serde_json::Value;
use surveyor_model::{
    ConfigError, ConnectorError, Crawl, Crawled, Observation, ObservationSink, Outcome, Target,
};

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
    /// What the last complete crawl read account-wide; a refresh maps a service with it.
    context: Mutex<Option<Arc<Context>>>,
}

/// The account-wide lists a service's mapping looks things up in (its team's name, its
/// policy's rules, who is on call, users' names), as the last complete crawl read them.
#[derive(Debug, Default)]
struct Context {
    users: Vec<Value>,
    teams: Vec<Value>,
    members: BTreeMap<String, Vec<Value>>,
    policies: Vec<Value>,
    oncalls: Vec<Value>,
}

/// A service is read with its teams and escalation policy in full, in a crawl and alone.
const SERVICE_INCLUDES: &str = "include%5B%5D=teams&include%5B%5D=escalation_policies";

impl PagerDutyConnector {
    pub fn new(id: &str, config: PagerDutyConfig) -> Result<Self, ConfigError> {
        let settings = config.settings()?;
        Ok(Self {
            id: id.to_string(),
            api: Api::new(&settings)?,
            settings,
            context: Mutex::new(None),
        })
    }

    fn context(&self) -> Option<Arc<Context>> {
        self.context
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// Whether every target is a service of this account and a crawl has given the context
    /// to map it with.
    fn can_refresh(&self, targets: &[Target]) -> bool {
        self.context().is_some()
            && targets
                .iter()
                .all(|t| t.kind == events::SERVICE && t.scope == self.settings.subdomain)
    }

    /// Reads each named service alone (`GET /services/{id}` with the crawl's includes, and
    /// who is on call for its escalation policy now: two requests), mapped as a crawl maps it.
    async fn refresh_services(
        &self,
        targets: &[Target],
        sink: ObservationSink,
    ) -> Result<Outcome, ConnectorError> {
        let Some(context) = self.context().filter(|_| self.can_refresh(targets)) else {
            return Err(ConnectorError::Unsupported(
                "only services can be read alone, and only after a complete crawl".into(),
            ));
        };
        let scope = self.settings.subdomain.as_str();
        let mut outcome = Outcome::default();
        let ids: BTreeSet<&str> = targets.iter().map(|t| t.key.as_str()).collect();
        for id in ids {
            if !events::is_pagerduty_id(id) {
                outcome.failed(scope, format!("{id:?} is not a PagerDuty id"));
                continue;
            }
            let path = format!("/services/{id}");
            let service = match self.api.object(&path, "service", SERVICE_INCLUDES).await {
                Ok(s) => s,
                Err(e) if e.is_not_found() => {
                    outcome.confirm_gone(scope, id);
                    outcome.refreshed(scope);
                    continue;
                }
                Err(e) => {
                    outcome.failed(scope, format!("service {id}: {e}"));
                    continue;
                }
            };
            let mut oncalls = None;
            let policy = service["escalation_policy"]["id"].as_str();
            if let Some(policy) = policy.filter(|p| events::is_pagerduty_id(p)) {
                let filter = format!("&escalation_policy_ids%5B%5D={policy}");
                match self.api.list("/oncalls", "oncalls", &filter).await {
                    Ok(l) => oncalls = Some((policy, l.items)),
                    Err(e @ ListError::Denied { .. }) => {
                        outcome.failed(scope, format!("oncalls: {e}"));
                        continue;
                    }
                    Err(e) => {
                        // Mapped with who was on call at the last crawl; the next sweep
                        // reads it again.
                        outcome.partial(scope, format!("service {id}: oncalls: {e}"));
                    }
                }
            }
            let (users, teams, policies, oncalls, strangers) =
                context.with_service(&service, oncalls);
            if strangers {
                outcome.partial(
                    scope,
                    format!("service {id}: someone on call is newer than the last crawl"),
                );
            }
            let index = map::Index::new(
                &self.settings,
                users,
                &teams,
                &context.members,
                &policies,
                &oncalls,
            );
            if let Some((external_id, entity)) = index.component(&service) {
                sink.send(Observation::discovered(scope, external_id, entity))
                    .await?;
            }
            outcome.refreshed(scope);
        }
        Ok(outcome)
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
        let services = read!("/services", "services", &format!("&{SERVICE_INCLUDES}"));
        let oncalls = read!("/oncalls", "oncalls", "");
        let whole = problems.is_empty();

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
        if whole {
            // Only a whole read is context a service can be mapped with alone; after a
            // partial one the previous context stays.
            let context = Context {
                users,
                teams,
                members,
                policies,
                oncalls,
            };
            *self.context.lock().unwrap_or_else(|e| e.into_inner()) = Some(Arc::new(context));
        }
        Ok(())
    }
}

impl Context {
    /// The lists to map `service` with: the crawl's, with what the service's own read brought
    /// in place of what they knew (its teams and policy in full, who is on call for that
    /// policy now). Also whether someone on call is not among the crawl's users.
    fn with_service(
        &self,
        service: &Value,
        oncalls: Option<(&str, Vec<Value>)>,
    ) -> (&[Value], Vec<Value>, Vec<Value>, Vec<Value>, bool) {
        let id_of = |v: &Value| v["id"].as_str().map(str::to_string);
        let replace = |list: &[Value], fresh: Vec<Value>| -> Vec<Value> {
            let ids: BTreeSet<String> = fresh.iter().filter_map(id_of).collect();
            list.iter()
                .filter(|v| id_of(v).is_none_or(|i| !ids.contains(&i)))
                .cloned()
                .chain(fresh)
                .collect()
        };
        let included_teams: Vec<Value> = service["teams"]
            .as_array()
            .into_iter()
            .flatten()
            .filter(|t| t["type"] == "team" && t["name"].is_string())
            .cloned()
            .collect();
        let policy = &service["escalation_policy"];
        let included_policy: Vec<Value> = (policy["type"] == "escalation_policy")
            .then(|| policy.clone())
            .into_iter()
            .collect();
        let teams = replace(&self.teams, included_teams);
        let policies = replace(&self.policies, included_policy);
        let (oncalls, strangers) = match oncalls {
            Some((policy, fresh)) => {
                let known: BTreeSet<&str> =
                    self.users.iter().filter_map(|u| u["id"].as_str()).collect();
                let strangers = fresh
                    .iter()
                    .any(|o| o["user"]["id"].as_str().is_some_and(|u| !known.contains(u)));
                let others = self
                    .oncalls
                    .iter()
                    .filter(|o| o["escalation_policy"]["id"].as_str() != Some(policy))
                    .cloned();
                (others.chain(fresh).collect(), strangers)
            }
            None => (self.oncalls.clone(), false),
        };
        (&self.users, teams, policies, oncalls, strangers)
    }
}

surveyor_model::connector!(PagerDutyConnector(PagerDutyConfig):
    each |c| [&c.settings.subdomain] => crawl_account, metrics |c| c.api.http().connector_metrics(),
    receive |c, delivery| events::receive(&c.settings, delivery),
    listens |c| c.settings.webhook_secret.is_some(),
    refresh |c, targets, sink| c.refresh_services(targets, sink),
    refreshes |c, targets| c.can_refresh(targets));

#[cfg(test)]
mod tests;
