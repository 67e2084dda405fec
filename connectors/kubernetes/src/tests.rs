//! The connector against the fake API server: clusters, namespaces, paging, 410, 403, a
//! cluster that is down; and the mapping of Kubernetes' recommended labels and Service types
//! checked against Kubernetes' own documentation.

use serde_json::{Value, json};
use surveyor_model::{Collected, Entity, ScopeStatus};
use surveyor_sim::{Cluster, KubeFake, Org, OrgSpec};

use super::*;

async fn crawl(c: &KubernetesConnector) -> Collected {
    Collected::crawl(c).await.unwrap()
}

fn connector(dir: &Path, clusters: &[(&str, &str)], extra: &str) -> KubernetesConnector {
    std::fs::write(dir.join("kubeconfig"), KubeFake::kubeconfig(clusters)).unwrap();
    let names: Vec<String> = clusters.iter().map(|(n, _)| format!("{n:?}")).collect();
    let toml = format!(
        "contexts = [{}]\nkubeconfig = \"kubeconfig\"\ntimeout_secs = 5\n{extra}",
        names.join(", ")
    );
    KubernetesConnector::new("k8s", toml::from_str(&toml).unwrap(), dir).unwrap()
}

const LISTED: [&str; 5] = [
    "deployments",
    "statefulsets",
    "daemonsets",
    "cronjobs",
    "services",
];

/// Workloads and Services the fake runs outside system namespaces.
fn expected_resources(cluster: &Cluster) -> usize {
    LISTED
        .iter()
        .flat_map(|r| cluster.names(r))
        .filter(|(ns, _)| !SYSTEM_NAMESPACES.contains(&ns.as_str()))
        .count()
}

/// Each object the fake serves outside system namespaces, with the entity crawled for it.
fn objects_and_entities<'a>(
    cluster: &'a Cluster,
    got: &'a Collected,
) -> Vec<(&'a Value, &'a Entity)> {
    let mut out = Vec::new();
    for resource in LISTED {
        let infix = if resource == "services" { ".svc" } else { "" };
        for (ns, name) in cluster.names(resource) {
            if SYSTEM_NAMESPACES.contains(&ns.as_str()) {
                continue;
            }
            let object = cluster.object(resource, &ns, &name).expect("listed");
            let want = map::entity_name(&format!("{name}{infix}.{ns}.{}", cluster.name));
            let entity = got
                .observations
                .iter()
                .map(|o| &o.entity)
                .find(|e| Some(&e.metadata.name) == want.as_ref())
                .unwrap_or_else(|| panic!("{resource} {ns}/{name} was crawled"));
            out.push((object, entity));
        }
    }
    out
}

#[tokio::test]
async fn every_cluster_namespace_and_workload() {
    let org = Org::generate(&OrgSpec::small());
    let prod = Cluster::from_org(&org, "prod");
    let want = expected_resources(&prod);
    let a = KubeFake::start(prod.clone()).await.unwrap();
    let b = KubeFake::start(Cluster::from_org(&org, "staging"))
        .await
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let c = connector(
        dir.path(),
        &[("prod", a.url()), ("staging", b.url())],
        "page_size = 7",
    );
    let got = crawl(&c).await;
    assert!(
        got.outcome.scopes.values().all(ScopeStatus::is_complete),
        "{:?}",
        got.outcome
    );
    assert!(got.outcome.is_enumerated("prod/payments"));
    assert_eq!(got.observations.len(), 2 * want);
    let namespaces: BTreeSet<&str> = got.observations.iter().map(|o| o.scope.as_str()).collect();
    assert!(namespaces.contains("prod/payments") && namespaces.contains("staging/default"));
    assert!(
        !namespaces.iter().any(|s| s.ends_with("/kube-system")),
        "system namespaces skipped"
    );
    // One list per kind across the cluster, paged by 7.
    assert!(a.stats().by_path["/apis/apps/v1/deployments"] > 1);
    assert!(!a.stats().by_path.keys().any(|p| p.contains("/namespaces/")));

    // A workload names its component by `backstage.io/kubernetes-id` or `app.kubernetes.io/name`
    // (the fake gives some an `app.kubernetes.io/instance` too, which names an installation,
    // never a component); `app.kubernetes.io/part-of` names its System.
    let (mut named, mut instances, mut part_of) = (0, 0, 0);
    for (object, entity) in objects_and_entities(&prod, &got) {
        let labels = &object["metadata"]["labels"];
        let id = object["metadata"]["annotations"]["backstage.io/kubernetes-id"]
            .as_str()
            .or_else(|| labels["app.kubernetes.io/name"].as_str());
        let linked = entity.spec.get("dependencyOf");
        match id {
            Some(id) => {
                named += 1;
                assert_eq!(
                    linked,
                    Some(&json!([format!("component:default/{id}")])),
                    "{object}"
                );
            }
            None => assert_eq!(linked, None, "{object}"),
        }
        if let Some(instance) = labels["app.kubernetes.io/instance"].as_str() {
            assert_eq!(
                entity.metadata.labels.get("app.kubernetes.io/instance"),
                Some(&instance.to_string()),
                "the instance stays a label"
            );
            instances += 1;
            assert_ne!(
                linked,
                Some(&json!([format!("component:default/{instance}")])),
                "an instance names no component: {object}"
            );
        }
        match labels["app.kubernetes.io/part-of"].as_str() {
            Some(app) => {
                part_of += 1;
                assert_eq!(
                    entity.spec_str("system"),
                    Some(format!("system:default/{app}").as_str())
                );
            }
            None => assert_eq!(entity.spec_str("system"), None, "{object}"),
        }
    }
    assert!(
        named > 0 && instances > 0 && part_of > 0,
        "the fake labels each way: {named} {instances} {part_of}"
    );
    let repo = &org.repos[1];
    let w = got
        .observations
        .iter()
        .find(|o| {
            o.entity
                .metadata
                .name
                .starts_with(&format!("{}.", repo.name))
                && o.scope.starts_with("prod/")
        })
        .expect("the repo's workload");
    assert_eq!(
        w.entity.spec["dependencyOf"],
        serde_json::json!([format!("component:default/{}", repo.name)])
    );
    assert_eq!(
        w.entity.spec_str("owner"),
        Some(format!("group:default/{}", org.teams[repo.owner_team].slug).as_str())
    );
    assert!(
        w.entity.spec["images"][0]
            .as_str()
            .unwrap()
            .starts_with(&format!("ghcr.io/acme/{}:", repo.name))
    );
    let legacy = got
        .observations
        .iter()
        .find(|o| o.entity.metadata.name == "legacy-batch-0.default.prod")
        .expect("unowned workloads are catalogued too");
    assert!(!legacy.entity.spec.contains_key("owner"));
}

#[tokio::test]
async fn an_expired_continue_token_restarts_the_list_once() {
    let org = Org::generate(&OrgSpec::small());
    let cluster = Cluster::from_org(&org, "prod");
    let want = expected_resources(&cluster);
    let fake = KubeFake::start(cluster).await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let c = connector(dir.path(), &[("prod", fake.url())], "page_size = 5");
    fake.expire_continues(1);
    let got = crawl(&c).await;
    assert_eq!(got.outcome.status("prod"), Some(&ScopeStatus::Complete));
    assert_eq!(got.observations.len(), want);
    assert_eq!(fake.stats().gone, 1);

    fake.expire_continues(2);
    let got = crawl(&c).await;
    let Some(ScopeStatus::Failed { reason }) = got.outcome.status("prod") else {
        panic!("{:?}", got.outcome);
    };
    assert!(reason.contains("410"), "{reason}");
    assert!(
        !got.outcome.is_enumerated("prod/payments"),
        "a failed cluster lists nothing"
    );
}

#[tokio::test]
async fn a_forbidden_namespace_is_partial_and_the_others_complete() {
    let org = Org::generate(&OrgSpec::small());
    let mut cluster = Cluster::from_org(&org, "prod");
    cluster.forbidden.insert("payments".into());
    let fake = KubeFake::start(cluster).await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let got = crawl(&connector(dir.path(), &[("prod", fake.url())], "")).await;
    let Some(ScopeStatus::Partial { reason }) = got.outcome.status("prod/payments") else {
        panic!("{:?}", got.outcome);
    };
    assert!(reason.contains("forbidden"), "{reason}");
    assert_eq!(
        got.outcome.status("prod/billing"),
        Some(&ScopeStatus::Complete)
    );
    assert!(got.observations.iter().all(|o| o.scope != "prod/payments"));
    assert!(
        fake.stats()
            .by_path
            .contains_key("/apis/apps/v1/namespaces/billing/deployments")
    );
}

#[tokio::test]
async fn a_cluster_that_is_down_fails_alone() {
    let org = Org::generate(&OrgSpec::small());
    let up = KubeFake::start(Cluster::from_org(&org, "prod"))
        .await
        .unwrap();
    // A port nobody listens on.
    let closed = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        format!("http://{}", l.local_addr().unwrap())
    };
    let dir = tempfile::tempdir().unwrap();
    let c = connector(dir.path(), &[("prod", up.url()), ("dr", &closed)], "");
    let got = crawl(&c).await;
    assert!(matches!(
        got.outcome.status("dr"),
        Some(ScopeStatus::Failed { .. })
    ));
    assert!(!got.outcome.is_enumerated("dr/x"));
    assert_eq!(got.outcome.status("prod"), Some(&ScopeStatus::Complete));
}

#[tokio::test]
async fn namespaces_become_systems_when_asked() {
    let org = Org::generate(&OrgSpec::small());
    let fake = KubeFake::start(Cluster::from_org(&org, "prod"))
        .await
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let got = crawl(&connector(
        dir.path(),
        &[("prod", fake.url())],
        "namespace_as_system = true\nexclude_namespaces = [\"default\"]",
    ))
    .await;
    let systems: Vec<&Observation> = got
        .observations
        .iter()
        .filter(|o| o.entity.kind == "System")
        .collect();
    assert!(systems.iter().any(|s| s.entity.metadata.name == "payments"));
    assert!(systems.iter().all(|s| s.scope == "prod"));
    assert!(!systems.iter().any(|s| s.entity.metadata.name == "default"));
    // The namespace's System, unless the workload's `part-of` label names its own.
    let in_payments = || {
        got.observations
            .iter()
            .filter(|o| o.scope == "prod/payments")
    };
    assert!(in_payments().count() > 0);
    for o in in_payments() {
        let want = match o.entity.metadata.labels.get("app.kubernetes.io/part-of") {
            Some(app) => format!("system:default/{app}"),
            None => "payments".to_string(),
        };
        assert_eq!(o.entity.spec_str("system"), Some(want.as_str()));
    }
    assert!(
        in_payments().any(|o| o.entity.spec_str("system") == Some("payments")),
        "some workloads say no part-of"
    );
}

#[test]
fn a_missing_context_or_kubeconfig_is_a_config_error() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("kubeconfig"),
        KubeFake::kubeconfig(&[("prod", "http://127.0.0.1:1")]),
    )
    .unwrap();
    let config: KubernetesConfig =
        toml::from_str("contexts = [\"prod\", \"nope\"]\nkubeconfig = \"kubeconfig\"").unwrap();
    let err = KubernetesConnector::new("k8s", config, dir.path())
        .err()
        .unwrap()
        .to_string();
    assert!(
        err.starts_with("contexts:") && err.contains("\"nope\""),
        "{err}"
    );
    let config: KubernetesConfig =
        toml::from_str("contexts = [\"prod\"]\nkubeconfig = \"missing\"").unwrap();
    let err = KubernetesConnector::new("k8s", config, dir.path())
        .err()
        .unwrap()
        .to_string();
    assert!(err.starts_with("kubeconfig: cannot read"), "{err}");
    assert!(!err.contains(surveyor_sim::KUBE_TOKEN));
}

// ---------------------------------------------------------------------------------------------
// Recommended labels and Service types, from Kubernetes' documentation.

fn settings(extra: &str) -> Settings {
    let config: KubernetesConfig =
        toml::from_str(&format!("contexts = [\"prod\"]\n{extra}")).unwrap();
    config.settings(Path::new("/")).unwrap()
}

/// The entity `object` (a typed object in the API server's JSON) maps to in cluster `prod`.
fn mapped<K: ToObject>(object: Value, extra: &str) -> Entity {
    let typed: K = serde_json::from_value(object).unwrap();
    map::resource(&typed.to_object(), None, "prod", &settings(extra)).unwrap()
}

fn stateful_set(labels: Value) -> Value {
    json!({
        "metadata": {"name": "mysql", "namespace": "blog", "uid": "u-mysql", "labels": labels},
        "spec": {
            "serviceName": "mysql",
            "selector": {"matchLabels": {"app.kubernetes.io/name": "mysql"}},
            "template": {
                "metadata": {"labels": {"app.kubernetes.io/name": "mysql"}},
                "spec": {"containers": [{"name": "mysql", "image": "mysql:5.7.21"}]}
            }
        }
    })
}

/// The MySQL StatefulSet of https://kubernetes.io/docs/concepts/overview/working-with-objects/common-labels/
/// ("Web Application With A Database"), labels as the page writes them. The page's table:
/// `app.kubernetes.io/name` is "The name of the application" (`mysql`), `instance` "A unique
/// name identifying the instance of an application", `part-of` "The name of a higher level
/// application this one is part of" (`wordpress`).
fn mysql_labels() -> Value {
    json!({
        "app.kubernetes.io/name": "mysql",
        "app.kubernetes.io/instance": "mysql-abcxzy",
        "app.kubernetes.io/version": "5.7.21",
        "app.kubernetes.io/managed-by": "helm",
        "app.kubernetes.io/component": "database",
        "app.kubernetes.io/part-of": "wordpress"
    })
}

#[test]
fn part_of_names_the_system_and_name_the_component() {
    let e = mapped::<StatefulSet>(stateful_set(mysql_labels()), "");
    assert_eq!(e.spec_str("system"), Some("system:default/wordpress"));
    assert_eq!(e.spec["dependencyOf"], json!(["component:default/mysql"]));
    assert_eq!(
        e.metadata.annotations["surveyor.dev/kubernetes-component-from"],
        "app.kubernetes.io/name"
    );
    // Refs live in the connector's catalog namespace, like the component and the owner.
    let e = mapped::<StatefulSet>(stateful_set(mysql_labels()), "namespace = \"k8s\"");
    assert_eq!(e.spec_str("system"), Some("system:k8s/wordpress"));
    assert_eq!(e.spec["dependencyOf"], json!(["component:k8s/mysql"]));
    // The label is more specific than the namespace's System.
    let e = mapped::<StatefulSet>(stateful_set(mysql_labels()), "namespace_as_system = true");
    assert_eq!(e.spec_str("system"), Some("system:default/wordpress"));

    // `part-of` alone names no component: the higher-level application is not this one.
    let only = json!({"app.kubernetes.io/part-of": "wordpress"});
    let e = mapped::<StatefulSet>(stateful_set(only.clone()), "");
    assert_eq!(e.spec_str("system"), Some("system:default/wordpress"));
    assert!(!e.spec.contains_key("dependencyOf"), "{:?}", e.spec);
    assert!(
        !e.metadata
            .annotations
            .contains_key("backstage.io/kubernetes-id")
    );

    // Without the label: the namespace's System when asked, else none.
    let none = json!({"app.kubernetes.io/name": "mysql"});
    let e = mapped::<StatefulSet>(stateful_set(none.clone()), "namespace_as_system = true");
    assert_eq!(e.spec_str("system"), Some("blog"));
    let e = mapped::<StatefulSet>(stateful_set(none), "");
    assert!(!e.spec.contains_key("system"));
}

#[test]
fn an_instance_is_one_installation_not_a_component() {
    // "WordPress can be installed more than once where different websites are different
    // installations of WordPress ... WordPress has a app.kubernetes.io/name of wordpress while
    // it has an instance name ... wordpress-abcxzy" (same page, "Applications And Instances").
    let deployment = |instance: &str, name: Option<&str>| {
        let mut labels = json!({"app.kubernetes.io/instance": instance});
        if let Some(n) = name {
            labels["app.kubernetes.io/name"] = json!(n);
        }
        json!({
            "metadata": {"name": instance, "namespace": "blog", "uid": instance, "labels": labels},
            "spec": {
                "selector": {"matchLabels": {"app.kubernetes.io/instance": instance}},
                "template": {"spec": {"containers": [{"name": "web", "image": "wordpress:4.9.4"}]}}
            }
        })
    };
    let a = mapped::<Deployment>(deployment("wordpress-abcxzy", Some("wordpress")), "");
    let b = mapped::<Deployment>(deployment("wordpress-defghi", Some("wordpress")), "");
    for e in [&a, &b] {
        assert_eq!(
            e.spec["dependencyOf"],
            json!(["component:default/wordpress"])
        );
    }
    assert_ne!(
        a.metadata.name, b.metadata.name,
        "two installations, two Resources"
    );
    assert_eq!(
        a.metadata.labels["app.kubernetes.io/instance"], "wordpress-abcxzy",
        "the installation is kept as a label"
    );

    // An instance alone names no component.
    let e = mapped::<Deployment>(deployment("mysql-abcxzy", None), "");
    assert!(!e.spec.contains_key("dependencyOf"), "{:?}", e.spec);
    assert!(
        !e.metadata
            .annotations
            .contains_key("surveyor.dev/kubernetes-component-from")
    );
    assert_eq!(
        e.metadata.labels["app.kubernetes.io/instance"],
        "mysql-abcxzy"
    );
    // Unless the operator says that is how their charts name things.
    let e = mapped::<Deployment>(
        deployment("mysql-abcxzy", None),
        "component_keys = [\"app.kubernetes.io/instance\"]",
    );
    assert_eq!(
        e.spec["dependencyOf"],
        json!(["component:default/mysql-abcxzy"])
    );
}

#[test]
fn a_headless_service_is_reported_headless() {
    // "you can create what are termed headless Services, by explicitly specifying "None" for
    // the cluster IP address (.spec.clusterIP)"; "For headless Services, a cluster IP is not
    // allocated" (https://kubernetes.io/docs/concepts/services-networking/service/#headless-services).
    let service = |spec: Value| {
        let mut spec = spec;
        spec["ports"] = json!([{"port": 3306, "protocol": "TCP"}]);
        spec["selector"] = json!({"app.kubernetes.io/name": "mysql"});
        let e = mapped::<Service>(
            json!({
                "metadata": {"name": "mysql", "namespace": "blog", "uid": "u-svc", "labels": mysql_labels()},
                "spec": spec
            }),
            "",
        );
        assert_eq!(e.spec_str("type"), Some("kubernetes-service"));
        assert_eq!(e.spec["ports"], json!([{"port": 3306, "protocol": "TCP"}]));
        e.spec_str("serviceType").map(str::to_string)
    };
    for spec in [
        json!({"clusterIP": "None"}),
        json!({"type": "ClusterIP", "clusterIP": "None", "clusterIPs": ["None"]}),
        json!({"clusterIPs": ["None"]}),
    ] {
        assert_eq!(service(spec.clone()).as_deref(), Some("Headless"), "{spec}");
    }
    for (spec, want) in [
        (json!({"clusterIP": "10.96.0.12"}), "ClusterIP"),
        (
            json!({"type": "ClusterIP", "clusterIP": "10.96.0.12"}),
            "ClusterIP",
        ),
        (json!({}), "ClusterIP"),
        (
            json!({"type": "NodePort", "clusterIP": "10.96.0.13"}),
            "NodePort",
        ),
        (json!({"type": "LoadBalancer"}), "LoadBalancer"),
        (
            json!({"type": "ExternalName", "externalName": "db.example.com"}),
            "ExternalName",
        ),
    ] {
        assert_eq!(service(spec.clone()).as_deref(), Some(want), "{spec}");
    }
}
