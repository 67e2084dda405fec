//! A fake Kubernetes API server on loopback that serves the workloads of a simulated org: one
//! Deployment (or StatefulSet, DaemonSet, CronJob) and Service per service repository, in a
//! namespace per area, labelled the way teams label things. Lists page with `limit`/`continue`,
//! expired continue tokens answer `410 Gone`, namespaces can be forbidden (403), all in the JSON
//! shapes of a real API server (list items carry no `kind`/`apiVersion`; `Status` bodies).

use std::collections::{BTreeMap, BTreeSet};
use std::hash::{DefaultHasher, Hash, Hasher};

use axum::http::{HeaderMap, StatusCode, Uri};
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use serde_json::{Value, json};

use crate::org::{Org, Repo};
use crate::serve::{
    Fake, Fault, FaultAction, Faults, JsonApi, ValueAnswer, answer_json_api, header,
};

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
        meta["uid"] = json!(uid);
        meta["resourceVersion"] = json!(self.resource_version.to_string());
        meta["creationTimestamp"] = json!("2026-06-15T04:14:45Z");
        if meta.get("generation").is_none() && resource != "namespaces" && resource != "services" {
            meta["generation"] = json!(1);
        }
        self.objects
            .insert((resource.into(), ns.into(), name.into()), object);
    }

    /// Deletes an object; a later object of that name gets the same uid only if re-created.
    pub fn delete(&mut self, resource: &str, ns: &str, name: &str) -> bool {
        self.resource_version += 1;
        self.objects
            .remove(&(resource.into(), ns.into(), name.into()))
            .is_some()
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
        match self
            .objects
            .get_mut(&(resource.into(), ns.into(), name.into()))
        {
            Some(o) => {
                o["metadata"]["labels"][key] = json!(value);
                o["metadata"]["resourceVersion"] = json!(rv);
                true
            }
            None => false,
        }
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
}

/// A running fake API server for one cluster. Faults are by request path
/// (`/apis/apps/v1/deployments` is the cluster-wide list), a path prefix ending in `*`, or `*`;
/// `skip` counts matching requests, pages included. Dropping it stops it.
pub type KubeFake = Fake<KubeState, FaultAction, KubeStats>;

impl KubeFake {
    pub async fn start(cluster: Cluster) -> std::io::Result<Self> {
        let state = |_: &str| KubeState {
            cluster,
            expire_continues: 0,
            stats: KubeStats::default(),
            faults: Faults::default(),
            extra_tokens: Vec::new(),
        };
        Self::serve(state, answer_json_api, |s| &mut s.faults, |s| &mut s.stats).await
    }

    pub fn with_cluster<R>(&self, change: impl FnOnce(&mut Cluster) -> R) -> R {
        change(&mut self.server.lock().cluster)
    }

    /// The next `n` list requests with a continue token get `410 Gone` (the token expired).
    pub fn expire_continues(&self, n: usize) {
        self.server.lock().expire_continues = n;
    }

    /// Accepts `token` as well as [`KUBE_TOKEN`] (tests with their own values).
    pub fn add_token(&self, token: &str) {
        self.server.lock().extra_tokens.push(token.to_string());
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

fn answer(s: &mut KubeState, uri: &Uri, headers: &HeaderMap) -> (StatusCode, Value) {
    s.stats.requests += 1;
    let path = uri.path().to_string();
    *s.stats.by_path.entry(path.clone()).or_default() += 1;
    let authorised = header(headers, "authorization")
        .and_then(|v| v.strip_prefix("Bearer "))
        .is_some_and(|t| t == KUBE_TOKEN || s.extra_tokens.iter().any(|e| e == t));
    if !authorised {
        return status(
            StatusCode::UNAUTHORIZED,
            "Unauthorized",
            "Unauthorized".into(),
            json!({}),
        );
    }
    let params: BTreeMap<String, String> = uri
        .query()
        .unwrap_or_default()
        .split('&')
        .filter_map(|kv| kv.split_once('='))
        .map(|(k, v)| (k.to_string(), percent_decode(v)))
        .collect();
    // /api/v1/{resource}, /api/v1/namespaces/{ns}/{resource}, /apis/{group}/{version}/...
    let Some((base, rest)) = RESOURCES
        .iter()
        .filter_map(|(_, base, _)| path.strip_prefix(base).map(|rest| (*base, rest)))
        .next()
    else {
        return not_found();
    };
    let segments: Vec<&str> = rest.trim_matches('/').split('/').collect();
    let (namespace, resource) = match segments.as_slice() {
        [resource] => (None, *resource),
        ["namespaces", ns, resource] => (Some(ns.to_string()), *resource),
        _ => {
            return not_found();
        }
    };
    let Some((_, _, kind)) = RESOURCES
        .iter()
        .find(|(r, b, _)| *r == resource && *b == base)
    else {
        return not_found();
    };
    let group = base
        .trim_start_matches("/apis/")
        .trim_start_matches("/api/");
    let group_name = group
        .split('/')
        .next()
        .filter(|g| g.contains('.') || *g == "apps" || *g == "batch")
        .unwrap_or("");
    let forbidden = match &namespace {
        Some(ns) => s.cluster.forbidden.contains(ns),
        // Listing across namespaces needs rights in all of them.
        None => resource != "namespaces" && !s.cluster.forbidden.is_empty(),
    };
    if forbidden {
        s.stats.forbidden += 1;
        let scope = match &namespace {
            Some(ns) => format!("in the namespace \"{ns}\""),
            None => "at the cluster scope".into(),
        };
        let group_desc = if group_name.is_empty() {
            String::new()
        } else {
            format!(".{group_name}")
        };
        return status(
            StatusCode::FORBIDDEN,
            "Forbidden",
            format!(
                "{resource}{group_desc} is forbidden: User \"system:serviceaccount:surveyor:surveyor\" cannot list resource \"{resource}\" in API group \"{group_name}\" {scope}"
            ),
            json!({"group": group_name, "kind": resource}),
        );
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
}
