//! The `kubernetes` connector: what runs in each cluster — Deployments, StatefulSets, DaemonSets,
//! CronJobs, Services (and Ingresses) as Resources tied to their Components and owners.
//!
//! Scopes are `cluster/namespace`; the cluster's own scope (`cluster`) holds its Namespaces. Each
//! resource kind is listed once across the cluster (`limit` + `continue`), falling back to one
//! list per namespace when the credentials may not list cluster-wide; a namespace that cannot
//! be listed (403) is partial, an unreachable cluster fails, and neither deletes anything.
//!
//! With `watch = true`, each cluster is watched while `surveyor serve` runs and what changed
//! is read again alone (see `events`); the scheduled crawl stays, as a sweep.

mod api;
mod config;
mod events;
mod map;

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

use k8s_openapi::api::apps::v1::{DaemonSet, Deployment, StatefulSet};
use k8s_openapi::api::batch::v1::CronJob;
use k8s_openapi::api::core::v1::Service;
use k8s_openapi::api::networking::v1::Ingress;
use kube::config::Kubeconfig;
use surveyor_model::{ConfigError, Crawl, Crawled, Observation};

pub use config::{KubernetesConfig, SYSTEM_NAMESPACES};
pub use map::Object;

/// The mapping's view of a Deployment (for checking the parser against saved responses).
pub fn read_deployment(d: &Deployment) -> Object {
    d.to_object()
}

use crate::api::{Cluster, first_line};
use crate::config::{Settings, Source};
use crate::map::ToObject;

/// The connector's kind name in `surveyor.toml`.
pub const KIND: &str = "kubernetes";

pub struct KubernetesConnector {
    id: String,
    settings: Settings,
    /// Parsed once: a broken kubeconfig is a config error, not a crawl failure.
    kubeconfig: Option<Kubeconfig>,
    /// What the last crawl of each cluster saw that a refresh needs (with `watch` only).
    memory: events::Memories,
}

impl KubernetesConnector {
    pub fn new(id: &str, config: KubernetesConfig, base_dir: &Path) -> Result<Self, ConfigError> {
        let settings = config.settings(base_dir)?;
        let kubeconfig = match &settings.source {
            Source::Kubeconfig { path, contexts } => {
                // The error says which file and why, never what is in it.
                let kc = Kubeconfig::read_from(path).map_err(|e| {
                    let why = first_line(&e.to_string());
                    ConfigError::new(
                        "kubeconfig",
                        format!("cannot read {}: {why}", path.display()),
                    )
                })?;
                let known: BTreeSet<&str> = kc.contexts.iter().map(|c| c.name.as_str()).collect();
                if let Some(missing) = contexts.iter().find(|c| !known.contains(c.as_str())) {
                    let known: Vec<&str> = known.into_iter().collect();
                    return Err(ConfigError::new(
                        "contexts",
                        format!(
                            "{} has no context {missing:?} (it has: {})",
                            path.display(),
                            known.join(", ")
                        ),
                    ));
                }
                Some(kc)
            }
            Source::InCluster { .. } => None,
        };
        Ok(Self {
            id: id.to_string(),
            settings,
            kubeconfig,
            memory: events::Memories::default(),
        })
    }

    fn clusters(&self) -> Vec<String> {
        match &self.settings.source {
            Source::Kubeconfig { contexts, .. } => contexts.clone(),
            Source::InCluster { name } => vec![name.clone()],
        }
    }

    /// One cluster: its own scope (its namespaces) and one scope per namespace.
    async fn crawl_cluster(&self, cluster: &str, Crawl { sink, outcome }: Crawl<'_>) -> Crawled {
        let api = match Cluster::connect(&self.settings, self.kubeconfig.as_ref(), cluster).await {
            Ok(c) => c,
            Err(e) => {
                outcome.failed(cluster, format!("cannot connect: {e}"));
                return Ok(());
            }
        };
        let namespaces: Vec<Object> = match api.namespaces().await {
            Ok(namespaces) => namespaces,
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
                api.gather::<$ty>(&kept, &mut by_namespace, &mut failed)
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

        if self.settings.watch {
            self.memory.crawled(cluster, &kept, &by_namespace, &failed);
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
}

surveyor_model::connector!(KubernetesConnector(KubernetesConfig, base_dir):
    each |c| c.clusters() => crawl_cluster,
    listens |c| c.settings.watch,
    refresh |c, targets, sink| c.refresh_targets(targets, sink),
    refreshes |c, targets| c.can_refresh(targets),
    watch |c, hints| c.watch_clusters(hints));

#[cfg(test)]
mod tests;
#[cfg(test)]
mod watch_tests;
