//! The `jira` connector: a Jira site's projects as Systems, their categories as Domains and
//! their components as Components, owned by the project and component leads.
//!
//! One scope, the site (the host of `url`). Jira Cloud is read through REST v3 (`PageBean`
//! pages of projects and of each project's components), Data Center and Server through REST v2
//! (bare arrays), so a site costs one project list plus one component list per project. External
//! ids are Jira ids, so a project whose key changes is renamed, not replaced. Refused
//! credentials (401/403) or a project list that cannot be read fail the site, any other failed
//! list leaves it partial; either way what was read is written and nothing is deleted.

mod api;
mod config;
mod map;

use std::collections::BTreeSet;
use std::sync::Arc;

use surveyor_model::{ConfigError, Crawl, Crawled, Observation};
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
        })
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

        if self.settings.categories_as_domains {
            let mut seen = BTreeSet::new();
            for c in projects.iter().filter_map(|p| p.project_category.as_ref()) {
                if seen.insert(c.id.clone()) {
                    let e = map::domain(&self.settings, c);
                    sink.send(Observation::discovered(scope, map::category_id(c), e))
                        .await?;
                }
            }
        }
        for p in &projects {
            let e = map::system(&self.settings, p);
            sink.send(Observation::discovered(scope, map::project_id(p), e))
                .await?;
        }

        // Every lead once, as a User, after what they lead.
        let mut people: std::collections::BTreeMap<String, JiraUser> = Default::default();
        let mut lead = |u: &Option<JiraUser>| {
            if let Some(u) = u
                && let Some(id) = map::person_id(u)
            {
                people.entry(id).or_insert_with(|| u.clone());
            }
        };
        for p in &projects {
            lead(&p.lead);
        }
        let mut components = 0;
        for (p, listed) in projects.iter().zip(self.components(&projects).await) {
            for c in &listed.items {
                lead(&c.lead);
                let e = map::component(&self.settings, p, c);
                sink.send(Observation::discovered(scope, map::component_id(c), e))
                    .await?;
            }
            components += listed.items.len();
            match listed.error {
                // Credentials that stopped working mid-crawl: nothing seen is the whole.
                Some(e) if e.is_denied() => {
                    outcome.failed(scope, format!("components of {}: {e}", p.key));
                }
                Some(e) => outcome.partial(scope, format!("components of {}: {e}", p.key)),
                None => {}
            }
        }
        for u in people.values() {
            if let Some((id, e)) = map::person(&self.settings, u) {
                sink.send(Observation::discovered(scope, id, e)).await?;
            }
        }
        tracing::debug!(site = %scope, projects = projects.len(), components, "jira site read");
        outcome.complete(scope);
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
    each |c| [&c.settings.site] => crawl_site, metrics |c| c.api.http().connector_metrics());

#[cfg(test)]
mod tests;
