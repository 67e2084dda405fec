//! Kubernetes watches end to end: `surveyor serve`'s scheduler runs the connector's watch, and
//! a Deployment created in the simulated cluster reaches the catalog (and leaves it when
//! deleted) with no crawl: only the object the watch named is read again.

use std::sync::Arc;
use std::time::Duration;

use surveyor_connector_kubernetes::{KubernetesConfig, KubernetesConnector};
use surveyor_engine::schedule::{Job, Scheduler, SchedulerOptions};
use surveyor_engine::{ReconcileOptions, run_connector};
use surveyor_model::Connector;
use surveyor_sim::{Cluster, KubeFake, KubeStats, Org, OrgSpec};
use surveyor_store::Store;
use surveyor_tests::TestStore;

/// Waits, up to a generous deadline, until `done`; fails saying what it waited for.
async fn until(what: &str, mut done: impl AsyncFnMut() -> bool) {
    for _ in 0..1200 {
        if done().await {
            return;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    panic!("waited 30 s for {what}");
}

async fn catalogued(store: &Store, entity_ref: &str) -> bool {
    surveyor_tests::owners(store).await.contains_key(entity_ref)
}

/// List requests the fake answered: every request but watches and single reads.
fn lists(s: &KubeStats) -> u64 {
    s.requests - s.watches.len() as u64 - s.gets
}

#[tokio::test]
async fn a_deployment_created_in_the_cluster_reaches_the_catalog_through_the_watch_alone() {
    let ts = TestStore::sqlite().await;
    let store = ts.store.clone();
    let fake = KubeFake::start(Cluster::from_org(&Org::generate(&OrgSpec::small()), "prod"))
        .await
        .expect("fake");
    let dir = tempfile::tempdir().expect("dir");
    std::fs::write(
        dir.path().join("kubeconfig"),
        KubeFake::kubeconfig(&[("prod", fake.url())]),
    )
    .expect("kubeconfig");
    let config: KubernetesConfig = toml::from_str(
        "contexts = [\"prod\"]\nkubeconfig = \"kubeconfig\"\ntimeout_secs = 5\nwatch = true",
    )
    .expect("config");
    let k8s = Arc::new(KubernetesConnector::new("k8s", config, dir.path()).expect("connector"));
    assert!(k8s.listens());
    run_connector(&store, k8s.as_ref(), &ReconcileOptions::default())
        .await
        .expect("first crawl");
    let before = surveyor_tests::owners(&store).await.len();

    // No schedule and no run on start: only the watch brings changes in.
    let scheduler = Scheduler::new(
        store.clone(),
        vec![Job::on_demand(k8s.clone(), Duration::from_secs(60))],
        SchedulerOptions {
            reconcile: ReconcileOptions::default(),
            holder: "test:1".into(),
            lease_ttl: Duration::from_secs(30),
            grace: Duration::from_millis(200),
        },
    );
    let (stop, stopped) = tokio::sync::watch::channel(false);
    let running = tokio::spawn(scheduler.run(stopped));
    // Namespaces, four workload kinds and Services.
    until("the watches to open", async || fake.open_watches() == 6).await;
    let listed = lists(&fake.stats());

    fake.with_cluster(|c| {
        c.add_deployment(
            "payments",
            "watched-api",
            serde_json::json!({"app.kubernetes.io/name": "watched-api", "owner": "payments-team"}),
            "ghcr.io/acme/watched-api:1",
        )
    });
    let new = "resource:default/watched-api.payments.prod";
    until("the new deployment in the catalog", async || {
        catalogued(&store, new).await
    })
    .await;
    let owners = surveyor_tests::owners(&store).await;
    assert_eq!(owners[new], "group:default/payments-team");
    assert_eq!(owners.len(), before + 1, "nothing else changed");

    fake.with_cluster(|c| c.delete("deployments", "payments", "watched-api"));
    until("the deleted deployment to leave the catalog", async || {
        !catalogued(&store, new).await
    })
    .await;
    assert_eq!(surveyor_tests::owners(&store).await.len(), before);

    let stats = fake.stats();
    assert_eq!(lists(&stats), listed, "no crawl: nothing was listed again");
    assert!(stats.gets >= 2, "each change read alone: {stats:?}");

    let _ = stop.send(true);
    let _ = running.await;
    ts.cleanup().await;
}
