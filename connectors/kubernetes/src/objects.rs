//! Reading the typed k8s-openapi objects into the mapping's neutral [`Object`]: metadata, plus
//! the facts worth keeping per kind (images, replicas, schedule, ports, hosts).

use std::collections::BTreeMap;

use k8s_openapi::api::apps::v1::{DaemonSet, Deployment, StatefulSet};
use k8s_openapi::api::batch::v1::CronJob;
use k8s_openapi::api::core::v1::{Namespace, PodTemplateSpec, Service};
use k8s_openapi::api::networking::v1::Ingress;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use serde_json::{Map, Value, json};

use crate::map::Object;

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
            o.facts.insert(
                "serviceType".into(),
                json!(spec.type_.clone().unwrap_or_else(|| "ClusterIP".into())),
            );
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

#[cfg(test)]
mod tests {
    use super::*;

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
