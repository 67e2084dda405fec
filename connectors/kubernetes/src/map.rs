//! From Kubernetes objects to catalog entities: workloads, Services and Ingresses become
//! Resources tied to the Component they implement, the System they are part of and the group
//! that owns them; Namespaces may become Systems. All of it is read from labels and annotations.

use std::collections::BTreeMap;

use k8s_openapi::api::apps::v1::{DaemonSet, Deployment, StatefulSet};
use k8s_openapi::api::batch::v1::CronJob;
use k8s_openapi::api::core::v1::{Namespace, PodTemplateSpec, Service, ServiceSpec};
use k8s_openapi::api::networking::v1::Ingress;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use serde_json::{Map, Value, json};
use surveyor_model::Entity;
use surveyor_model::validate::{is_valid_label_key, is_valid_label_value};

use crate::config::Settings;

/// The parts of any object the mapping reads.
#[derive(Debug, Clone, Default)]
pub struct Object {
    /// `Deployment`, `StatefulSet`, `DaemonSet`, `CronJob`, `Service`, `Ingress`, `Namespace`.
    pub kind: &'static str,
    pub name: String,
    pub namespace: String,
    pub uid: String,
    pub labels: BTreeMap<String, String>,
    pub annotations: BTreeMap<String, String>,
    /// Kind-specific facts for `spec` (images, replicas, schedule, ports, hosts).
    pub facts: Map<String, Value>,
}

impl Object {
    fn label_or_annotation(&self, key: &str) -> Option<&str> {
        self.labels
            .get(key)
            .or_else(|| self.annotations.get(key))
            .map(String::as_str)
            .filter(|v| !v.trim().is_empty())
    }
}

// ---------------------------------------------------------------------------------------------
// Reading the typed k8s-openapi objects into [`Object`]: metadata, plus the facts worth keeping
// per kind (images, replicas, schedule, ports, hosts).

/// A listable kind the connector reads.
pub trait ToObject:
    kube::Resource<Scope = k8s_openapi::NamespaceResourceScope, DynamicType = ()>
    + Clone
    + std::fmt::Debug
    + serde::de::DeserializeOwned
    + Send
    + Sync
    + 'static
{
    const PLURAL: &'static str;
    fn to_object(&self) -> Object;
}

fn base(kind: &'static str, meta: &ObjectMeta) -> Object {
    Object {
        kind,
        name: meta.name.clone().unwrap_or_default(),
        namespace: meta.namespace.clone().unwrap_or_default(),
        uid: meta.uid.clone().unwrap_or_default(),
        labels: meta.labels.clone().unwrap_or_default(),
        annotations: meta.annotations.clone().unwrap_or_default(),
        facts: Map::new(),
    }
}

/// Container and init-container images, in order, without repeats.
fn images(template: Option<&PodTemplateSpec>) -> Vec<String> {
    let Some(spec) = template.and_then(|t| t.spec.as_ref()) else {
        return Vec::new();
    };
    let mut out: Vec<String> = Vec::new();
    for c in spec
        .init_containers
        .iter()
        .flatten()
        .chain(spec.containers.iter())
    {
        if let Some(image) = &c.image
            && !out.contains(image)
        {
            out.push(image.clone());
        }
    }
    out
}

fn with_images(mut o: Object, template: Option<&PodTemplateSpec>) -> Object {
    o.facts.insert("images".into(), json!(images(template)));
    o
}

impl ToObject for Deployment {
    const PLURAL: &'static str = "deployments";
    fn to_object(&self) -> Object {
        let spec = self.spec.as_ref();
        let mut o = with_images(
            base("Deployment", &self.metadata),
            spec.map(|s| &s.template),
        );
        o.facts.insert(
            "replicas".into(),
            json!(spec.and_then(|s| s.replicas).unwrap_or(1)),
        );
        o
    }
}

impl ToObject for StatefulSet {
    const PLURAL: &'static str = "statefulsets";
    fn to_object(&self) -> Object {
        let spec = self.spec.as_ref();
        let mut o = with_images(
            base("StatefulSet", &self.metadata),
            spec.map(|s| &s.template),
        );
        o.facts.insert(
            "replicas".into(),
            json!(spec.and_then(|s| s.replicas).unwrap_or(1)),
        );
        o
    }
}

impl ToObject for DaemonSet {
    const PLURAL: &'static str = "daemonsets";
    fn to_object(&self) -> Object {
        with_images(
            base("DaemonSet", &self.metadata),
            self.spec.as_ref().map(|s| &s.template),
        )
    }
}

impl ToObject for CronJob {
    const PLURAL: &'static str = "cronjobs";
    fn to_object(&self) -> Object {
        let s = &self.spec;
        let template = s.job_template.spec.as_ref().map(|j| &j.template);
        let mut o = with_images(base("CronJob", &self.metadata), template);
        o.facts.insert("schedule".into(), json!(s.schedule));
        o.facts
            .insert("suspended".into(), json!(s.suspend.unwrap_or(false)));
        o
    }
}

impl ToObject for Service {
    const PLURAL: &'static str = "services";
    fn to_object(&self) -> Object {
        let mut o = base("Service", &self.metadata);
        if let Some(spec) = &self.spec {
            o.facts
                .insert("serviceType".into(), json!(service_type(spec)));
            let ports: Vec<Value> = spec
                .ports
                .iter()
                .flatten()
                .map(|p| json!({"port": p.port, "protocol": p.protocol.clone().unwrap_or_else(|| "TCP".into())}))
                .collect();
            o.facts.insert("ports".into(), Value::Array(ports));
            let selector: BTreeMap<String, String> = spec.selector.clone().unwrap_or_default();
            o.facts.insert("selector".into(), json!(selector));
        }
        o
    }
}

/// The Service's `type`, except that a ClusterIP Service without a cluster IP is `Headless`:
/// "you can create what are termed headless Services, by explicitly specifying "None" for the
/// cluster IP address (.spec.clusterIP)", and for them "a cluster IP is not allocated, kube-proxy
/// does not handle these Services" (https://kubernetes.io/docs/concepts/services-networking/service/#headless-services).
fn service_type(spec: &ServiceSpec) -> String {
    let type_ = spec.type_.as_deref().unwrap_or("ClusterIP");
    let ip = spec
        .cluster_ip
        .as_deref()
        .or_else(|| spec.cluster_ips.as_ref()?.first().map(String::as_str));
    if type_ == "ClusterIP" && ip == Some("None") {
        "Headless".into()
    } else {
        type_.into()
    }
}

impl ToObject for Ingress {
    const PLURAL: &'static str = "ingresses";
    fn to_object(&self) -> Object {
        let mut o = base("Ingress", &self.metadata);
        let hosts: Vec<String> = self
            .spec
            .iter()
            .flat_map(|s| s.rules.iter().flatten())
            .filter_map(|r| r.host.clone())
            .collect();
        o.facts.insert("hosts".into(), json!(hosts));
        o
    }
}

/// Namespaces are cluster-scoped, so they are read on their own (not through [`ToObject`]).
pub fn namespace_object(ns: &Namespace) -> Object {
    base("Namespace", &ns.metadata)
}

// ---------------------------------------------------------------------------------------------
// From objects to entities

/// The recommended label that names the application an object belongs to ("The name of the
/// application", e.g. `mysql`). Of the others, `part-of` names "a higher level application this
/// one is part of" (a System, see [`system_of`]) and `instance` "A unique name identifying the
/// instance of an application" (`mysql-abcxzy`, one installation): neither names the component
/// (https://kubernetes.io/docs/concepts/overview/working-with-objects/common-labels/).
pub const NAME_LABEL: &str = "app.kubernetes.io/name";
pub const PART_OF_LABEL: &str = "app.kubernetes.io/part-of";

/// Where the component name was found, for the `surveyor.dev/kubernetes-component-from`
/// annotation (auditors ask "why is this workload linked to that component?"):
/// `backstage.io/kubernetes-id`, then `app.kubernetes.io/name`, then the configured keys.
pub fn component_of<'a>(o: &'a Object, settings: &'a Settings) -> Option<(&'a str, String)> {
    if let Some(id) = o
        .annotations
        .get("backstage.io/kubernetes-id")
        .or_else(|| o.labels.get("backstage.io/kubernetes-id"))
        .filter(|v| !v.trim().is_empty())
    {
        return Some(("backstage.io/kubernetes-id", id.clone()));
    }
    std::iter::once(NAME_LABEL)
        .chain(settings.component_keys.iter().map(String::as_str))
        .find_map(|k| {
            o.labels
                .get(k)
                .filter(|v| !v.trim().is_empty())
                .map(|v| (k, v.clone()))
        })
}

/// The System the object is part of: the application its `app.kubernetes.io/part-of` label
/// names, as a `system:` ref in the catalog namespace, else (with `namespace_as_system`) its
/// namespace's System. The label is the more specific of the two, so it wins.
pub fn system_of(o: &Object, settings: &Settings) -> Option<String> {
    let part_of = o
        .labels
        .get(PART_OF_LABEL)
        .and_then(|v| entity_name(v.trim()));
    match part_of {
        Some(app) => Some(format!("system:{}/{app}", settings.namespace)),
        None if settings.namespace_as_system => entity_name(&o.namespace),
        None => None,
    }
}

/// The owning group named by the object's (or else its namespace's) owner keys, as a ref.
pub fn owner_of(o: &Object, namespace: Option<&Object>, settings: &Settings) -> Option<String> {
    let value = settings
        .owner_keys
        .iter()
        .find_map(|k| o.label_or_annotation(k))
        .or_else(|| {
            let ns = namespace?;
            settings
                .owner_keys
                .iter()
                .find_map(|k| ns.label_or_annotation(k))
        })?;
    owner_ref(value, &settings.namespace)
}

/// `team-a` -> `group:<ns>/team-a`; a value that is already a ref (`user:bob`) stays one.
pub fn owner_ref(value: &str, namespace: &str) -> Option<String> {
    if value.contains(':') {
        return Some(value.to_string());
    }
    entity_name(value).map(|n| format!("group:{namespace}/{n}"))
}

/// One naming rule for every source, so the same thing named in two tools is one entity.
pub use surveyor_model::names::entity_name;

/// The Resource for a workload, Service or Ingress in `cluster`.
pub fn resource(
    o: &Object,
    namespace: Option<&Object>,
    cluster: &str,
    settings: &Settings,
) -> Option<Entity> {
    let infix = match o.kind {
        "Service" => ".svc",
        "Ingress" => ".ing",
        _ => "",
    };
    let name = entity_name(&format!("{}{infix}.{}.{}", o.name, o.namespace, cluster))?;
    let mut e = Entity::new("Resource", &settings.namespace, &name);
    e.metadata.title = Some(format!("{} {}/{} ({cluster})", o.kind, o.namespace, o.name));
    for (k, v) in &o.labels {
        if is_valid_label_key(k) && is_valid_label_value(v) {
            e.metadata.labels.insert(k.clone(), v.clone());
        }
    }
    let a = &mut e.metadata.annotations;
    a.insert("surveyor.dev/kubernetes-cluster".into(), cluster.into());
    a.insert(
        "backstage.io/kubernetes-namespace".into(),
        o.namespace.clone(),
    );
    let component = component_of(o, settings);
    if let Some((from, id)) = &component {
        a.insert("backstage.io/kubernetes-id".into(), id.clone());
        a.insert(
            "surveyor.dev/kubernetes-component-from".into(),
            (*from).to_string(),
        );
    }
    let spec = &mut e.spec;
    spec.insert(
        "type".into(),
        json!(match o.kind {
            "Service" => "kubernetes-service",
            "Ingress" => "kubernetes-ingress",
            _ => "kubernetes-workload",
        }),
    );
    if let Some(owner) = owner_of(o, namespace, settings) {
        spec.insert("owner".into(), json!(owner));
    }
    if let Some(component) = component.and_then(|(_, id)| entity_name(&id)) {
        spec.insert(
            "dependencyOf".into(),
            json!([format!("component:{}/{component}", settings.namespace)]),
        );
    }
    if let Some(system) = system_of(o, settings) {
        spec.insert("system".into(), json!(system));
    }
    spec.insert("cluster".into(), json!(cluster));
    spec.insert("namespace".into(), json!(o.namespace));
    spec.insert("kind".into(), json!(o.kind));
    for (k, v) in &o.facts {
        spec.insert(k.clone(), v.clone());
    }
    Some(e)
}

/// A Namespace as a System (when `namespace_as_system`).
pub fn system(ns: &Object, cluster: &str, settings: &Settings) -> Option<Entity> {
    let name = entity_name(&ns.name)?;
    let mut e = Entity::new("System", &settings.namespace, &name);
    e.metadata.description = Some(format!("Kubernetes namespace {}", ns.name));
    e.metadata
        .annotations
        .insert("backstage.io/kubernetes-namespace".into(), ns.name.clone());
    e.metadata
        .annotations
        .insert("surveyor.dev/kubernetes-cluster".into(), cluster.into());
    if let Some(owner) = owner_of(ns, None, settings) {
        e.spec.insert("owner".into(), json!(owner));
    }
    Some(e)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::KubernetesConfig;

    fn settings(extra: &str) -> Settings {
        let config: KubernetesConfig =
            toml::from_str(&format!("contexts = [\"prod\"]\n{extra}")).unwrap();
        config.settings(std::path::Path::new("/")).unwrap()
    }

    fn object(labels: &[(&str, &str)], annotations: &[(&str, &str)]) -> Object {
        Object {
            kind: "Deployment",
            name: "payments-api-7f9c".into(),
            namespace: "payments".into(),
            uid: "u1".into(),
            labels: labels
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
            annotations: annotations
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
            facts: Map::new(),
        }
    }

    fn component(o: &Object, s: &Settings) -> Option<(String, String)> {
        component_of(o, s).map(|(k, v)| (k.to_string(), v))
    }

    #[test]
    fn the_backstage_annotation_names_the_component_first() {
        let s = settings("");
        let o = object(
            &[("app.kubernetes.io/name", "from-label")],
            &[("backstage.io/kubernetes-id", "payments-api")],
        );
        assert_eq!(
            component(&o, &s),
            Some(("backstage.io/kubernetes-id".into(), "payments-api".into()))
        );
        let e = resource(&o, None, "prod", &s).unwrap();
        assert_eq!(
            e.spec["dependencyOf"],
            json!(["component:default/payments-api"])
        );
    }

    #[test]
    fn only_the_name_label_of_the_recommended_ones_names_the_component() {
        let s = settings("");
        let all = object(
            &[
                ("app.kubernetes.io/instance", "i"),
                ("app.kubernetes.io/part-of", "p"),
                ("app.kubernetes.io/name", "n"),
            ],
            &[],
        );
        assert_eq!(
            component(&all, &s),
            Some(("app.kubernetes.io/name".into(), "n".into()))
        );
        let two = object(
            &[
                ("app.kubernetes.io/instance", "i"),
                ("app.kubernetes.io/part-of", "p"),
            ],
            &[],
        );
        assert_eq!(component(&two, &s), None);
        // A team that does use `instance` for the component can say so.
        let s = settings("component_keys = [\"app.kubernetes.io/instance\"]");
        assert_eq!(component(&two, &s).unwrap().1, "i");
    }

    #[test]
    fn configured_keys_come_last_and_nothing_means_no_component() {
        let s = settings("component_keys = [\"app\"]");
        let o = object(&[("app", "legacy")], &[]);
        assert_eq!(component(&o, &s), Some(("app".into(), "legacy".into())));
        assert_eq!(component(&o, &settings("")), None);
        let e = resource(&o, None, "prod", &settings("")).unwrap();
        assert!(!e.spec.contains_key("dependencyOf"));
    }

    #[test]
    fn owners_from_labels_annotations_then_the_namespace() {
        let s = settings("");
        for (labels, annotations, want) in [
            (
                vec![("owner", "Team-A")],
                vec![],
                Some("group:default/team-a"),
            ),
            (
                vec![("team", "b")],
                vec![("owner", "a")],
                Some("group:default/a"),
            ),
            (
                vec![("app.kubernetes.io/owner", "c")],
                vec![],
                Some("group:default/c"),
            ),
            (
                vec![("owner", "user:default/dana")],
                vec![],
                Some("user:default/dana"),
            ),
            (vec![], vec![], None),
        ] {
            let o = object(&labels, &annotations);
            assert_eq!(
                owner_of(&o, None, &s).as_deref(),
                want,
                "{labels:?} {annotations:?}"
            );
        }
        let ns = object(&[("team", "platform")], &[]);
        assert_eq!(
            owner_of(&object(&[], &[]), Some(&ns), &s).as_deref(),
            Some("group:default/platform")
        );
        let custom = settings("owner_keys = [\"example.com/squad\"]");
        let o = object(&[("owner", "x")], &[("example.com/squad", "y")]);
        assert_eq!(
            owner_of(&o, None, &custom).as_deref(),
            Some("group:default/y")
        );
    }

    #[test]
    fn names_are_unique_per_cluster_namespace_and_kind() {
        let s = settings("namespace_as_system = true");
        let mut o = object(&[("app.kubernetes.io/name", "payments-api")], &[]);
        let w = resource(&o, None, "prod", &s).unwrap();
        assert_eq!(w.metadata.name, "payments-api-7f9c.payments.prod");
        assert_eq!(w.spec["system"], "payments");
        assert_eq!(w.metadata.labels["app.kubernetes.io/name"], "payments-api");
        o.kind = "Service";
        assert_eq!(
            resource(&o, None, "prod", &s).unwrap().metadata.name,
            "payments-api-7f9c.svc.payments.prod"
        );
        let long = entity_name(&"x".repeat(100)).unwrap();
        assert_eq!(long.len(), 63);
        assert_ne!(long, entity_name(&("x".repeat(99) + "y")).unwrap());
    }

    /// A DeploymentList in the API server's shape: list items without `kind`/`apiVersion`,
    /// `intOrString` fields of both types, an init container.
    const LIST: &str = r#"{"kind":"DeploymentList","apiVersion":"apps/v1","metadata":{"resourceVersion":"9120"},
      "items":[{"metadata":{"name":"checkout-api","namespace":"checkout","uid":"3f1c2a9e-7d44-4c1b-9d1e-0b6a2f1e8c55",
        "resourceVersion":"9001","generation":4,"creationTimestamp":"2026-05-02T08:00:00Z",
        "labels":{"app.kubernetes.io/name":"checkout-api"},"annotations":{"deployment.kubernetes.io/revision":"4"}},
        "spec":{"replicas":3,"selector":{"matchLabels":{"app.kubernetes.io/name":"checkout-api"}},
          "template":{"metadata":{"labels":{"app.kubernetes.io/name":"checkout-api"}},"spec":{
            "initContainers":[{"name":"migrate","image":"ghcr.io/acme/checkout-migrations:41"}],
            "containers":[{"name":"api","image":"ghcr.io/acme/checkout-api:1.8.2","ports":[{"containerPort":8080}]},
                          {"name":"proxy","image":"envoyproxy/envoy:v1.31.0"}]}},
          "strategy":{"type":"RollingUpdate","rollingUpdate":{"maxUnavailable":1,"maxSurge":"25%"}},
          "revisionHistoryLimit":10,"progressDeadlineSeconds":600},
        "status":{"observedGeneration":4,"replicas":3,"readyReplicas":3,"availableReplicas":3}}]}"#;

    #[test]
    fn reads_a_deployment_list() {
        let list: kube::core::ObjectList<Deployment> = serde_json::from_str(LIST).unwrap();
        let o = list.items[0].to_object();
        assert_eq!(
            (o.kind, o.name.as_str(), o.namespace.as_str()),
            ("Deployment", "checkout-api", "checkout")
        );
        assert_eq!(o.uid, "3f1c2a9e-7d44-4c1b-9d1e-0b6a2f1e8c55");
        assert_eq!(o.labels["app.kubernetes.io/name"], "checkout-api");
        assert_eq!(
            o.facts["images"],
            json!([
                "ghcr.io/acme/checkout-migrations:41",
                "ghcr.io/acme/checkout-api:1.8.2",
                "envoyproxy/envoy:v1.31.0"
            ])
        );
        assert_eq!(o.facts["replicas"], 3);
    }
}
