//! One simulated org served by every vendor fake in this process (GitHub, GitLab, Kubernetes,
//! PagerDuty, Jira), and the real connectors configured against them.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use surveyor_connector_github::{GithubConfig, GithubConnector};
use surveyor_connector_gitlab::{GitlabConfig, GitlabConnector};
use surveyor_connector_jira::{JiraConfig, JiraConnector};
use surveyor_connector_kubernetes::{KubernetesConfig, KubernetesConnector};
use surveyor_connector_pagerduty::{PagerDutyConfig, PagerDutyConnector};
use surveyor_engine::ReconcileOptions;
use surveyor_model::Connector;
use surveyor_sim::gitlab::every_other;
use surveyor_sim::jira::{JIRA_API_TOKEN, JIRA_EMAIL};
use surveyor_sim::{
    Account, Cluster, FAKE_TOKEN, GITLAB_TOKEN, GithubFake, GitlabFake, JiraFake, JiraFlavor,
    KubeFake, Org, OrgSpec, PD_TOKEN, PagerDutyFake,
};
use surveyor_store::Store;

use crate::db::{self, Backend};
use crate::machine::threads_cpu_seconds;
use crate::report::Outcome;

/// The connector ids, in the order a sync runs them (and their merge priority).
pub const CONNECTORS: [&str; 5] = ["github", "gitlab", "k8s", "pagerduty", "jira"];

#[derive(Clone, Copy, PartialEq, Eq, Debug, clap::ValueEnum, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Size {
    Small,
    Medium,
    Large,
}

impl Size {
    pub fn spec(self) -> OrgSpec {
        match self {
            Self::Small => OrgSpec::small(),
            Self::Medium => OrgSpec::medium(),
            Self::Large => OrgSpec::large(),
        }
    }

    /// The org of this size, with `repos` repositories instead of the size's own when given.
    pub fn org(self, repos: Option<usize>) -> (OrgSpec, Org) {
        let mut spec = self.spec();
        if let Some(r) = repos {
            spec.repos = r;
        }
        let org = Org::generate(&spec);
        (spec, org)
    }
}

/// The name of the threads the fakes' servers run on (see [`Fakes::start`]): the CPU they use
/// is the fakes' own, which [`crate::machine::threads_cpu_seconds`] counts.
pub const FAKES_THREAD: &str = "sim-fakes";

pub struct Fakes {
    pub org: Org,
    pub github: GithubFake,
    pub gitlab: GitlabFake,
    pub kube: KubeFake,
    pub pagerduty: PagerDutyFake,
    pub jira: JiraFake,
    /// Where the servers run; declared last, so it stops after every fake has stopped its own.
    _runtime: FakesRuntime,
}

/// A runtime of its own for the fakes, whose worker threads are named [`FAKES_THREAD`]: what
/// the fakes cost is measured apart from the connectors, engine and database beside them.
struct FakesRuntime(Option<tokio::runtime::Runtime>);

impl Drop for FakesRuntime {
    fn drop(&mut self) {
        // Dropped inside the benchmark's own runtime, it may not wait for its threads.
        if let Some(runtime) = self.0.take() {
            runtime.shutdown_background();
        }
    }
}

/// Requests a fake answered for one connector, and how many of them were 304s where the fake
/// counts them (GitHub and GitLab; the others have no conditional requests).
#[derive(Debug, Clone, Copy, Default, serde::Serialize)]
pub struct Requests {
    pub requests: u64,
    /// REST requests to GitHub and GitLab: the ones that can be conditional (ETags).
    pub conditional: u64,
    pub not_modified: u64,
}

impl Fakes {
    /// Starts every fake on loopback, served by a runtime of their own (two threads named
    /// [`FAKES_THREAD`]) that lives as long as they do. GitHub serves every repository; GitLab
    /// every other one (a company on both, whose repositories the catalog merges by name).
    pub async fn start(org: Org) -> anyhow::Result<Self> {
        let runtime = FakesRuntime(Some(
            tokio::runtime::Builder::new_multi_thread()
                .worker_threads(2)
                .thread_name(FAKES_THREAD)
                .enable_all()
                .build()
                .context("the fakes' runtime")?,
        ));
        let handle = match &runtime.0 {
            Some(r) => r.handle().clone(),
            None => anyhow::bail!("the fakes' runtime is gone"),
        };
        let org_for_fakes = org.clone();
        // Started there, each server's task runs there.
        let (github, gitlab, kube, pagerduty, jira) = handle
            .spawn(async move {
                let org = org_for_fakes;
                let gitlab = GitlabFake::start_with(org.clone(), every_other).await?;
                // The fake enforces GitLab.com's 2,000 requests a minute; the connectors' own
                // limiter is what the benchmarks set, so the fake's quota is out of the way.
                gitlab.set_rate_limit(u64::MAX / 2, Duration::from_secs(60));
                anyhow::Ok((
                    GithubFake::start(vec![org.clone()]).await?,
                    gitlab,
                    KubeFake::start(Cluster::from_org(&org, "prod")).await?,
                    PagerDutyFake::start(Account::from_org(&org)).await?,
                    JiraFake::start(&org, JiraFlavor::Cloud).await?,
                ))
            })
            .await
            .context("starting the fakes")??;
        Ok(Self {
            github,
            gitlab,
            kube,
            pagerduty,
            jira,
            org,
            _runtime: runtime,
        })
    }

    /// CPU time the fakes' threads have used so far, in seconds (take differences).
    pub fn cpu_seconds(&self) -> f64 {
        threads_cpu_seconds(FAKES_THREAD)
    }

    /// Adds `latency` to every answer of the fakes that can (GitHub, GitLab).
    pub fn set_latency(&self, latency: Duration) {
        self.github.set_latency(latency);
        self.gitlab.set_latency(latency);
    }

    /// The real connectors against the fakes, each limited to `rps` requests a second.
    /// `dir` holds the kubeconfig and the connectors' caches.
    pub fn connectors(&self, dir: &Path, rps: u32) -> anyhow::Result<Vec<Arc<dyn Connector>>> {
        self.connectors_with(dir, rps, None)
    }

    /// [`Fakes::connectors`], with events on where `webhook_secret` is given: each webhook
    /// receiver checks that secret, and Kubernetes watches.
    pub fn connectors_with(
        &self,
        dir: &Path,
        rps: u32,
        webhook_secret: Option<&str>,
    ) -> anyhow::Result<Vec<Arc<dyn Connector>>> {
        let org = &self.org.name;
        let hooks = webhook_secret
            .map(|s| format!("\nwebhook_secret = \"{s}\""))
            .unwrap_or_default();
        let gh: GithubConfig = toml::from_str(&format!(
            "orgs = [\"{org}\"]\ntoken = \"{FAKE_TOKEN}\"\napi_url = \"{}\"\nrequests_per_second = {rps}{hooks}",
            self.github.url()
        ))
        .context("github config")?;
        let gl: GitlabConfig = toml::from_str(&format!(
            "groups = [\"{org}\"]\ntoken = \"{GITLAB_TOKEN}\"\nurl = \"{}\"\nrequests_per_second = {rps}{hooks}",
            self.gitlab.url()
        ))
        .context("gitlab config")?;
        std::fs::write(
            dir.join("kubeconfig"),
            KubeFake::kubeconfig(&[("prod", self.kube.url())]),
        )?;
        let watch = if webhook_secret.is_some() {
            "\nwatch = true"
        } else {
            ""
        };
        let k8s: KubernetesConfig = toml::from_str(&format!(
            "contexts = [\"prod\"]\nkubeconfig = \"kubeconfig\"{watch}"
        ))
        .context("kubernetes config")?;
        let pd: PagerDutyConfig = toml::from_str(&format!(
            "subdomain = \"{org}\"\ntoken = \"{PD_TOKEN}\"\napi_url = \"{}\"\nrequests_per_second = {rps}{hooks}",
            self.pagerduty.url()
        ))
        .context("pagerduty config")?;
        let jira: JiraConfig = toml::from_str(&format!(
            "url = \"{}\"\nemail = \"{JIRA_EMAIL}\"\napi_token = \"{JIRA_API_TOKEN}\"\nrequests_per_second = {rps}{hooks}",
            self.jira.url()
        ))
        .context("jira config")?;
        Ok(vec![
            Arc::new(GithubConnector::new("github", gh, dir)?),
            Arc::new(GitlabConnector::new("gitlab", gl, dir)?),
            Arc::new(KubernetesConnector::new("k8s", k8s, dir)?),
            Arc::new(PagerDutyConnector::new("pagerduty", pd)?),
            Arc::new(JiraConnector::new("jira", jira)?),
        ])
    }

    /// Requests answered so far for connector `id` (counters only grow; take differences).
    pub fn requests(&self, id: &str) -> Requests {
        match id {
            "github" => {
                let s = self.github.stats();
                Requests {
                    requests: s.requests,
                    conditional: s.rest,
                    not_modified: s.rest_not_modified,
                }
            }
            "gitlab" => {
                let s = self.gitlab.stats();
                Requests {
                    requests: s.requests,
                    conditional: s.rest,
                    not_modified: s.not_modified,
                }
            }
            "k8s" => Requests {
                requests: self.kube.stats().requests,
                ..Requests::default()
            },
            "pagerduty" => Requests {
                requests: self.pagerduty.stats().requests,
                ..Requests::default()
            },
            "jira" => Requests {
                requests: self.jira.stats().requests,
                ..Requests::default()
            },
            _ => Requests::default(),
        }
    }
}

/// Runs `scenario` on each backend (SQLite unless `no_sqlite`, Postgres when `postgres` is
/// set), each time against fresh fakes serving `org` (with `latency` added to their answers
/// when given), a fresh catalog and a scratch directory for the connectors' files, which are
/// removed after; prints each backend's figures as they come. The report lists them under
/// `backends`.
pub async fn on_each_backend<F: serde::Serialize>(
    parameters: &impl serde::Serialize,
    no_sqlite: bool,
    postgres: &Option<String>,
    org: &Org,
    latency: Option<Duration>,
    scenario: impl AsyncFn(&Fakes, Backend, &Store, &Path) -> anyhow::Result<F>,
    print: impl Fn(&F),
) -> anyhow::Result<Outcome> {
    let mut results = Vec::new();
    for backend in db::backends(no_sqlite, postgres) {
        let fakes = Fakes::start(org.clone()).await?;
        if let Some(latency) = latency {
            fakes.set_latency(latency);
        }
        let (store, cleanup) = db::open_fresh(backend, postgres.as_deref()).await?;
        let dir = db::tempfile_dir()?;
        let r = scenario(&fakes, backend, &store, &dir).await?;
        store.close().await;
        cleanup.run().await;
        let _ = std::fs::remove_dir_all(&dir);
        drop(fakes);
        print(&r);
        results.push(r);
    }
    Outcome::new(parameters, serde_json::json!({ "backends": results }))
}

impl Requests {
    pub fn since(self, before: Requests) -> Requests {
        Requests {
            requests: self.requests.saturating_sub(before.requests),
            conditional: self.conditional.saturating_sub(before.conditional),
            not_modified: self.not_modified.saturating_sub(before.not_modified),
        }
    }
}

/// The defaults, with merge priority in connector order, as a configuration listing the
/// connectors would give.
pub fn reconcile_options() -> ReconcileOptions {
    ReconcileOptions {
        source_priority: CONNECTORS
            .iter()
            .enumerate()
            .map(|(i, s)| (s.to_string(), i))
            .collect(),
        ..ReconcileOptions::default()
    }
}
