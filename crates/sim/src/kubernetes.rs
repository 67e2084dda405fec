//! A fake Kubernetes API server on loopback that serves the workloads of a simulated org: one
//! Deployment (or StatefulSet, DaemonSet, CronJob) and Service per service repository, in a
//! namespace per area, labelled the way teams label things. Lists page with `limit`/`continue`,
//! expired continue tokens answer `410 Gone`, namespaces can be forbidden (403), all in the JSON
//! shapes of a real API server (list items carry no `kind`/`apiVersion`; `Status` bodies).
//! Single objects are read by name, and every kind can be watched.
//!
//! # Watches
//!
//! A list carries the cluster's `metadata.resourceVersion`; every change made through
//! [`KubeFake::with_cluster`] (the [`Cluster`] mutators) takes the next resourceVersion,
//! cluster-wide, and is kept in a window of recent changes. `?watch=true` (or `watch=1`) with a
//! `resourceVersion` streams, as JSON lines `{"type":"ADDED|MODIFIED|DELETED|BOOKMARK",
//! "object":{…}}`, every change after that version still in the window, then each change as it
//! happens, until `timeoutSeconds` (default 1800) ends the stream cleanly. Without a
//! `resourceVersion` (or with `0`) it first sends an `ADDED` for each object there is. A
//! version older than the window is answered as a real API server answers it: `200` and one
//! `ERROR` event holding a `Status` with code 410, reason `Expired` (`too old resource
//! version`); the client must list again (a 410 status at the start of a watch would not make
//! kube's watcher list again, and API servers do not answer that way). With
//! `allowWatchBookmarks=true`, [`KubeFake::bookmark`] sends a `BOOKMARK` carrying the current
//! version. Streaming lists (`sendInitialEvents`) and selectors are not served.
//!
//! Knobs, like the webhook sender's ([`crate::webhook`]): [`WatchKnobs`] drop, duplicate,
//! delay or reorder the events of open watches (decided per change, from a seed, and recorded
//! in [`KubeFake::watch_log`] so a benchmark can check that a sweep repaired what was dropped);
//! [`KubeFake::expire_watch_window`] forgets every change so far and sends each open watch its
//! 410; [`KubeFake::cut_watches`] drops every open watch's connection mid-stream.

use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::hash::{DefaultHasher, Hash, Hasher};
use std::ops::Range;
use std::time::Duration;

use axum::body::{Body, Bytes};
use axum::http::{HeaderMap, Method, StatusCode, Uri};
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use serde_json::{Value, json};
use tokio::sync::mpsc;
use tokio::time::Instant;

use crate::org::{Org, Repo};
use crate::rng::Rng;
use crate::serve::{
    Answer, Fake, Fault, FaultAction, Faults, JsonApi, ValueAnswer, answer_json_api, header,
};
use crate::webhook::{Fate, between, unit};

/// The token the fake accepts (put it in the kubeconfig user).
pub const KUBE_TOKEN: &str = "sim-kube-token";

/// The kinds the fake serves: (list path segment, API group path, kind).
pub const RESOURCES: &[(&str, &str, &str)] = &[
    ("namespaces", "/api/v1", "Namespace"),
    ("deployments", "/apis/apps/v1", "Deployment"),
    ("statefulsets", "/apis/apps/v1", "StatefulSet"),
    ("daemonsets", "/apis/apps/v1", "DaemonSet"),
    ("cronjobs", "/apis/batch/v1", "CronJob"),
    ("services", "/api/v1", "Service"),
    ("ingresses", "/apis/networking.k8s.io/v1", "Ingress"),
];

/// One cluster's objects, by (resource, namespace, name).
#[derive(Debug, Clone)]
pub struct Cluster {
    pub name: String,
    objects: BTreeMap<(String, String, String), Value>,
    resource_version: u64,
    /// Namespaces the fake's credentials may not list in.
    pub forbidden: BTreeSet<String>,
    /// Recent changes, oldest first: what a watch from an older version is sent.
    changes: VecDeque<Change>,
    /// A watch from a version below this one is too old (410): changes after it were forgotten.
    oldest_watchable: u64,
    /// How many changes the window keeps.
    pub retained_changes: usize,
}

/// One change to an object, as a watch reports it.
#[derive(Debug, Clone)]
struct Change {
    version: u64,
    /// `ADDED`, `MODIFIED` or `DELETED`.
    event: &'static str,
    resource: String,
    namespace: String,
    name: String,
    /// The object after the change (for a deletion, as it was, at the deletion's version).
    object: Value,
}

impl Cluster {
    /// The workloads of `org` as deployed to cluster `name`: a namespace per area, one
    /// workload and Service per live, deployed repository, plus the system namespaces every
    /// cluster has and a few workloads no repository accounts for.
    pub fn from_org(org: &Org, name: &str) -> Self {
        let mut c = Self {
            name: name.to_string(),
            objects: BTreeMap::new(),
            resource_version: 1000,
            forbidden: BTreeSet::new(),
            changes: VecDeque::new(),
            oldest_watchable: 0,
            retained_changes: 1000,
        };
        for ns in ["default", "kube-system", "kube-public", "kube-node-lease"] {
            c.put("namespaces", "", ns, json!({"metadata": {"name": ns, "labels": {"kubernetes.io/metadata.name": ns}}, "spec": {"finalizers": ["kubernetes"]}, "status": {"phase": "Active"}}));
        }
        c.put(
            "deployments",
            "kube-system",
            "coredns",
            deployment(
                "coredns",
                "kube-system",
                &json!({"k8s-app": "kube-dns"}),
                &json!({}),
                "registry.k8s.io/coredns/coredns:v1.14.2",
                2,
            ),
        );
        // Numbered by place in the org, so one repository going leaves the others' labels be.
        let deployed = org.repos.iter().enumerate();
        for (i, repo) in deployed.filter(|(_, r)| r.active && r.deployed) {
            let team = &org.teams[repo.owner_team];
            let ns = repo.system.trim_end_matches("-system").to_string();
            if !c
                .objects
                .contains_key(&("namespaces".into(), String::new(), ns.clone()))
            {
                c.put("namespaces", "", &ns, json!({"metadata": {"name": ns, "labels": {"kubernetes.io/metadata.name": ns, "team": team.slug}}, "spec": {"finalizers": ["kubernetes"]}, "status": {"phase": "Active"}}));
            }
            // Teams label in different ways; the connector has to know each.
            let mut labels = json!({});
            let mut annotations = json!({});
            match i % 4 {
                0 => {
                    labels["app.kubernetes.io/name"] = json!(repo.name);
                    labels["app.kubernetes.io/part-of"] = json!(repo.system);
                    labels["team"] = json!(team.slug);
                }
                1 => {
                    annotations["backstage.io/kubernetes-id"] = json!(repo.name);
                    labels["app"] = json!(repo.name);
                    labels["owner"] = json!(team.slug);
                }
                // A Helm-style release: the instance is one installation, the name the app.
                2 => {
                    labels["app.kubernetes.io/name"] = json!(repo.name);
                    labels["app.kubernetes.io/instance"] = json!(format!("{}-prod", repo.name));
                    labels["app.kubernetes.io/owner"] = json!(team.slug);
                }
                // No owner on the workload: its namespace's `team` label says.
                _ => {
                    labels["app.kubernetes.io/name"] = json!(repo.name);
                }
            }
            // A planted owner label (a team that does not exist) comes first of the owner keys.
            if let Some(owner) = org.plants.workload_owner.get(&i) {
                labels["owner"] = json!(owner);
            }
            let image = format!(
                "ghcr.io/{}/{}:{}",
                org.name,
                repo.name,
                &format!("{:x}", repo.pushed_at)[..6]
            );
            let (resource, object) = workload(repo, &ns, &labels, &annotations, &image);
            c.put(resource, &ns, &repo.name, object);
            if resource != "cronjobs" {
                c.put("services", &ns, &repo.name, json!({
                    "metadata": {"name": repo.name, "namespace": ns, "labels": labels},
                    "spec": {"selector": {"app.kubernetes.io/name": repo.name}, "ports": [{"name": "http", "protocol": "TCP", "port": 80, "targetPort": 8080}], "type": "ClusterIP", "clusterIP": format!("10.96.{}.{}", i / 250 % 250, i % 250 + 1)},
                    "status": {"loadBalancer": {}}
                }));
            }
        }
        // What nobody wrote down: running, unowned, no repository.
        for i in 0..2 {
            let name = format!("legacy-batch-{i}");
            c.put(
                "deployments",
                "default",
                &name,
                deployment(
                    &name,
                    "default",
                    &json!({"app": name}),
                    &json!({}),
                    "docker.io/library/busybox:1.36",
                    1,
                ),
            );
        }
        c
    }

    fn uid(&self, resource: &str, ns: &str, name: &str) -> String {
        let mut h = DefaultHasher::new();
        (&self.name, resource, ns, name).hash(&mut h);
        let a = h.finish();
        a.hash(&mut h);
        let b = h.finish();
        format!(
            "{:08x}-{:04x}-4{:03x}-8{:03x}-{:012x}",
            a >> 32,
            a & 0xffff,
            (a >> 16) & 0xfff,
            b & 0xfff,
            b >> 16 & 0xffff_ffff_ffff
        )
    }

    fn put(&mut self, resource: &str, ns: &str, name: &str, mut object: Value) {
        self.resource_version += 1;
        let uid = self.uid(resource, ns, name);
        let meta = &mut object["metadata"];
        meta["name"] = json!(name);
        if !ns.is_empty() {
            meta["namespace"] = json!(ns);
        }
        meta["uid"] = json!(uid);
        meta["resourceVersion"] = json!(self.resource_version.to_string());
        meta["creationTimestamp"] = json!("2026-06-15T04:14:45Z");
        if meta.get("generation").is_none() && resource != "namespaces" && resource != "services" {
            meta["generation"] = json!(1);
        }
        let key = (resource.to_string(), ns.to_string(), name.to_string());
        let event = if self.objects.contains_key(&key) {
            "MODIFIED"
        } else {
            "ADDED"
        };
        self.record(event, &key, &object);
        self.objects.insert(key, object);
    }

    /// Keeps a change in the window (forgetting the oldest beyond `retained_changes`).
    fn record(&mut self, event: &'static str, key: &(String, String, String), object: &Value) {
        self.changes.push_back(Change {
            version: self.resource_version,
            event,
            resource: key.0.clone(),
            namespace: key.1.clone(),
            name: key.2.clone(),
            object: object.clone(),
        });
        while self.changes.len() > self.retained_changes {
            if let Some(old) = self.changes.pop_front() {
                self.oldest_watchable = old.version;
            }
        }
    }

    /// Forgets every change so far: a watch can start from the current version only.
    fn forget_changes(&mut self) {
        self.changes.clear();
        self.oldest_watchable = self.resource_version;
    }

    /// The cluster's current resourceVersion (the latest change's).
    pub fn resource_version(&self) -> u64 {
        self.resource_version
    }

    /// Creates or replaces an object (`metadata.name`, `namespace`, `uid` and `resourceVersion`
    /// are filled in): a watch sees `ADDED` or `MODIFIED`.
    pub fn apply(&mut self, resource: &str, ns: &str, name: &str, object: Value) {
        self.put(resource, ns, name, object);
    }

    /// Creates (or replaces) a Deployment of one replica running `image`, with `labels` on it
    /// and its pods.
    pub fn add_deployment(&mut self, ns: &str, name: &str, labels: Value, image: &str) {
        let object = deployment(name, ns, &labels, &json!({}), image, 1);
        self.put("deployments", ns, name, object);
    }

    /// Deletes an object (a watch sees `DELETED`); a later object of that name gets the same
    /// uid only if re-created.
    /// Becomes `next` (the same cluster rendered again from a changed org) object by object,
    /// so that resource versions keep rising and watches see each difference: what is new or
    /// different is put, what is gone is deleted, the rest is left as it is.
    pub fn become_like(&mut self, next: &Cluster) {
        fn content(object: &Value) -> Value {
            let mut o = object.clone();
            if let Some(meta) = o["metadata"].as_object_mut() {
                for k in ["resourceVersion", "uid", "creationTimestamp", "generation"] {
                    meta.remove(k);
                }
            }
            o
        }
        let gone: Vec<(String, String, String)> = self
            .objects
            .keys()
            .filter(|k| !next.objects.contains_key(*k))
            .cloned()
            .collect();
        for (resource, ns, name) in gone {
            self.delete(&resource, &ns, &name);
        }
        for ((resource, ns, name), object) in &next.objects {
            let key = (resource.clone(), ns.clone(), name.clone());
            if self.objects.get(&key).map(content) != Some(content(object)) {
                self.put(resource, ns, name, object.clone());
            }
        }
    }

    pub fn delete(&mut self, resource: &str, ns: &str, name: &str) -> bool {
        self.resource_version += 1;
        let key = (resource.to_string(), ns.to_string(), name.to_string());
        match self.objects.remove(&key) {
            Some(mut object) => {
                object["metadata"]["resourceVersion"] = json!(self.resource_version.to_string());
                self.record("DELETED", &key, &object);
                true
            }
            None => false,
        }
    }

    /// Sets a label on an object (and bumps its resourceVersion).
    pub fn set_label(
        &mut self,
        resource: &str,
        ns: &str,
        name: &str,
        key: &str,
        value: &str,
    ) -> bool {
        self.resource_version += 1;
        let rv = self.resource_version.to_string();
        let k = (resource.to_string(), ns.to_string(), name.to_string());
        let Some(o) = self.objects.get_mut(&k) else {
            return false;
        };
        o["metadata"]["labels"][key] = json!(value);
        o["metadata"]["resourceVersion"] = json!(rv);
        let object = o.clone();
        self.record("MODIFIED", &k, &object);
        true
    }

    /// Objects of one resource, as `(namespace, name)`.
    pub fn names(&self, resource: &str) -> Vec<(String, String)> {
        self.objects
            .keys()
            .filter(|(r, _, _)| r == resource)
            .map(|(_, ns, n)| (ns.clone(), n.clone()))
            .collect()
    }

    pub fn object(&self, resource: &str, ns: &str, name: &str) -> Option<&Value> {
        self.objects.get(&(resource.into(), ns.into(), name.into()))
    }
}

fn pod_template(labels: &Value, image: &str, name: &str) -> Value {
    json!({
        "metadata": {"labels": labels},
        "spec": {
            "containers": [{"name": name, "image": image, "ports": [{"containerPort": 8080, "protocol": "TCP"}], "resources": {}, "imagePullPolicy": "IfNotPresent"}],
            "restartPolicy": "Always",
            "terminationGracePeriodSeconds": 30,
            "dnsPolicy": "ClusterFirst"
        }
    })
}

fn deployment(
    name: &str,
    ns: &str,
    labels: &Value,
    annotations: &Value,
    image: &str,
    replicas: u32,
) -> Value {
    json!({
        "metadata": {"name": name, "namespace": ns, "labels": labels, "annotations": annotations},
        "spec": {
            "replicas": replicas,
            "selector": {"matchLabels": labels},
            "template": pod_template(labels, image, name),
            "strategy": {"type": "RollingUpdate", "rollingUpdate": {"maxUnavailable": "25%", "maxSurge": "25%"}},
            "revisionHistoryLimit": 10,
            "progressDeadlineSeconds": 600
        },
        "status": {"observedGeneration": 1, "replicas": replicas, "updatedReplicas": replicas, "readyReplicas": replicas, "availableReplicas": replicas}
    })
}

/// The workload kind a repository deploys as, from what its name says it is.
fn workload(
    repo: &Repo,
    ns: &str,
    labels: &Value,
    annotations: &Value,
    image: &str,
) -> (&'static str, Value) {
    let name = repo.name.as_str();
    let meta = json!({"name": name, "namespace": ns, "labels": labels, "annotations": annotations});
    if name.contains("-indexer-") || name.contains("-core-") {
        let mut v = deployment(name, ns, labels, annotations, image, 3);
        v["metadata"] = meta;
        v["spec"]["serviceName"] = json!(name);
        v["spec"]["podManagementPolicy"] = json!("OrderedReady");
        if let Some(spec) = v["spec"].as_object_mut() {
            spec.remove("strategy");
        }
        v["spec"]["updateStrategy"] =
            json!({"type": "RollingUpdate", "rollingUpdate": {"partition": 0}});
        ("statefulsets", v)
    } else if name.contains("-exporter-") || name.contains("-proxy-") {
        let mut v = deployment(name, ns, labels, annotations, image, 0);
        v["metadata"] = meta;
        if let Some(spec) = v["spec"].as_object_mut() {
            spec.remove("replicas");
            spec.remove("strategy");
        }
        v["status"] =
            json!({"currentNumberScheduled": 3, "desiredNumberScheduled": 3, "numberReady": 3});
        ("daemonsets", v)
    } else if name.contains("-scheduler-") || name.contains("-bot-") {
        (
            "cronjobs",
            json!({
                "metadata": meta,
                "spec": {
                    "schedule": "*/30 * * * *",
                    "concurrencyPolicy": "Forbid",
                    "suspend": false,
                    "jobTemplate": {"spec": {"template": pod_template(labels, image, name)}},
                    "successfulJobsHistoryLimit": 3,
                    "failedJobsHistoryLimit": 1
                },
                "status": {}
            }),
        )
    } else {
        let mut v = deployment(name, ns, labels, annotations, image, 2);
        v["metadata"] = meta;
        ("deployments", v)
    }
}

#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct KubeStats {
    pub requests: u64,
    pub gone: u64,
    pub forbidden: u64,
    /// Requests per path (without the query).
    pub by_path: BTreeMap<String, u64>,
    /// Objects read one by one (`GET …/{name}`).
    pub gets: u64,
    /// Watch requests, each as its path and the `resourceVersion` it asked to start from.
    pub watches: Vec<(String, Option<String>)>,
    /// Watches answered with a 410 `ERROR` event (too old a version, or the window expired).
    pub expired: u64,
}

/// How the fake's watches misbehave (see the module docs). Every decision comes from `seed`.
#[derive(Debug, Clone, PartialEq)]
pub struct WatchKnobs {
    /// The share of changes no open watch is sent (they stay in the window: a watch that
    /// starts again from an older version gets them).
    pub drop: f64,
    /// The share of changes sent twice.
    pub duplicate: f64,
    /// Each change waits a time drawn from this range before it goes out; a stream keeps its
    /// order, so a long wait holds back the changes behind it.
    pub delay: Range<Duration>,
    /// The changes made in one [`KubeFake::with_cluster`] are sent in a shuffled order.
    pub reorder: bool,
    pub seed: u64,
}

impl WatchKnobs {
    /// Every change, once, at once, in order.
    pub fn reliable() -> Self {
        Self {
            drop: 0.0,
            duplicate: 0.0,
            delay: Duration::ZERO..Duration::ZERO,
            reorder: false,
            seed: 0,
        }
    }
}

impl Default for WatchKnobs {
    fn default() -> Self {
        Self::reliable()
    }
}

/// One change as the open watches were sent it (or not): what a benchmark checks a sweep
/// against.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WatchedChange {
    pub resource_version: u64,
    /// `ADDED`, `MODIFIED` or `DELETED`.
    pub event: &'static str,
    pub resource: String,
    pub namespace: String,
    pub name: String,
    pub fate: Fate,
    pub delay: Duration,
    /// Open watches of that resource when it happened.
    pub watchers: usize,
}

/// A line on a watch stream, or the connection being cut.
enum Line {
    Data { bytes: Bytes, due: Instant },
    Cut,
}

/// One open watch.
struct Watcher {
    resource: &'static str,
    namespace: Option<String>,
    bookmarks: bool,
    api_version: String,
    kind: &'static str,
    tx: mpsc::UnboundedSender<Line>,
}

impl Watcher {
    fn sees(&self, c: &Change) -> bool {
        c.resource == self.resource && self.namespace.as_ref().is_none_or(|ns| *ns == c.namespace)
    }

    fn send(&self, value: &Value, due: Instant) {
        let mut bytes = value.to_string().into_bytes();
        bytes.push(b'\n');
        // A watch whose client went away is pruned at the next dispatch.
        let _ = self.tx.send(Line::Data {
            bytes: Bytes::from(bytes),
            due,
        });
    }

    fn event(&self, c: &Change) -> Value {
        json!({"type": c.event, "object": typed(&c.object, &self.api_version, self.kind)})
    }

    fn bookmark(&self, version: u64) -> Value {
        json!({"type": "BOOKMARK", "object": {"kind": self.kind, "apiVersion": self.api_version,
            "metadata": {"resourceVersion": version.to_string()}}})
    }
}

/// An object with its `kind` and `apiVersion`, as single reads and watches send it.
fn typed(object: &Value, api_version: &str, kind: &str) -> Value {
    let mut o = object.clone();
    if let Some(map) = o.as_object_mut() {
        map.insert("kind".into(), json!(kind));
        map.insert("apiVersion".into(), json!(api_version));
    }
    o
}

/// The open watches and how changes reach them.
struct Watches {
    open: Vec<Watcher>,
    /// Changes up to this version were sent to the watches open then.
    dispatched: u64,
    knobs: WatchKnobs,
    rng: Rng,
    log: Vec<WatchedChange>,
}

/// What a [`KubeFake`] serves and counts.
pub struct KubeState {
    cluster: Cluster,
    /// The next this-many list requests that carry a continue token answer 410 Gone.
    expire_continues: usize,
    stats: KubeStats,
    /// Faults by request path (`/apis/apps/v1/deployments`), a `prefix*`, or `*`.
    faults: Faults<Fault>,
    /// Bearer tokens accepted besides [`KUBE_TOKEN`].
    extra_tokens: Vec<String>,
    watches: Watches,
}

impl KubeState {
    /// Sends each open watch the changes made since the last dispatch, as the knobs say.
    fn dispatch(&mut self) {
        let w = &mut self.watches;
        w.open.retain(|o| !o.tx.is_closed());
        let fresh: Vec<&Change> = self
            .cluster
            .changes
            .iter()
            .filter(|c| c.version > w.dispatched)
            .collect();
        w.dispatched = self.cluster.resource_version;
        let now = Instant::now();
        let mut planned = Vec::with_capacity(fresh.len());
        for c in fresh {
            // Every change draws the same numbers whatever its fate.
            let dropped = unit(&mut w.rng) < w.knobs.drop;
            let duplicated = unit(&mut w.rng) < w.knobs.duplicate;
            let wait = between(&mut w.rng, &w.knobs.delay);
            let fate = match (dropped, duplicated) {
                (true, _) => Fate::Dropped,
                (false, true) => Fate::Duplicated,
                (false, false) => Fate::Sent,
            };
            w.log.push(WatchedChange {
                resource_version: c.version,
                event: c.event,
                resource: c.resource.clone(),
                namespace: c.namespace.clone(),
                name: c.name.clone(),
                fate,
                delay: wait,
                watchers: w.open.iter().filter(|o| o.sees(c)).count(),
            });
            if !dropped {
                planned.push((c, if duplicated { 2 } else { 1 }, now + wait));
            }
        }
        if w.knobs.reorder {
            for i in (1..planned.len()).rev() {
                let j = w.rng.below(i + 1);
                planned.swap(i, j);
            }
        }
        for o in &w.open {
            for (c, copies, due) in &planned {
                if o.sees(c) {
                    let line = o.event(c);
                    for _ in 0..*copies {
                        o.send(&line, *due);
                    }
                }
            }
        }
    }
}

/// A running fake API server for one cluster. Faults are by request path
/// (`/apis/apps/v1/deployments` is the cluster-wide list), a path prefix ending in `*`, or `*`;
/// `skip` counts matching requests, pages included. Dropping it stops it.
pub type KubeFake = Fake<KubeState, FaultAction, KubeStats>;

impl KubeFake {
    pub async fn start(mut cluster: Cluster) -> std::io::Result<Self> {
        // What happened before the server started is history no watch can ask for.
        cluster.forget_changes();
        let dispatched = cluster.resource_version;
        let state = |_: &str| KubeState {
            cluster,
            expire_continues: 0,
            stats: KubeStats::default(),
            faults: Faults::default(),
            extra_tokens: Vec::new(),
            watches: Watches {
                open: Vec::new(),
                dispatched,
                knobs: WatchKnobs::reliable(),
                rng: Rng::new(0),
                log: Vec::new(),
            },
        };
        Self::serve(state, answer_kube, |s| &mut s.faults, |s| &mut s.stats).await
    }

    /// Changes the cluster; open watches are sent what changed (as the knobs say).
    pub fn with_cluster<R>(&self, change: impl FnOnce(&mut Cluster) -> R) -> R {
        let mut s = self.server.lock();
        let r = change(&mut s.cluster);
        s.dispatch();
        r
    }

    /// The next `n` list requests with a continue token get `410 Gone` (the token expired).
    pub fn expire_continues(&self, n: usize) {
        self.server.lock().expire_continues = n;
    }

    /// Accepts `token` as well as [`KUBE_TOKEN`] (tests with their own values).
    pub fn add_token(&self, token: &str) {
        self.server.lock().extra_tokens.push(token.to_string());
    }

    /// How the watches misbehave from now on (the log of earlier changes stays).
    pub fn set_watch_knobs(&self, knobs: WatchKnobs) {
        let mut s = self.server.lock();
        s.dispatch();
        s.watches.rng = Rng::new(knobs.seed);
        s.watches.knobs = knobs;
    }

    /// Every change made while the fake served, with what became of it, oldest first.
    pub fn watch_log(&self) -> Vec<WatchedChange> {
        self.server.lock().watches.log.clone()
    }

    /// The changes no open watch was sent.
    pub fn dropped_changes(&self) -> Vec<WatchedChange> {
        let log = self.watch_log();
        log.into_iter()
            .filter(|c| c.fate == Fate::Dropped)
            .collect()
    }

    /// Watches open now (a client that went away is no longer counted).
    pub fn open_watches(&self) -> usize {
        let mut s = self.server.lock();
        s.watches.open.retain(|o| !o.tx.is_closed());
        s.watches.open.len()
    }

    /// Forgets every change so far, as an API server whose window moved on does: each open
    /// watch is sent a 410 `ERROR` event and closed, and a watch from any version before now
    /// is answered the same way. The client has to list again.
    pub fn expire_watch_window(&self) {
        let mut s = self.server.lock();
        s.dispatch();
        let version = s.cluster.resource_version;
        s.cluster.forget_changes();
        let now = Instant::now();
        for o in std::mem::take(&mut s.watches.open) {
            o.send(&too_old(version, version + 1), now);
            s.stats.expired += 1;
        }
    }

    /// Drops the connection of every open watch mid-stream (no clean end of the response):
    /// the client has to watch again from the last version it saw.
    pub fn cut_watches(&self) {
        let mut s = self.server.lock();
        s.dispatch();
        for o in std::mem::take(&mut s.watches.open) {
            let _ = o.tx.send(Line::Cut);
        }
    }

    /// Sends each open watch that allowed bookmarks a `BOOKMARK` at the current version.
    pub fn bookmark(&self) {
        let mut s = self.server.lock();
        s.dispatch();
        let version = s.cluster.resource_version;
        let now = Instant::now();
        for o in s.watches.open.iter().filter(|o| o.bookmarks) {
            o.send(&o.bookmark(version), now);
        }
    }

    /// A kubeconfig with one context per `(context, fake)` pair, each with the fake's token.
    pub fn kubeconfig(clusters: &[(&str, &str)]) -> String {
        let mut out = String::from("apiVersion: v1\nkind: Config\nclusters:\n");
        for (name, url) in clusters {
            out.push_str(&format!("- name: {name}\n  cluster:\n    server: {url}\n"));
        }
        out.push_str("users:\n- name: surveyor\n  user:\n    token: ");
        out.push_str(KUBE_TOKEN);
        out.push_str("\ncontexts:\n");
        for (name, _) in clusters {
            out.push_str(&format!(
                "- name: {name}\n  context:\n    cluster: {name}\n    user: surveyor\n"
            ));
        }
        if let Some((first, _)) = clusters.first() {
            out.push_str(&format!("current-context: {first}\n"));
        }
        out
    }
}

/// The `ERROR` event of a watch from a version the API server no longer has.
fn too_old(asked: u64, oldest: u64) -> Value {
    json!({"type": "ERROR", "object": {"kind": "Status", "apiVersion": "v1", "metadata": {},
        "status": "Failure", "message": format!("too old resource version: {asked} ({oldest})"),
        "reason": "Expired", "code": 410}})
}

fn status(code: StatusCode, reason: &str, message: String, details: Value) -> (StatusCode, Value) {
    (
        code,
        json!({"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
            "message": message, "reason": reason, "details": details, "code": code.as_u16()}),
    )
}

fn not_found() -> (StatusCode, Value) {
    status(
        StatusCode::NOT_FOUND,
        "NotFound",
        "the server could not find the requested resource".into(),
        json!({}),
    )
}

impl JsonApi for KubeState {
    const CONTENT_TYPE: &'static str = "application/json";
    const PROXY_ERROR_PAGE: &'static str =
        "<html><body><h1>502 Bad Gateway</h1>nginx</body></html>";

    fn faults(&mut self) -> &mut Faults<Fault> {
        &mut self.faults
    }

    fn answer(&mut self, uri: &Uri, headers: &HeaderMap) -> ValueAnswer {
        let (code, body) = answer(self, uri, headers);
        (code, Vec::new(), body)
    }

    fn failure(status: StatusCode) -> ValueAnswer {
        let reason = match status.as_u16() {
            401 => "Unauthorized",
            403 => "Forbidden",
            500 => "InternalError",
            503 => "ServiceUnavailable",
            504 => "Timeout",
            _ => "Unknown",
        };
        let message = format!(
            "simulated failure: {}",
            status.canonical_reason().unwrap_or("error")
        );
        let (code, body) = self::status(status, reason, message, json!({}));
        (code, Vec::new(), body)
    }

    fn too_many_requests(retry_after_secs: u64) -> ValueAnswer {
        let (code, body) = status(
            StatusCode::TOO_MANY_REQUESTS,
            "TooManyRequests",
            "Too many requests, please try again later.".into(),
            json!({"retryAfterSeconds": retry_after_secs}),
        );
        (
            code,
            vec![("retry-after", retry_after_secs.to_string())],
            body,
        )
    }

    fn cut_list(body: &mut Value, empty: bool) {
        if !empty {
            // The continue token goes; `remainingItemCount` still says how many were left.
            if let Some(meta) = body["metadata"].as_object_mut() {
                meta.remove("continue");
            }
        } else if body["items"].is_array() {
            body["items"] = json!([]);
            if let Some(meta) = body["metadata"].as_object_mut() {
                meta.remove("continue");
                meta.remove("remainingItemCount");
            }
        }
    }
}

/// A request the fake understood: what it reads, where, and how it asked.
struct Request {
    /// As [`RESOURCES`] spells it.
    resource: &'static str,
    kind: &'static str,
    /// `apps/v1`, `v1`.
    api_version: &'static str,
    namespace: Option<String>,
    /// One object (`GET …/{name}`) rather than a collection.
    name: Option<String>,
    params: BTreeMap<String, String>,
}

impl Request {
    fn watch(&self) -> bool {
        self.name.is_none()
            && self
                .params
                .get("watch")
                .is_some_and(|w| w == "true" || w == "1")
    }
}

/// Counts the request, checks its token, reads its path and checks the rights it needs: a
/// request to answer, or the error answer.
fn route(
    s: &mut KubeState,
    uri: &Uri,
    headers: &HeaderMap,
) -> Result<Request, (StatusCode, Value)> {
    s.stats.requests += 1;
    let path = uri.path().to_string();
    *s.stats.by_path.entry(path.clone()).or_default() += 1;
    let authorised = header(headers, "authorization")
        .and_then(|v| v.strip_prefix("Bearer "))
        .is_some_and(|t| t == KUBE_TOKEN || s.extra_tokens.iter().any(|e| e == t));
    if !authorised {
        return Err(status(
            StatusCode::UNAUTHORIZED,
            "Unauthorized",
            "Unauthorized".into(),
            json!({}),
        ));
    }
    let params: BTreeMap<String, String> = uri
        .query()
        .unwrap_or_default()
        .split('&')
        .filter_map(|kv| kv.split_once('='))
        .map(|(k, v)| (k.to_string(), percent_decode(v)))
        .collect();
    // /api/v1/{resource}, /api/v1/namespaces/{ns}/{resource}[/{name}], /api/v1/namespaces/{name},
    // /apis/{group}/{version}/...
    let Some((base, rest)) = RESOURCES
        .iter()
        .filter_map(|(_, base, _)| path.strip_prefix(base).map(|rest| (*base, rest)))
        .next()
    else {
        return Err(not_found());
    };
    let segments: Vec<&str> = rest.trim_matches('/').split('/').collect();
    let (namespace, resource, name) = match segments.as_slice() {
        [resource] => (None, *resource, None),
        ["namespaces", name] => (None, "namespaces", Some(name.to_string())),
        ["namespaces", ns, resource] => (Some(ns.to_string()), *resource, None),
        ["namespaces", ns, resource, name] if *resource != "namespaces" => {
            (Some(ns.to_string()), *resource, Some(name.to_string()))
        }
        _ => {
            return Err(not_found());
        }
    };
    let Some((resource, _, kind)) = RESOURCES
        .iter()
        .find(|(r, b, _)| *r == resource && *b == base)
    else {
        return Err(not_found());
    };
    let group = base
        .trim_start_matches("/apis/")
        .trim_start_matches("/api/");
    let group_name = group
        .split('/')
        .next()
        .filter(|g| g.contains('.') || *g == "apps" || *g == "batch")
        .unwrap_or("");
    let request = Request {
        resource,
        kind,
        api_version: group,
        namespace,
        name,
        params,
    };
    let forbidden = match &request.namespace {
        Some(ns) => s.cluster.forbidden.contains(ns),
        // Listing across namespaces needs rights in all of them.
        None => *resource != "namespaces" && !s.cluster.forbidden.is_empty(),
    };
    if forbidden {
        s.stats.forbidden += 1;
        let scope = match &request.namespace {
            Some(ns) => format!("in the namespace \"{ns}\""),
            None => "at the cluster scope".into(),
        };
        let group_desc = if group_name.is_empty() {
            String::new()
        } else {
            format!(".{group_name}")
        };
        let verb = match (&request.name, request.watch()) {
            (Some(_), _) => "get",
            (None, true) => "watch",
            (None, false) => "list",
        };
        return Err(status(
            StatusCode::FORBIDDEN,
            "Forbidden",
            format!(
                "{resource}{group_desc} is forbidden: User \"system:serviceaccount:surveyor:surveyor\" cannot {verb} resource \"{resource}\" in API group \"{group_name}\" {scope}"
            ),
            json!({"group": group_name, "kind": resource}),
        ));
    }
    Ok(request)
}

/// Answers every request: watches as streams, the rest as JSON values with the fault due for
/// their path applied.
fn answer_kube(
    s: &mut KubeState,
    method: &Method,
    uri: &Uri,
    headers: &HeaderMap,
    body: &[u8],
) -> (Answer, Duration) {
    s.dispatch();
    let is_watch = uri
        .query()
        .unwrap_or_default()
        .split('&')
        .any(|kv| kv == "watch=true" || kv == "watch=1");
    if !is_watch {
        return answer_json_api(s, method, uri, headers, body);
    }
    let fault = s
        .faults
        .due(|f| f.matches(uri.path()))
        .map(|f| f.action.clone());
    let (code, value) = match route(s, uri, headers) {
        Ok(request) if request.watch() => match fault {
            Some(FaultAction::Status(code)) => {
                let code = StatusCode::from_u16(code).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
                let (code, _, value) = KubeState::failure(code);
                (code, value)
            }
            Some(FaultAction::Delay(d)) => return (watch(s, &request), d),
            _ => return (watch(s, &request), Duration::ZERO),
        },
        Ok(_) => not_found(),
        Err(e) => e,
    };
    let answer = Answer::json_as(code, KubeState::CONTENT_TYPE, &value);
    (answer, Duration::ZERO)
}

/// Opens a watch: the changes after the version asked for (or an `ADDED` per object without
/// one), then each change as it happens, until `timeoutSeconds`.
fn watch(s: &mut KubeState, r: &Request) -> Answer {
    let path = match &r.namespace {
        Some(ns) => format!("namespaces/{ns}/{}", r.resource),
        None => r.resource.to_string(),
    };
    let from = r
        .params
        .get("resourceVersion")
        .filter(|v| !v.is_empty())
        .cloned();
    s.stats.watches.push((path, from.clone()));
    let timeout = r
        .params
        .get("timeoutSeconds")
        .and_then(|t| t.parse::<u64>().ok())
        .filter(|t| *t > 0)
        .unwrap_or(1800);
    let (tx, rx) = mpsc::unbounded_channel();
    let watcher = Watcher {
        resource: r.resource,
        namespace: r.namespace.clone(),
        bookmarks: r
            .params
            .get("allowWatchBookmarks")
            .is_some_and(|b| b == "true" || b == "1"),
        api_version: r.api_version.to_string(),
        kind: r.kind,
        tx,
    };
    let now = Instant::now();
    let deadline = now + Duration::from_secs(timeout);
    let c = &s.cluster;
    match from.as_deref().filter(|v| *v != "0") {
        None => {
            // "Start at most recent": the objects there are, then what changes.
            for ((resource, ns, name), object) in &c.objects {
                if resource == r.resource && r.namespace.as_ref().is_none_or(|want| want == ns) {
                    let change = Change {
                        version: c.resource_version,
                        event: "ADDED",
                        resource: resource.clone(),
                        namespace: ns.clone(),
                        name: name.clone(),
                        object: object.clone(),
                    };
                    watcher.send(&watcher.event(&change), now);
                }
            }
        }
        Some(v) => match v.parse::<u64>() {
            Ok(version) if version < c.oldest_watchable => {
                watcher.send(&too_old(version, c.oldest_watchable + 1), now);
                s.stats.expired += 1;
                // The stream ends after the error.
                return Answer::streamed(KubeState::CONTENT_TYPE, watch_body(rx, deadline));
            }
            Ok(version) => {
                for change in c.changes.iter().filter(|ch| ch.version > version) {
                    if watcher.sees(change) {
                        watcher.send(&watcher.event(change), now);
                    }
                }
            }
            Err(_) => {
                let (code, value) = status(
                    StatusCode::BAD_REQUEST,
                    "BadRequest",
                    format!("invalid resource version: {v:?}"),
                    json!({}),
                );
                return Answer::json_as(code, KubeState::CONTENT_TYPE, &value);
            }
        },
    }
    s.watches.open.push(watcher);
    Answer::streamed(KubeState::CONTENT_TYPE, watch_body(rx, deadline))
}

/// A watch's body: each line when it is due, until the fake closes the watch or `deadline`;
/// a cut ends it with an error, which drops the connection without a clean end.
fn watch_body(rx: mpsc::UnboundedReceiver<Line>, deadline: Instant) -> Body {
    let lines = futures_util::stream::unfold(Some(rx), move |rx| async move {
        let mut rx = rx?;
        let line = tokio::select! {
            () = tokio::time::sleep_until(deadline) => return None,
            line = rx.recv() => line?,
        };
        match line {
            Line::Data { bytes, due } => {
                tokio::time::sleep_until(due).await;
                Some((Ok(bytes), Some(rx)))
            }
            Line::Cut => Some((Err(std::io::Error::other("the connection was cut")), None)),
        }
    });
    Body::from_stream(lines)
}

fn answer(s: &mut KubeState, uri: &Uri, headers: &HeaderMap) -> (StatusCode, Value) {
    let r = match route(s, uri, headers) {
        Ok(r) => r,
        Err(e) => return e,
    };
    let (resource, namespace, params) = (r.resource, &r.namespace, &r.params);
    let kind = r.kind;
    let group = r.api_version;
    if let Some(name) = &r.name {
        s.stats.gets += 1;
        let ns = namespace.clone().unwrap_or_default();
        return match s.cluster.object(resource, &ns, name) {
            Some(object) => (StatusCode::OK, typed(object, group, kind)),
            None => {
                let group_name = group.split_once('/').map(|(g, _)| g).unwrap_or("");
                let qualified = if group_name.is_empty() {
                    resource.to_string()
                } else {
                    format!("{resource}.{group_name}")
                };
                status(
                    StatusCode::NOT_FOUND,
                    "NotFound",
                    format!("{qualified} \"{name}\" not found"),
                    json!({"name": name, "group": group_name, "kind": resource}),
                )
            }
        };
    }
    let continue_token = params.get("continue").filter(|c| !c.is_empty());
    if continue_token.is_some() && s.expire_continues > 0 {
        s.expire_continues -= 1;
        s.stats.gone += 1;
        return status(
            StatusCode::GONE,
            "Expired",
            "The provided continue parameter is too old to display a consistent list result. You can start a new list without the continue parameter, or use the continue token in this response to retrieve the remainder of the results. Continuing with the provided token results in an inconsistent list - objects that were created, modified, or deleted between the time the first chunk was returned and now may show up in the list.".into(),
            json!({}),
        );
    }
    let start = match continue_token {
        Some(token) => match STANDARD
            .decode(token)
            .ok()
            .and_then(|b| serde_json::from_slice::<Value>(&b).ok())
            .and_then(|v| v["start"].as_str().map(str::to_string))
        {
            Some(start) => Some(start),
            None => {
                return status(
                    StatusCode::BAD_REQUEST,
                    "BadRequest",
                    "continue key is not valid: illegal base64 data".into(),
                    json!({}),
                );
            }
        },
        None => None,
    };
    let limit = params
        .get("limit")
        .and_then(|l| l.parse::<usize>().ok())
        .filter(|l| *l > 0);
    let matching: Vec<(String, &Value)> = s
        .cluster
        .objects
        .iter()
        .filter(|((r, ns, _), _)| r == resource && namespace.as_ref().is_none_or(|want| want == ns))
        .map(|((_, ns, name), v)| (format!("{ns}/{name}"), v))
        .filter(|(key, _)| start.as_ref().is_none_or(|st| key.as_str() >= st.as_str()))
        .collect();
    let take = limit.unwrap_or(matching.len());
    let items: Vec<Value> = matching
        .iter()
        .take(take)
        .map(|(_, v)| (*v).clone())
        .collect();
    let mut metadata = json!({"resourceVersion": s.cluster.resource_version.to_string()});
    if let Some((next, _)) = matching.get(take) {
        let token = STANDARD.encode(
            json!({"v": "meta.k8s.io/v1", "rv": s.cluster.resource_version, "start": next})
                .to_string(),
        );
        metadata["continue"] = json!(token);
        metadata["remainingItemCount"] = json!(matching.len() - take);
    }
    (
        StatusCode::OK,
        json!({"kind": format!("{kind}List"), "apiVersion": group, "metadata": metadata, "items": items}),
    )
}

fn percent_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'%' if i + 2 < bytes.len() => {
                let hex = std::str::from_utf8(&bytes[i + 1..i + 3]).ok();
                match hex.and_then(|h| u8::from_str_radix(h, 16).ok()) {
                    Some(b) => {
                        out.push(b);
                        i += 3;
                    }
                    None => {
                        out.push(b'%');
                        i += 1;
                    }
                }
            }
            b'+' => {
                out.push(b' ');
                i += 1;
            }
            b => {
                out.push(b);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::OrgSpec;

    async fn get(fake: &KubeFake, path: &str) -> (u16, Value) {
        let r = reqwest::Client::new()
            .get(format!("{}{path}", fake.url()))
            .bearer_auth(KUBE_TOKEN)
            .send()
            .await
            .unwrap();
        (r.status().as_u16(), r.json().await.unwrap())
    }

    #[test]
    fn a_cluster_becomes_a_rerendered_one_by_its_differences_alone() {
        let mut org = Org::generate(&OrgSpec::small());
        let mut cluster = Cluster::from_org(&org, "prod");
        let version = cluster.resource_version;
        cluster.become_like(&Cluster::from_org(&org, "prod"));
        assert_eq!(
            cluster.resource_version, version,
            "nothing differs, nothing is put"
        );

        let repo = org
            .repos
            .iter()
            .position(|r| {
                cluster
                    .names("deployments")
                    .iter()
                    .any(|(_, n)| *n == r.name)
            })
            .expect("a deployed repository");
        let name = org.repos[repo].name.clone();
        org.repos[repo].active = false;
        let before = cluster.changes.len();
        cluster.become_like(&Cluster::from_org(&org, "prod"));
        let news: Vec<&Change> = cluster.changes.iter().skip(before).collect();
        assert!(
            news.iter()
                .any(|c| c.event == "DELETED" && c.resource == "deployments" && c.name == name),
            "{news:?}"
        );
        assert!(
            news.iter().all(|c| c.version > version),
            "versions keep rising"
        );
        assert!(!cluster.names("deployments").iter().any(|(_, n)| *n == name));
    }

    #[tokio::test]
    async fn lists_page_with_continue_and_expire_with_410() {
        let org = Org::generate(&OrgSpec::small());
        let cluster = Cluster::from_org(&org, "prod");
        let total = cluster.names("deployments").len();
        let fake = KubeFake::start(cluster).await.unwrap();
        let mut names = Vec::new();
        let mut token = String::new();
        loop {
            let path = format!("/apis/apps/v1/deployments?limit=5&continue={token}");
            let (code, body) = get(&fake, &path).await;
            assert_eq!(code, 200);
            assert_eq!(body["kind"], "DeploymentList");
            assert!(
                body["items"][0].get("kind").is_none(),
                "list items carry no kind"
            );
            for item in body["items"].as_array().unwrap() {
                names.push(item["metadata"]["name"].as_str().unwrap().to_string());
                assert!(item["metadata"]["uid"].as_str().unwrap().len() == 36);
            }
            match body["metadata"]["continue"].as_str() {
                Some(t) => token = t.to_string(),
                None => break,
            }
        }
        assert_eq!(names.len(), total);
        fake.expire_continues(1);
        let (code, body) = get(
            &fake,
            &format!("/apis/apps/v1/deployments?limit=5&continue={token}x"),
        )
        .await;
        assert_eq!((code, body["reason"].as_str()), (410, Some("Expired")));
    }

    #[tokio::test]
    async fn forbidden_namespaces_answer_403_and_block_cluster_lists() {
        let org = Org::generate(&OrgSpec::small());
        let mut cluster = Cluster::from_org(&org, "prod");
        cluster.forbidden.insert("payments".into());
        let fake = KubeFake::start(cluster).await.unwrap();
        let (code, body) = get(&fake, "/apis/apps/v1/namespaces/payments/deployments").await;
        assert_eq!((code, body["reason"].as_str()), (403, Some("Forbidden")));
        assert_eq!(get(&fake, "/apis/apps/v1/deployments").await.0, 403);
        assert_eq!(
            get(&fake, "/apis/apps/v1/namespaces/billing/deployments")
                .await
                .0,
            200
        );
        assert_eq!(get(&fake, "/api/v1/namespaces").await.0, 200);
    }

    #[test]
    fn every_live_repo_runs_somewhere() {
        let org = Org::generate(&OrgSpec::small());
        let c = Cluster::from_org(&org, "prod");
        let workloads: usize = ["deployments", "statefulsets", "daemonsets", "cronjobs"]
            .iter()
            .map(|r| c.names(r).len())
            .sum();
        assert_eq!(
            workloads,
            org.repos.len() + 3,
            "plus coredns and two legacy batches"
        );
        assert_ne!(
            c.uid("deployments", "a", "b"),
            c.uid("deployments", "a", "c")
        );
    }

    /// An open watch, read line by line.
    struct Watch {
        response: reqwest::Response,
        buffer: Vec<u8>,
    }

    impl Watch {
        async fn open(fake: &KubeFake, query: &str) -> Self {
            let response = reqwest::Client::new()
                .get(format!("{}/apis/apps/v1/deployments?{query}", fake.url()))
                .bearer_auth(KUBE_TOKEN)
                .send()
                .await
                .unwrap();
            assert_eq!(response.status().as_u16(), 200, "a watch answers 200");
            Self {
                response,
                buffer: Vec::new(),
            }
        }

        /// The next event; `Ok(None)` when the stream ended cleanly.
        async fn next(&mut self) -> Result<Option<Value>, reqwest::Error> {
            loop {
                if let Some(end) = self.buffer.iter().position(|b| *b == b'\n') {
                    let line: Vec<u8> = self.buffer.drain(..=end).collect();
                    return Ok(Some(serde_json::from_slice(&line).unwrap()));
                }
                let chunk = tokio::time::timeout(Duration::from_secs(20), self.response.chunk())
                    .await
                    .expect("the watch sent nothing in 20 s")?;
                match chunk {
                    Some(bytes) => self.buffer.extend_from_slice(&bytes),
                    None => return Ok(None),
                }
            }
        }

        async fn event(&mut self) -> (String, String, u64) {
            let e = self.next().await.unwrap().expect("an event");
            let object = &e["object"];
            let version = object["metadata"]["resourceVersion"]
                .as_str()
                .unwrap()
                .parse()
                .unwrap();
            let name = object["metadata"]["name"]
                .as_str()
                .unwrap_or("")
                .to_string();
            (e["type"].as_str().unwrap().to_string(), name, version)
        }
    }

    async fn list_version(fake: &KubeFake) -> u64 {
        let (code, list) = get(fake, "/apis/apps/v1/deployments").await;
        assert_eq!(code, 200);
        list["metadata"]["resourceVersion"]
            .as_str()
            .unwrap()
            .parse()
            .unwrap()
    }

    fn change(c: &mut Cluster) {
        c.add_deployment("payments", "new-api", json!({"app": "new-api"}), "x:1");
        c.set_label("deployments", "payments", "new-api", "team", "a");
        c.delete("deployments", "payments", "new-api");
    }

    #[tokio::test]
    async fn watches_stream_changes_after_a_version_and_410_once_it_is_forgotten() {
        let org = Org::generate(&OrgSpec::small());
        let fake = KubeFake::start(Cluster::from_org(&org, "prod"))
            .await
            .unwrap();
        let listed = list_version(&fake).await;
        let from = format!(
            "watch=true&resourceVersion={listed}&allowWatchBookmarks=true&timeoutSeconds=60"
        );
        let mut w = Watch::open(&fake, &from).await;
        // The namespace and a Service change too: a Deployment watch sees neither.
        fake.with_cluster(|c| {
            c.set_label("namespaces", "", "default", "team", "a");
            change(c);
        });
        let mut last = listed;
        for want in ["ADDED", "MODIFIED", "DELETED"] {
            let (event, name, version) = w.event().await;
            assert_eq!((event.as_str(), name.as_str()), (want, "new-api"));
            assert!(version > last, "versions increase: {version} after {last}");
            last = version;
        }
        assert_eq!(fake.with_cluster(|c| c.resource_version()), last);
        fake.bookmark();
        let mark = w.next().await.unwrap().unwrap();
        assert_eq!(mark["type"], "BOOKMARK");
        assert_eq!(mark["object"]["kind"], "Deployment");
        assert_eq!(
            mark["object"]["metadata"]["resourceVersion"],
            last.to_string()
        );

        // A watch from the listed version gets the same changes from the window, typed.
        let mut again = Watch::open(&fake, &from).await;
        let first = again.next().await.unwrap().unwrap();
        assert_eq!(
            (
                &first["type"],
                &first["object"]["kind"],
                &first["object"]["apiVersion"]
            ),
            (&json!("ADDED"), &json!("Deployment"), &json!("apps/v1"))
        );
        assert_eq!(fake.open_watches(), 2);
        assert_eq!(
            fake.stats().watches[0],
            ("deployments".into(), Some(listed.to_string()))
        );

        // The window moves on: open watches are told 410 and closed, old versions refused.
        fake.expire_watch_window();
        let error = w.next().await.unwrap().unwrap();
        assert_eq!(error["type"], "ERROR");
        assert_eq!(
            (&error["object"]["code"], &error["object"]["reason"]),
            (&json!(410), &json!("Expired"))
        );
        assert!(w.next().await.unwrap().is_none(), "closed after the error");
        let mut old = Watch::open(&fake, &from).await;
        let error = old.next().await.unwrap().unwrap();
        assert_eq!(error["object"]["code"], 410);
        assert!(
            error["object"]["message"]
                .as_str()
                .unwrap()
                .starts_with("too old resource version")
        );
        assert!(old.next().await.unwrap().is_none());
        assert_eq!(fake.stats().expired, 3);
        // From the current version, a watch works again.
        let now = list_version(&fake).await;
        let mut fresh = Watch::open(&fake, &format!("watch=1&resourceVersion={now}")).await;
        fake.with_cluster(|c| c.add_deployment("payments", "later", json!({}), "x:2"));
        assert_eq!(fresh.event().await.1, "later");
    }

    #[tokio::test]
    async fn a_watch_without_a_version_starts_with_what_there_is_and_ends_at_its_timeout() {
        let org = Org::generate(&OrgSpec::small());
        let cluster = Cluster::from_org(&org, "prod");
        let there = cluster.names("deployments").len();
        let fake = KubeFake::start(cluster).await.unwrap();
        let mut w = Watch::open(&fake, "watch=true&timeoutSeconds=1").await;
        let mut added = 0;
        while let Some(e) = w.next().await.unwrap() {
            assert_eq!(e["type"], "ADDED");
            added += 1;
        }
        assert_eq!(
            added, there,
            "one ADDED per object, then a clean end at the timeout"
        );
    }

    #[tokio::test]
    async fn knobs_drop_duplicate_and_reorder_changes_and_the_log_says_which() {
        let org = Org::generate(&OrgSpec::small());
        let fake = KubeFake::start(Cluster::from_org(&org, "prod"))
            .await
            .unwrap();
        let listed = list_version(&fake).await;
        let mut w = Watch::open(&fake, &format!("watch=true&resourceVersion={listed}")).await;
        fake.set_watch_knobs(WatchKnobs {
            drop: 1.0,
            ..WatchKnobs::reliable()
        });
        fake.with_cluster(|c| c.add_deployment("payments", "lost", json!({}), "x:1"));
        fake.set_watch_knobs(WatchKnobs {
            duplicate: 1.0,
            ..WatchKnobs::reliable()
        });
        fake.with_cluster(|c| c.add_deployment("payments", "twice", json!({}), "x:1"));
        // The dropped change never comes; the next one comes twice.
        assert_eq!(w.event().await.1, "twice");
        assert_eq!(w.event().await.1, "twice");
        let dropped = fake.dropped_changes();
        assert_eq!(dropped.len(), 1);
        assert_eq!(
            (
                dropped[0].name.as_str(),
                dropped[0].event,
                dropped[0].watchers
            ),
            ("lost", "ADDED", 1)
        );
        let log = fake.watch_log();
        assert_eq!(
            log.iter().map(|c| c.fate).collect::<Vec<_>>(),
            [Fate::Dropped, Fate::Duplicated]
        );

        fake.set_watch_knobs(WatchKnobs {
            reorder: true,
            seed: 7,
            ..WatchKnobs::reliable()
        });
        let names: Vec<String> = (0..6).map(|i| format!("batch-{i}")).collect();
        fake.with_cluster(|c| {
            for n in &names {
                c.add_deployment("payments", n, json!({}), "x:1");
            }
        });
        let mut got = Vec::new();
        for _ in &names {
            got.push(w.event().await.1);
        }
        assert_ne!(got, names, "shuffled");
        got.sort();
        assert_eq!(got, names, "all of them, once");

        // A delay is drawn from its range and recorded; the change still comes.
        fake.set_watch_knobs(WatchKnobs {
            delay: Duration::from_millis(1)..Duration::from_millis(5),
            ..WatchKnobs::reliable()
        });
        fake.with_cluster(|c| c.add_deployment("payments", "late", json!({}), "x:1"));
        assert_eq!(w.event().await.1, "late");
        let late = fake.watch_log().pop().unwrap();
        assert!(
            (Duration::from_millis(1)..Duration::from_millis(5)).contains(&late.delay),
            "{late:?}"
        );

        // A dropped change stays in the window: a watch from before it gets it.
        let mut again = Watch::open(&fake, &format!("watch=true&resourceVersion={listed}")).await;
        assert_eq!(again.event().await.1, "lost");
    }

    #[tokio::test]
    async fn a_cut_watch_ends_without_a_clean_end() {
        let org = Org::generate(&OrgSpec::small());
        let fake = KubeFake::start(Cluster::from_org(&org, "prod"))
            .await
            .unwrap();
        let listed = list_version(&fake).await;
        let mut w = Watch::open(&fake, &format!("watch=true&resourceVersion={listed}")).await;
        fake.with_cluster(|c| c.add_deployment("payments", "before-the-cut", json!({}), "x:1"));
        assert_eq!(w.event().await.1, "before-the-cut");
        assert_eq!(fake.open_watches(), 1);
        fake.cut_watches();
        assert!(w.next().await.is_err(), "the connection dropped mid-stream");
        assert_eq!(fake.open_watches(), 0);
    }

    #[tokio::test]
    async fn objects_are_read_one_by_one() {
        let org = Org::generate(&OrgSpec::small());
        let cluster = Cluster::from_org(&org, "prod");
        let (ns, name) = cluster
            .names("deployments")
            .into_iter()
            .find(|(ns, _)| ns != "kube-system")
            .unwrap();
        let fake = KubeFake::start(cluster).await.unwrap();
        let (code, d) = get(
            &fake,
            &format!("/apis/apps/v1/namespaces/{ns}/deployments/{name}"),
        )
        .await;
        assert_eq!(code, 200);
        assert_eq!(
            (&d["kind"], &d["metadata"]["name"]),
            (&json!("Deployment"), &json!(name))
        );
        let (code, e) = get(
            &fake,
            &format!("/apis/apps/v1/namespaces/{ns}/deployments/nothing"),
        )
        .await;
        assert_eq!((code, &e["reason"]), (404, &json!("NotFound")));
        assert_eq!(e["message"], "deployments.apps \"nothing\" not found");
        let (code, n) = get(&fake, &format!("/api/v1/namespaces/{ns}")).await;
        assert_eq!((code, &n["kind"]), (200, &json!("Namespace")));
        assert_eq!(fake.stats().gets, 3);
        fake.with_cluster(|c| c.forbidden.insert(ns.clone()));
        let (code, e) = get(
            &fake,
            &format!("/apis/apps/v1/namespaces/{ns}/deployments/{name}"),
        )
        .await;
        assert_eq!(code, 403);
        assert!(
            e["message"]
                .as_str()
                .unwrap()
                .contains("cannot get resource")
        );
    }
}
