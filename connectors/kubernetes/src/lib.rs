//! The `kubernetes` connector: what runs in each cluster — Deployments, StatefulSets, DaemonSets,
//! CronJobs, Services (and Ingresses) as Resources tied to their Components and owners.
//!
//! Scopes are `cluster/namespace`; the cluster's own scope (`cluster`) holds its Namespaces. Each
//! resource kind is listed once across the cluster (`limit` + `continue`), falling back to one
//! list per namespace when the credentials may not list cluster-wide; a namespace that cannot
//! be listed (403) is partial, an unreachable cluster fails, and neither deletes anything.

mod config;
mod map;
mod objects;

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::time::Duration;

use k8s_openapi::api::apps::v1::{DaemonSet, Deployment, StatefulSet};
use k8s_openapi::api::batch::v1::CronJob;
use k8s_openapi::api::core::v1::{Namespace, Service};
use k8s_openapi::api::networking::v1::Ingress;
use kube::api::{Api, ListParams};
use kube::config::{KubeConfigOptions, Kubeconfig};
use surveyor_model::{Connector, ConnectorError, Observation, ObservationSink, Outcome};

pub use config::{KEYS, KubernetesConfig, KubernetesConfigError, SYSTEM_NAMESPACES};
pub use map::Object;

/// The mapping's view of a Deployment (for checking the parser against saved responses).
pub fn read_deployment(d: &Deployment) -> Object {
    d.to_object()
}

use crate::config::{Settings, Source};
use crate::objects::ToObject;

/// The connector's kind name in `surveyor.toml`.
pub const KIND: &str = "kubernetes";

pub struct KubernetesConnector {
    id: String,
    settings: Settings,
    /// Parsed once: a broken kubeconfig is a config error, not a crawl failure.
    kubeconfig: Option<Kubeconfig>,
}

impl KubernetesConnector {
    pub fn new(
        id: &str,
        config: KubernetesConfig,
        base_dir: &Path,
    ) -> Result<Self, KubernetesConfigError> {
        let settings = config.settings(base_dir)?;
        let kubeconfig = match &settings.source {
            Source::Kubeconfig { path, contexts } => {
                // The error says which file and why, never what is in it.
                let kc =
                    Kubeconfig::read_from(path).map_err(|e| KubernetesConfigError::Invalid {
                        key: "kubeconfig",
                        message: format!(
                            "cannot read {}: {}",
                            path.display(),
                            first_line(&e.to_string())
                        ),
                    })?;
                let known: BTreeSet<&str> = kc.contexts.iter().map(|c| c.name.as_str()).collect();
                if let Some(missing) = contexts.iter().find(|c| !known.contains(c.as_str())) {
                    return Err(KubernetesConfigError::Invalid {
                        key: "contexts",
                        message: format!(
                            "{} has no context {missing:?} (it has: {})",
                            path.display(),
                            known.into_iter().collect::<Vec<_>>().join(", ")
                        ),
                    });
                }
                Some(kc)
            }
            Source::InCluster { .. } => None,
        };
        Ok(Self {
            id: id.to_string(),
            settings,
            kubeconfig,
        })
    }

    async fn client(&self, context: &str) -> Result<kube::Client, String> {
        let mut config = match (&self.settings.source, &self.kubeconfig) {
            (Source::Kubeconfig { .. }, Some(kc)) => {
                let options = KubeConfigOptions {
                    context: Some(context.to_string()),
                    ..KubeConfigOptions::default()
                };
                kube::Config::from_custom_kubeconfig(kc.clone(), &options)
                    .await
                    .map_err(|e| first_line(&e.to_string()))?
            }
            _ => kube::Config::incluster().map_err(|e| first_line(&e.to_string()))?,
        };
        config.connect_timeout = Some(self.settings.timeout);
        config.read_timeout = Some(self.settings.timeout);
        // kube's own retries (15, backing off towards 1000 s, honouring any Retry-After) would
        // stall a crawl for minutes on a throttled or failing API server; `list_page` retries
        // within `max_retries` instead.
        config.default_retry = false;
        kube::Client::try_from(config).map_err(|e| first_line(&e.to_string()))
    }

    fn clusters(&self) -> Vec<String> {
        match &self.settings.source {
            Source::Kubeconfig { contexts, .. } => contexts.clone(),
            Source::InCluster { name } => vec![name.clone()],
        }
    }

    async fn crawl_cluster(
        &self,
        cluster: &str,
        sink: &ObservationSink,
        outcome: &mut Outcome,
    ) -> Result<(), ConnectorError> {
        let client = match self.client(cluster).await {
            Ok(c) => c,
            Err(e) => {
                outcome.failed(cluster, format!("cannot connect: {e}"));
                return Ok(());
            }
        };
        let namespaces: Vec<Object> = match list_all(
            Api::<Namespace>::all(client.clone()),
            self.settings.page_size,
            self.settings.max_retries,
        )
        .await
        {
            Ok(items) => items.iter().map(objects::namespace_object).collect(),
            Err(e) => {
                outcome.failed(cluster, format!("listing namespaces: {e}"));
                return Ok(());
            }
        };
        let kept: BTreeMap<String, Object> = namespaces
            .into_iter()
            .filter(|n| self.settings.keeps_namespace(&n.name))
            .map(|n| (n.name.clone(), n))
            .collect();

        // Each kind, across the cluster; per namespace where that is not allowed.
        let mut by_namespace: BTreeMap<String, Vec<Object>> = BTreeMap::new();
        let mut failed: BTreeMap<String, String> = BTreeMap::new();
        macro_rules! gather {
            ($ty:ty) => {
                self.gather::<$ty>(&client, &kept, &mut by_namespace, &mut failed)
                    .await
            };
        }
        let mut cluster_error = None;
        for result in [
            gather!(Deployment),
            gather!(StatefulSet),
            gather!(DaemonSet),
            gather!(CronJob),
            gather!(Service),
        ] {
            cluster_error = cluster_error.or(result.err());
        }
        if self.settings.ingresses {
            cluster_error = cluster_error.or(gather!(Ingress).err());
        }
        if let Some(e) = cluster_error {
            // The cluster went away mid-crawl: nothing in it can delete.
            outcome.failed(cluster, e);
            return Ok(());
        }

        if self.settings.namespace_as_system {
            for ns in kept.values() {
                if let Some(system) = map::system(ns, cluster, &self.settings) {
                    sink.send(Observation::discovered(cluster, &ns.uid, system))
                        .await?;
                }
            }
        }
        outcome.complete(cluster);
        for (ns_name, ns) in &kept {
            let scope = format!("{cluster}/{ns_name}");
            for o in by_namespace.get(ns_name).into_iter().flatten() {
                if let Some(e) = map::resource(o, Some(ns), cluster, &self.settings) {
                    sink.send(Observation::discovered(&scope, &o.uid, e))
                        .await?;
                }
            }
            match failed.get(ns_name) {
                Some(reason) => outcome.partial(&scope, reason.clone()),
                None => outcome.complete(&scope),
            }
        }
        // Every namespace of this cluster that exists and is kept was reported: a stored scope
        // under `cluster/` that was not is a namespace deleted (or now excluded).
        outcome.enumerated(format!("{cluster}/"));
        Ok(())
    }

    /// Lists one kind across the cluster, or namespace by namespace when the cluster-wide list
    /// is forbidden. Namespaces that fail are recorded in `failed`; `Err` means the cluster
    /// itself did not answer.
    async fn gather<K: ToObject>(
        &self,
        client: &kube::Client,
        kept: &BTreeMap<String, Object>,
        by_namespace: &mut BTreeMap<String, Vec<Object>>,
        failed: &mut BTreeMap<String, String>,
    ) -> Result<(), String> {
        let (page, retries) = (self.settings.page_size, self.settings.max_retries);
        match list_all(Api::<K>::all(client.clone()), page, retries).await {
            Ok(items) => {
                for item in &items {
                    let o = item.to_object();
                    if kept.contains_key(&o.namespace) {
                        by_namespace.entry(o.namespace.clone()).or_default().push(o);
                    }
                }
                Ok(())
            }
            Err(ListError::Forbidden(_)) => {
                for ns in kept.keys() {
                    if failed.contains_key(ns) {
                        continue;
                    }
                    match list_all(Api::<K>::namespaced(client.clone(), ns), page, retries).await {
                        Ok(items) => by_namespace
                            .entry(ns.clone())
                            .or_default()
                            .extend(items.iter().map(ToObject::to_object)),
                        Err(ListError::Unreachable(e)) => return Err(e),
                        Err(e) => {
                            failed.insert(ns.clone(), format!("listing {}: {e}", K::PLURAL));
                        }
                    }
                }
                Ok(())
            }
            Err(e) => Err(format!("listing {}: {e}", K::PLURAL)),
        }
    }
}

/// Why a list failed.
#[derive(Debug, thiserror::Error)]
enum ListError {
    #[error("forbidden: {0}")]
    Forbidden(String),
    /// The API server answered with another error: this list failed, the cluster is up.
    #[error("{0}")]
    Api(String),
    /// No answer from the API server (refused, timed out, TLS): the cluster is unreachable.
    #[error("{0}")]
    Unreachable(String),
}

async fn list_all<K>(api: Api<K>, limit: u32, retries: u32) -> Result<Vec<K>, ListError>
where
    K: kube::Resource<DynamicType = ()> + Clone + std::fmt::Debug + serde::de::DeserializeOwned,
{
    let mut restarted = false;
    'list: loop {
        let mut items = Vec::new();
        let mut token: Option<String> = None;
        loop {
            let mut params = ListParams::default().limit(limit);
            if let Some(t) = &token {
                params = params.continue_token(t);
            }
            match list_page(&api, &params, retries).await {
                Ok(list) => {
                    items.extend(list.items);
                    match list.metadata.continue_.filter(|c| !c.is_empty()) {
                        Some(next) => token = Some(next),
                        // Items said to remain with no token to reach them: a cut list, whose
                        // missing tail must not read as deleted.
                        None => match list.metadata.remaining_item_count.filter(|n| *n > 0) {
                            Some(left) => {
                                return Err(ListError::Api(format!(
                                    "the list ended with {left} items remaining and no continue token"
                                )));
                            }
                            None => return Ok(items),
                        },
                    }
                }
                Err(kube::Error::Api(status)) if status.code == 410 && !restarted => {
                    tracing::info!(
                        kind = %K::plural(&()),
                        "continue token expired; listing again from the start"
                    );
                    restarted = true;
                    continue 'list;
                }
                Err(kube::Error::Api(status)) if status.code == 403 => {
                    return Err(ListError::Forbidden(status.message.clone()));
                }
                Err(kube::Error::Api(status)) => {
                    return Err(ListError::Api(format!(
                        "HTTP {} {}: {}",
                        status.code, status.reason, status.message
                    )));
                }
                Err(e) => return Err(ListError::Unreachable(error_chain(&e))),
            }
        }
    }
}

/// The longest wait between two attempts at a page, the server's `retryAfterSeconds` included;
/// a server that asks for longer gets the failure reported instead.
const MAX_RETRY_WAIT: Duration = Duration::from_secs(60);

/// One page, tried again after failures that may pass (429, 5xx, no answer) at most `retries`
/// more times, waiting what a 429 asks (`retryAfterSeconds`) or 0.5 s doubling to 8 s.
async fn list_page<K>(
    api: &Api<K>,
    params: &ListParams,
    retries: u32,
) -> Result<kube::core::ObjectList<K>, kube::Error>
where
    K: kube::Resource<DynamicType = ()> + Clone + std::fmt::Debug + serde::de::DeserializeOwned,
{
    let mut attempt = 0;
    loop {
        match api.list(params).await {
            Err(e) if attempt < retries && is_transient(&e) => {
                let asked = match &e {
                    kube::Error::Api(s) => s
                        .details
                        .as_ref()
                        .map(|d| Duration::from_secs(u64::from(d.retry_after_seconds)))
                        .filter(|w| !w.is_zero()),
                    _ => None,
                };
                let wait = asked.unwrap_or(Duration::from_millis(500 << attempt.min(4)));
                if wait > MAX_RETRY_WAIT {
                    return Err(e);
                }
                attempt += 1;
                tracing::debug!(kind = %K::plural(&()), error = %first_line(&e.to_string()), wait_ms = wait.as_millis() as u64, "retrying a list page");
                tokio::time::sleep(wait).await;
            }
            other => return other,
        }
    }
}

/// Failures another attempt may not meet: throttling, server errors, no answer at all.
fn is_transient(e: &kube::Error) -> bool {
    match e {
        kube::Error::Api(s) => matches!(s.code, 429 | 500 | 502 | 503 | 504),
        kube::Error::HyperError(_) | kube::Error::Service(_) => true,
        _ => false,
    }
}

/// An error and its causes in one line (`ServiceError: client error: operation timed out`):
/// the top of kube's errors alone often hides what happened.
fn error_chain(e: &dyn std::error::Error) -> String {
    let mut parts = vec![first_line(&e.to_string())];
    let mut cause = e.source();
    while let Some(c) = cause {
        let line = first_line(&c.to_string());
        if parts.last().is_none_or(|last| !last.contains(&line)) {
            parts.push(line);
        }
        cause = c.source();
    }
    parts.join(": ")
}

fn first_line(s: &str) -> String {
    s.lines().next().unwrap_or_default().to_string()
}

#[async_trait::async_trait]
impl Connector for KubernetesConnector {
    fn id(&self) -> &str {
        &self.id
    }

    fn kind(&self) -> &'static str {
        KIND
    }

    async fn crawl(&self, sink: ObservationSink) -> Result<Outcome, ConnectorError> {
        let mut outcome = Outcome::default();
        for cluster in self.clusters() {
            self.crawl_cluster(&cluster, &sink, &mut outcome).await?;
        }
        Ok(outcome)
    }
}

#[cfg(test)]
mod tests;
