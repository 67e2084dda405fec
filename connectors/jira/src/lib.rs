//! The `jira` connector: a Jira site's projects as Systems, their categories as Domains and
//! their components as Components, owned by the project and component leads.
//!
//! One scope, the site (the host of `url`). Jira Cloud is read through REST v3 (`PageBean`
//! pages of projects and of each project's components), Data Center and Server through REST v2
//! (bare arrays), so a site costs one project list plus one component list per project. External
//! ids are Jira ids, so a project whose key changes is renamed, not replaced. Refused
//! credentials (401/403) or a project list that cannot be read fail the site, any other failed
//! list leaves it partial; either way what was read is written and nothing is deleted.
//!
//! With `webhook_secret` set, Jira's webhooks name projects that changed ([`events`]); a
//! refresh reads just those projects again with their components (two requests each), mapped
//! as a crawl maps them.

mod api;
mod config;
mod events;
mod map;

use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, Mutex};

use surveyor_model::{
    ConfigError, ConnectorError, Crawl, Crawled, Observation, ObservationSink, Outcome, SinkClosed,
    Target,
};
use tokio::sync::Semaphore;
use tokio::task::JoinSet;

pub use api::{ApiError, Category, Component, JiraUser, Page, Project};
pub use config::{Flavor, JiraConfig, SystemNames};
pub use map::{COMPONENT, PROJECT_KEY, entity_name};

use crate::api::{Api, Listed};
use crate::config::Settings;

/// The connector's kind name in `surveyor.toml`.
pub const KIND: &str = "jira";

pub struct JiraConnector {
    id: String,
    settings: Arc<Settings>,
    api: Api,
    /// What the last whole crawl (and the refreshes since) saw of each project, to tell what a
    /// refresh no longer finds.
    known: Mutex<Option<Known>>,
}

/// Per project, what was last seen of it.
#[derive(Debug, Default)]
struct Known {
    /// Project key -> id (an event may name a project by key).
    ids: BTreeMap<String, String>,
    /// Project id -> the external ids of its components.
    components: BTreeMap<String, BTreeSet<String>>,
}

/// What the last crawls cost, for `sync` output and benchmarks.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CrawlStats {
    /// Every attempt, retries included.
    pub requests: u64,
    pub retries: u64,
    /// Waits for a rate limit, ours or Jira's (`429` with `Retry-After`).
    pub rate_limit_waits: u64,
    pub bytes: u64,
}

impl JiraConnector {
    pub fn new(id: &str, config: JiraConfig) -> Result<Self, ConfigError> {
        let settings = Arc::new(config.settings()?);
        let api = Api::new(Arc::clone(&settings)).map_err(|e| {
            let key = match settings.flavor {
                Flavor::Cloud => "api_token",
                Flavor::Datacenter => "token",
            };
            ConfigError::new(key, e.to_string())
        })?;
        Ok(Self {
            id: id.to_string(),
            settings,
            api,
            known: Mutex::new(None),
        })
    }

    fn known(&self) -> std::sync::MutexGuard<'_, Option<Known>> {
        self.known.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Whether every target is a project of this site and a whole crawl has been seen.
    fn can_refresh(&self, targets: &[Target]) -> bool {
        self.known().is_some()
            && targets
                .iter()
                .all(|t| t.kind == events::PROJECT && t.scope == self.settings.site)
    }

    /// Reads each named project alone with its components (two requests), mapped as a crawl
    /// maps them; a project Jira no longer has (404), has archived or this connector no longer
    /// reads is gone with the components last seen in it, and so is a component it no longer
    /// lists.
    async fn refresh_projects(
        &self,
        targets: &[Target],
        sink: ObservationSink,
    ) -> Result<Outcome, ConnectorError> {
        if !self.can_refresh(targets) {
            return Err(ConnectorError::Unsupported(
                "only projects can be read alone, and only after a whole crawl".into(),
            ));
        }
        let scope = self.settings.site.as_str();
        let mut outcome = Outcome::default();
        let keys: BTreeSet<&str> = targets.iter().map(|t| t.key.as_str()).collect();
        for key in keys {
            if !events::is_id_or_key(key) {
                outcome.failed(scope, format!("{key:?} is not a Jira project id or key"));
                continue;
            }
            let (project, archived) = match self.api.project(key).await {
                Ok(p) => p,
                Err(e) if e.is_not_found() => {
                    self.gone(key, &mut outcome);
                    continue;
                }
                Err(e) => {
                    outcome.failed(scope, format!("project {key}: {e}"));
                    continue;
                }
            };
            if archived || !self.settings.keeps_project(&project.key) {
                // A crawl leaves it out: its System and Components go.
                self.gone(&project.id, &mut outcome);
                continue;
            }
            let components = match self.api.all_components(&project.id).await {
                Ok(c) => Some(c),
                Err(e) if e.is_denied() => {
                    outcome.failed(scope, format!("components of {}: {e}", project.key));
                    continue;
                }
                Err(e) => {
                    outcome.partial(scope, format!("components of {}: {e}", project.key));
                    None
                }
            };
            let read = components.as_deref().unwrap_or_default();
            self.send_projects(scope, &[(&project, read)], &sink)
                .await?;
            if let Some(components) = components {
                let now: BTreeSet<String> = components.iter().map(map::component_id).collect();
                let mut known = self.known();
                if let Some(known) = known.as_mut() {
                    let before = known
                        .components
                        .insert(project.id.clone(), now.clone())
                        .unwrap_or_default();
                    for gone in before.difference(&now) {
                        outcome.confirm_gone(scope, gone.clone());
                    }
                    known.ids.insert(project.key.clone(), project.id.clone());
                }
            }
            outcome.refreshed(scope);
        }
        Ok(outcome)
    }

    /// Jira says the project named `key` (an id or a key) is gone: it and the components last
    /// seen in it are.
    fn gone(&self, key: &str, outcome: &mut Outcome) {
        let scope = self.settings.site.as_str();
        let mut known = self.known();
        if let Some(known) = known.as_mut() {
            let id = known
                .ids
                .get(key)
                .cloned()
                .unwrap_or_else(|| key.to_string());
            if id.bytes().all(|b| b.is_ascii_digit()) {
                outcome.confirm_gone(scope, format!("project:{id}"));
            }
            for c in known.components.remove(&id).unwrap_or_default() {
                outcome.confirm_gone(scope, c);
            }
            known.ids.retain(|_, v| *v != id);
        }
        outcome.refreshed(scope);
    }

    pub fn stats(&self) -> CrawlStats {
        let m = self.api.http().metrics().snapshot();
        CrawlStats {
            requests: m.requests,
            retries: m.retries,
            rate_limit_waits: m.rate_limit_waits,
            bytes: m.bytes,
        }
    }

    /// The site: one scope.
    async fn crawl_site(&self, scope: &str, Crawl { sink, outcome }: Crawl<'_>) -> Crawled {
        let Listed {
            items: projects,
            error,
        } = self.api.projects().await;
        let error_free = error.is_none();
        if let Some(e) = error {
            let hint = if e.is_not_found() {
                " (is `flavor` right? Cloud serves /rest/api/3, Data Center /rest/api/2)"
            } else {
                ""
            };
            let reason = format!("listing projects after {} read: {e}{hint}", projects.len());
            // What was read is still true and is written; only an incomplete list that got
            // somewhere is partial rather than failed.
            if projects.is_empty() || e.is_denied() {
                outcome.failed(scope, reason);
            } else {
                outcome.partial(scope, reason);
            }
        }
        let projects: Vec<Project> = projects
            .into_iter()
            .filter(|p| self.settings.keeps_project(&p.key))
            .collect();

        let listed = self.components(&projects).await;
        let mut seen = Known::default();
        let mut whole = error_free;
        for (p, listed) in projects.iter().zip(&listed) {
            seen.ids.insert(p.key.clone(), p.id.clone());
            seen.components.insert(
                p.id.clone(),
                listed.items.iter().map(map::component_id).collect(),
            );
            whole &= listed.error.is_none();
            match &listed.error {
                // Credentials that stopped working mid-crawl: nothing seen is the whole.
                Some(e) if e.is_denied() => {
                    outcome.failed(scope, format!("components of {}: {e}", p.key));
                }
                Some(e) => outcome.partial(scope, format!("components of {}: {e}", p.key)),
                None => {}
            }
        }
        let read: Vec<(&Project, &[Component])> = projects
            .iter()
            .zip(&listed)
            .map(|(p, l)| (p, l.items.as_slice()))
            .collect();
        self.send_projects(scope, &read, sink).await?;
        let components: usize = listed.iter().map(|l| l.items.len()).sum();
        tracing::debug!(site = %scope, projects = projects.len(), components, "jira site read");
        outcome.complete(scope);
        if whole {
            *self.known() = Some(seen);
        }
        Ok(())
    }

    /// Sends what `projects` map to, each with the components read of it, as a crawl and a
    /// refresh both do: their categories as Domains (each once), their Systems, their
    /// Components, then every lead once, as a User, after what they lead.
    async fn send_projects(
        &self,
        scope: &str,
        projects: &[(&Project, &[Component])],
        sink: &ObservationSink,
    ) -> Result<(), SinkClosed> {
        if self.settings.categories_as_domains {
            let mut seen = BTreeSet::new();
            for c in projects
                .iter()
                .filter_map(|(p, _)| p.project_category.as_ref())
            {
                if seen.insert(c.id.clone()) {
                    let e = map::domain(&self.settings, c);
                    sink.send(Observation::discovered(scope, map::category_id(c), e))
                        .await?;
                }
            }
        }
        for (p, _) in projects {
            let e = map::system(&self.settings, p);
            sink.send(Observation::discovered(scope, map::project_id(p), e))
                .await?;
        }
        let mut people: BTreeMap<String, JiraUser> = BTreeMap::new();
        let mut lead = |u: &Option<JiraUser>| {
            if let Some(u) = u
                && let Some(id) = map::person_id(u)
            {
                people.entry(id).or_insert_with(|| u.clone());
            }
        };
        for (p, _) in projects {
            lead(&p.lead);
        }
        for (p, components) in projects {
            for c in *components {
                lead(&c.lead);
                let e = map::component(&self.settings, p, c);
                sink.send(Observation::discovered(scope, map::component_id(c), e))
                    .await?;
            }
        }
        for u in people.values() {
            if let Some((id, e)) = map::person(&self.settings, u) {
                sink.send(Observation::discovered(scope, id, e)).await?;
            }
        }
        Ok(())
    }

    /// Each project's components, in project order, `concurrency` projects at a time.
    async fn components(&self, projects: &[Project]) -> Vec<Listed<Component>> {
        let permits = Arc::new(Semaphore::new(self.settings.concurrency));
        let mut tasks = JoinSet::new();
        for (i, p) in projects.iter().enumerate() {
            let api = self.api.clone();
            let permits = Arc::clone(&permits);
            let project_id = p.id.clone();
            tasks.spawn(async move {
                // The semaphore is never closed, so acquiring only waits.
                let _permit = permits.acquire_owned().await;
                (i, api.components(&project_id).await)
            });
        }
        let mut results: Vec<Option<Listed<Component>>> = projects.iter().map(|_| None).collect();
        while let Some(joined) = tasks.join_next().await {
            match joined {
                Ok((i, listed)) => {
                    if let Some(slot) = results.get_mut(i) {
                        *slot = Some(listed);
                    }
                }
                Err(e) => tracing::warn!(error = %e, "a component list task ended abnormally"),
            }
        }
        results
            .into_iter()
            .zip(projects)
            .map(|(listed, p)| {
                // A task that panicked or was cancelled left its slot empty.
                listed.unwrap_or_else(|| Listed {
                    items: Vec::new(),
                    error: Some(ApiError::Aborted {
                        project: p.key.clone(),
                    }),
                })
            })
            .collect()
    }
}

surveyor_model::connector!(JiraConnector(JiraConfig):
    each |c| [&c.settings.site] => crawl_site, metrics |c| c.api.http().connector_metrics(),
    receive |c, delivery| events::receive(&c.settings, delivery),
    listens |c| c.settings.webhook_secret.is_some(),
    refresh |c, targets, sink| c.refresh_projects(targets, sink),
    refreshes |c, targets| c.can_refresh(targets));

#[cfg(test)]
mod tests;
