//! The connector against the fake API server: clusters, namespaces, paging, 410, 403, a
//! cluster that is down.

use surveyor_model::{Collected, ScopeStatus};
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

/// Workloads and Services the fake runs outside system namespaces.
fn expected_resources(cluster: &Cluster) -> usize {
    [
        "deployments",
        "statefulsets",
        "daemonsets",
        "cronjobs",
        "services",
    ]
    .iter()
    .flat_map(|r| cluster.names(r))
    .filter(|(ns, _)| !SYSTEM_NAMESPACES.contains(&ns.as_str()))
    .count()
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

    // Every service workload points at its repository's component; owners are groups.
    let linked = got
        .observations
        .iter()
        .filter(|o| o.entity.spec.contains_key("dependencyOf"))
        .count();
    assert!(
        linked >= want - 4,
        "all but the legacy batches: {linked} of {want}"
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
    let workload = got
        .observations
        .iter()
        .find(|o| o.scope == "prod/payments")
        .unwrap();
    assert_eq!(workload.entity.spec_str("system"), Some("payments"));
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
