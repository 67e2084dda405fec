//! Watches and refreshes (`watch = true`): per cluster, kube's watcher on every kind a crawl
//! lists names each object that changed as a [`Target`]; a refresh reads each named object
//! alone and maps it as a crawl does, with the namespaces the last crawl saw as context.
//!
//! The watcher lists each kind, then watches from the list's resourceVersion; after a dropped
//! connection it watches again from the last version it saw, and when the API server no
//! longer has that version (410 Gone) it lists again. Neither list is a change: the first is
//! what the last crawl already read, and after a re-list only what differs from what the watch
//! knew (a new resourceVersion, an object that appeared or vanished) is named.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Debug;
use std::sync::Mutex;
use std::time::Duration;

use futures_util::StreamExt;
use k8s_openapi::api::apps::v1::{DaemonSet, Deployment, StatefulSet};
use k8s_openapi::api::batch::v1::CronJob;
use k8s_openapi::api::core::v1::{Namespace, Service};
use k8s_openapi::api::networking::v1::Ingress;
use kube::ResourceExt;
use kube::api::Api;
use kube::runtime::{WatchStreamExt, watcher};
use serde::de::DeserializeOwned;
use surveyor_model::{
    ConnectorError, HintSink, Observation, ObservationSink, Outcome, SinkClosed, Target,
};

use crate::KubernetesConnector;
use crate::api::{Cluster, WATCH_TIMEOUT_SECS};
use crate::map::{self, Object};

/// The kinds a refresh reads one object of (their `Target::kind`); a namespace's change
/// reaches every workload in it (owner, System), so it is crawled whole.
const REFRESHED: [&str; 6] = [
    "deployments",
    "statefulsets",
    "daemonsets",
    "cronjobs",
    "services",
    "ingresses",
];

/// How long a watch the credentials may not make (403) waits before it tries again.
const FORBIDDEN_WAIT: Duration = Duration::from_secs(300);
/// How long a cluster whose client cannot be built waits before it tries again.
const CONNECT_WAIT: Duration = Duration::from_secs(30);

/// What the connector remembers of one cluster between a crawl and the events after it.
#[derive(Debug, Default)]
pub struct Memory {
    /// The kept namespaces as the last crawl saw them: the context a workload's mapping reads
    /// (its namespace's owner and System). `None` until a crawl of the cluster got through.
    namespaces: Option<BTreeMap<String, Object>>,
    /// The uids catalogued for each object name (kind plural, namespace, name): what a refresh
    /// confirms gone when the name answers 404, or now belongs to another uid.
    uids: BTreeMap<(String, String, String), BTreeSet<String>>,
}

/// Every cluster's [`Memory`], by cluster name.
#[derive(Debug, Default)]
pub struct Memories(Mutex<BTreeMap<String, Memory>>);

impl Memories {
    fn with<R>(&self, f: impl FnOnce(&mut BTreeMap<String, Memory>) -> R) -> R {
        f(&mut self.0.lock().unwrap_or_else(|e| e.into_inner()))
    }

    /// Remembers what a crawl of `cluster` read: its kept namespaces and every object's uid.
    /// Objects of namespaces that could not be read (`failed`) keep what was known of them.
    pub fn crawled(
        &self,
        cluster: &str,
        namespaces: &BTreeMap<String, Object>,
        objects: &BTreeMap<String, Vec<Object>>,
        failed: &BTreeMap<String, String>,
    ) {
        self.with(|all| {
            let old = all.remove(cluster).unwrap_or_default();
            let mut uids: BTreeMap<_, BTreeSet<String>> = old
                .uids
                .into_iter()
                .filter(|((_, ns, _), _)| failed.contains_key(ns))
                .collect();
            for o in objects.values().flatten() {
                let key = (
                    plural(o.kind).to_string(),
                    o.namespace.clone(),
                    o.name.clone(),
                );
                uids.entry(key).or_default().insert(o.uid.clone());
            }
            all.insert(
                cluster.to_string(),
                Memory {
                    namespaces: Some(namespaces.clone()),
                    uids,
                },
            );
        });
    }

    /// A watch saw `uid` deleted (or missing from a re-list).
    fn deleted(&self, cluster: &str, kind: &str, namespace: &str, name: &str, uid: &str) {
        if uid.is_empty() {
            return;
        }
        self.with(|all| {
            let key = (kind.to_string(), namespace.to_string(), name.to_string());
            let memory = all.entry(cluster.to_string()).or_default();
            memory.uids.entry(key).or_default().insert(uid.to_string());
        });
    }

    /// The name now belongs to `uid` (or to nothing, `None`): the other uids known for it, which
    /// no longer exist.
    fn replaced(
        &self,
        cluster: &str,
        kind: &str,
        namespace: &str,
        name: &str,
        uid: Option<&str>,
    ) -> BTreeSet<String> {
        self.with(|all| {
            let key = (kind.to_string(), namespace.to_string(), name.to_string());
            let memory = all.entry(cluster.to_string()).or_default();
            let mut known = memory.uids.remove(&key).unwrap_or_default();
            if let Some(uid) = uid {
                known.remove(uid);
                memory.uids.insert(key, BTreeSet::from([uid.to_string()]));
            }
            known
        })
    }

    /// The namespace as the last crawl saw it, if one did and kept it.
    fn namespace(&self, cluster: &str, namespace: &str) -> Option<Object> {
        self.with(|all| {
            all.get(cluster)?
                .namespaces
                .as_ref()?
                .get(namespace)
                .cloned()
        })
    }
}

/// The kind plural (`deployments`) of an [`Object`]'s kind (`Deployment`).
fn plural(kind: &str) -> &'static str {
    match kind {
        "Deployment" => "deployments",
        "StatefulSet" => "statefulsets",
        "DaemonSet" => "daemonsets",
        "CronJob" => "cronjobs",
        "Service" => "services",
        "Ingress" => "ingresses",
        _ => "namespaces",
    }
}

/// An object as a watch knows it: where, which, and at which version.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Seen {
    pub namespace: String,
    pub name: String,
    pub resource_version: String,
    pub uid: String,
}

impl Seen {
    /// An event of kube's watcher, about what the watch keeps of each object.
    fn event<K: kube::Resource>(e: watcher::Event<K>) -> watcher::Event<Self> {
        match e {
            watcher::Event::Apply(o) => watcher::Event::Apply(Self::of(&o)),
            watcher::Event::Delete(o) => watcher::Event::Delete(Self::of(&o)),
            watcher::Event::Init => watcher::Event::Init,
            watcher::Event::InitApply(o) => watcher::Event::InitApply(Self::of(&o)),
            watcher::Event::InitDone => watcher::Event::InitDone,
        }
    }

    fn of<K: kube::Resource>(o: &K) -> Self {
        Self {
            namespace: o.namespace().unwrap_or_default(),
            name: o.name_any(),
            resource_version: o.resource_version().unwrap_or_default(),
            uid: o.uid().unwrap_or_default(),
        }
    }
}

/// What a watch event means for the catalog.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Changed {
    /// The object may differ from what is catalogued: read it again.
    Object { namespace: String, name: String },
    /// The object with this uid no longer exists (read its name again all the same: another
    /// object may have taken it).
    Gone {
        namespace: String,
        name: String,
        uid: String,
    },
}

/// What one kind's watch knows of the objects it watches, and what each event changes.
#[derive(Debug, Default)]
pub struct Known {
    /// (namespace, name) → (resourceVersion, uid).
    objects: BTreeMap<(String, String), (String, String)>,
    /// A list in progress.
    listing: Option<BTreeMap<(String, String), (String, String)>>,
    /// Whether a list completed before: the first one is not news.
    listed: bool,
}

impl Known {
    /// Takes one event of kube's watcher.
    pub fn event(&mut self, event: watcher::Event<Seen>) -> Vec<Changed> {
        match event {
            watcher::Event::Init => {
                self.listing = Some(BTreeMap::new());
                Vec::new()
            }
            watcher::Event::InitApply(o) => {
                let listing = self.listing.get_or_insert_with(BTreeMap::new);
                listing.insert((o.namespace, o.name), (o.resource_version, o.uid));
                Vec::new()
            }
            watcher::Event::InitDone => {
                let listed = self.listing.take().unwrap_or_default();
                let before = std::mem::replace(&mut self.objects, listed);
                if !std::mem::replace(&mut self.listed, true) {
                    return Vec::new();
                }
                // A re-list: what differs from what the watch knew.
                let mut out = Vec::new();
                for ((namespace, name), (version, uid)) in &self.objects {
                    match before.get(&(namespace.clone(), name.clone())) {
                        Some((v, _)) if v == version => {}
                        Some((_, old)) if old != uid => out.push(Changed::Gone {
                            namespace: namespace.clone(),
                            name: name.clone(),
                            uid: old.clone(),
                        }),
                        _ => out.push(Changed::Object {
                            namespace: namespace.clone(),
                            name: name.clone(),
                        }),
                    }
                }
                for ((namespace, name), (_, uid)) in before {
                    if !self
                        .objects
                        .contains_key(&(namespace.clone(), name.clone()))
                    {
                        out.push(Changed::Gone {
                            namespace,
                            name,
                            uid,
                        });
                    }
                }
                out
            }
            watcher::Event::Apply(o) => {
                let key = (o.namespace.clone(), o.name.clone());
                let now = (o.resource_version, o.uid);
                if self.objects.get(&key) == Some(&now) {
                    // The same version again (a repeated event): nothing new.
                    return Vec::new();
                }
                self.objects.insert(key, now);
                vec![Changed::Object {
                    namespace: o.namespace,
                    name: o.name,
                }]
            }
            watcher::Event::Delete(o) => {
                let key = (o.namespace.clone(), o.name.clone());
                match self.objects.remove(&key) {
                    Some((_, uid)) => vec![Changed::Gone {
                        namespace: o.namespace,
                        name: o.name,
                        uid: if o.uid.is_empty() { uid } else { o.uid },
                    }],
                    // Deleted twice (a repeated event), or never known: still worth a look.
                    None => vec![Changed::Gone {
                        namespace: o.namespace,
                        name: o.name,
                        uid: o.uid,
                    }],
                }
            }
        }
    }
}

impl KubernetesConnector {
    /// Watches every configured cluster until `hints` closes.
    pub(crate) async fn watch_clusters(&self, hints: HintSink) -> Result<(), ConnectorError> {
        if !self.settings.watch {
            return Err(ConnectorError::Unsupported(
                "watch is off for this connector (watch = false)".into(),
            ));
        }
        let clusters = self.clusters();
        let watches = clusters.iter().map(|c| self.watch_cluster(c, &hints));
        futures_util::future::try_join_all(watches).await?;
        Ok(())
    }

    /// One cluster's watches, one per kind a crawl lists, until `hints` closes.
    async fn watch_cluster(&self, cluster: &str, hints: &HintSink) -> Result<(), SinkClosed> {
        let api = loop {
            match Cluster::connect_watching(&self.settings, self.kubeconfig.as_ref(), cluster).await
            {
                Ok(api) => break api,
                Err(e) => {
                    tracing::warn!(cluster, error = %e, "cannot connect to watch; trying again");
                    tokio::time::sleep(CONNECT_WAIT).await;
                }
            }
        };
        let client = api.client();
        let mut kinds = vec![
            self.watch_kind::<Namespace>(cluster, client.clone(), "namespaces", hints),
            self.watch_kind::<Deployment>(cluster, client.clone(), "deployments", hints),
            self.watch_kind::<StatefulSet>(cluster, client.clone(), "statefulsets", hints),
            self.watch_kind::<DaemonSet>(cluster, client.clone(), "daemonsets", hints),
            self.watch_kind::<CronJob>(cluster, client.clone(), "cronjobs", hints),
            self.watch_kind::<Service>(cluster, client.clone(), "services", hints),
        ];
        if self.settings.ingresses {
            kinds.push(self.watch_kind::<Ingress>(cluster, client, "ingresses", hints));
        }
        futures_util::future::try_join_all(kinds).await?;
        Ok(())
    }

    /// One kind's watch across the cluster: each change it sees, in a kept namespace, goes to
    /// `hints` as a target. Never ends but when `hints` closes.
    fn watch_kind<K>(
        &self,
        cluster: &str,
        client: kube::Client,
        kind: &'static str,
        hints: &HintSink,
    ) -> futures_util::future::BoxFuture<'_, Result<(), SinkClosed>>
    where
        K: kube::Resource<DynamicType = ()>
            + Clone
            + DeserializeOwned
            + Debug
            + Send
            + Sync
            + 'static,
    {
        let cluster = cluster.to_string();
        let hints = hints.clone();
        Box::pin(async move {
            let config = watcher::Config::default()
                .timeout(WATCH_TIMEOUT_SECS)
                .page_size(self.settings.page_size);
            let mut events = Box::pin(
                watcher(Api::<K>::all(client), config)
                    .map(|e| e.map(Seen::event))
                    .default_backoff(),
            );
            let mut known = Known::default();
            // Whether the last event was an error: a failure that repeats is told once.
            let mut failing = false;
            while let Some(event) = events.next().await {
                let changed = match event {
                    Ok(event) => {
                        failing = false;
                        known.event(event)
                    }
                    Err(e) => {
                        let again = std::mem::replace(&mut failing, true);
                        if is_forbidden(&e) {
                            if !again {
                                tracing::warn!(cluster, kind, error = %e, "the credentials may not list and watch this kind across the cluster; the scheduled crawl reads it");
                            }
                            tokio::time::sleep(FORBIDDEN_WAIT).await;
                        } else if matches!(&e, watcher::Error::WatchError(s) if s.code == 410) {
                            tracing::info!(
                                cluster,
                                kind,
                                "the watch fell out of the API server's window (410); listing again"
                            );
                        } else if again {
                            tracing::debug!(cluster, kind, error = %e, "watch error; trying again");
                        } else {
                            tracing::warn!(cluster, kind, error = %e, "watch error; trying again");
                        }
                        continue;
                    }
                };
                let mut targets = Vec::new();
                for c in changed {
                    let (namespace, name) = match &c {
                        Changed::Object { namespace, name } => (namespace, name),
                        Changed::Gone {
                            namespace,
                            name,
                            uid,
                        } => {
                            self.memory.deleted(&cluster, kind, namespace, name, uid);
                            (namespace, name)
                        }
                    };
                    if let Some(t) = self.target(&cluster, kind, namespace, name) {
                        targets.push(t);
                    }
                }
                hints.send(targets)?;
            }
            Ok(())
        })
    }

    /// The target naming an object, unless its namespace is not crawled.
    fn target(&self, cluster: &str, kind: &str, namespace: &str, name: &str) -> Option<Target> {
        if kind == "namespaces" {
            return self.settings.keeps_namespace(name).then(|| Target {
                scope: cluster.to_string(),
                kind: kind.to_string(),
                key: name.to_string(),
            });
        }
        self.settings.keeps_namespace(namespace).then(|| Target {
            scope: format!("{cluster}/{namespace}"),
            kind: kind.to_string(),
            key: name.to_string(),
        })
    }

    /// Whether every target can be read alone: a workload, Service or Ingress in a namespace
    /// the last crawl of its cluster kept (its mapping's context). A namespace, or anything
    /// before the first crawl, needs a crawl.
    pub(crate) fn can_refresh(&self, targets: &[Target]) -> bool {
        self.settings.watch
            && targets.iter().all(|t| {
                let Some((cluster, namespace)) = t.scope.split_once('/') else {
                    return false;
                };
                REFRESHED.contains(&t.kind.as_str())
                    && (t.kind != "ingresses" || self.settings.ingresses)
                    && self.memory.namespace(cluster, namespace).is_some()
            })
    }

    /// Reads each target alone (one GET), mapped as a crawl maps it: what exists is observed,
    /// a 404 confirms the uids known for that name gone, any other failure fails the scope.
    pub(crate) async fn refresh_targets(
        &self,
        targets: &[Target],
        sink: ObservationSink,
    ) -> Result<Outcome, ConnectorError> {
        if !self.can_refresh(targets) {
            return Err(ConnectorError::Unsupported(
                "these targets need a crawl (a namespace, or no crawl of the cluster yet)".into(),
            ));
        }
        let mut by_cluster: BTreeMap<&str, Vec<(&str, &Target)>> = BTreeMap::new();
        for t in targets {
            if let Some((cluster, namespace)) = t.scope.split_once('/') {
                by_cluster.entry(cluster).or_default().push((namespace, t));
            }
        }
        let mut outcome = Outcome::default();
        for (cluster, targets) in by_cluster {
            let api =
                match Cluster::connect(&self.settings, self.kubeconfig.as_ref(), cluster).await {
                    Ok(api) => api,
                    Err(e) => {
                        for (_, t) in targets {
                            outcome.failed(&t.scope, format!("cannot connect: {e}"));
                        }
                        continue;
                    }
                };
            for (namespace, t) in targets {
                let (kind, name) = (t.kind.as_str(), t.key.as_str());
                let read = match kind {
                    "deployments" => api.get::<Deployment>(namespace, name).await,
                    "statefulsets" => api.get::<StatefulSet>(namespace, name).await,
                    "daemonsets" => api.get::<DaemonSet>(namespace, name).await,
                    "cronjobs" => api.get::<CronJob>(namespace, name).await,
                    "services" => api.get::<Service>(namespace, name).await,
                    _ => api.get::<Ingress>(namespace, name).await,
                };
                match read {
                    Ok(Some(o)) => {
                        let gone =
                            self.memory
                                .replaced(cluster, kind, namespace, name, Some(&o.uid));
                        for uid in gone {
                            outcome.confirm_gone(&t.scope, uid);
                        }
                        let ns = self.memory.namespace(cluster, namespace);
                        if let Some(e) = map::resource(&o, ns.as_ref(), cluster, &self.settings) {
                            sink.send(Observation::discovered(&t.scope, &o.uid, e))
                                .await?;
                        }
                        outcome.refreshed(&t.scope);
                    }
                    Ok(None) => {
                        let gone = self.memory.replaced(cluster, kind, namespace, name, None);
                        for uid in gone {
                            outcome.confirm_gone(&t.scope, uid);
                        }
                        outcome.refreshed(&t.scope);
                    }
                    Err(e) => outcome.failed(&t.scope, format!("reading {kind} {name}: {e}")),
                }
            }
        }
        Ok(outcome)
    }
}

/// A list or watch the credentials may not make.
fn is_forbidden(e: &watcher::Error) -> bool {
    match e {
        watcher::Error::InitialListFailed(kube::Error::Api(s))
        | watcher::Error::WatchStartFailed(kube::Error::Api(s)) => s.code == 403,
        watcher::Error::WatchError(s) => s.code == 403,
        _ => false,
    }
}
