//! The kubernetes connector against the fake API server, through reconcile into the store: full
//! sync, a quiet resync, a deleted workload, a label change with its patch, a cluster that is
//! down, a forbidden namespace, a deleted namespace. SQLite always, Postgres in CI.

use std::path::Path;

use surveyor_connector_kubernetes::{KubernetesConfig, KubernetesConnector};
use surveyor_engine::{RunReport, RunStatus};
use surveyor_sim::{Cluster, KubeFake, Org, OrgSpec};
use surveyor_store::{ChangeOp, Store};
use surveyor_tests::{TestStore, changes_since, sync_once};

async fn sync(store: &Store, dir: &Path, clusters: &[(&str, &str)]) -> RunReport {
    std::fs::write(dir.join("kubeconfig"), KubeFake::kubeconfig(clusters)).expect("kubeconfig");
    let names: Vec<String> = clusters.iter().map(|(n, _)| format!("{n:?}")).collect();
    let toml = format!(
        "contexts = [{}]\nkubeconfig = \"kubeconfig\"\npage_size = 10\ntimeout_secs = 5",
        names.join(", ")
    );
    let config: KubernetesConfig = toml::from_str(&toml).expect("config");
    let c = KubernetesConnector::new("k8s", config, dir).expect("connector");
    sync_once(store, &c).await
}

#[tokio::test]
async fn a_cluster_syncs_and_its_changes_are_recorded() {
    for ts in TestStore::all().await {
        let (store, backend) = (&ts.store, ts.backend);
        let org = Org::generate(&OrgSpec::small());
        let fake = KubeFake::start(Cluster::from_org(&org, "prod"))
            .await
            .expect("fake");
        let dir = tempfile::tempdir().expect("dir");
        let prod = [("prod", fake.url())];
        let mut seen = 0;

        let r = sync(store, dir.path(), &prod).await;
        assert_eq!(r.status, RunStatus::Succeeded, "{backend}: {r:?}");
        assert!(
            r.counts.entities.created > org.repos.len() as u64,
            "{backend}"
        );
        changes_since(store, &mut seen).await;

        let r = sync(store, dir.path(), &prod).await;
        assert_eq!(
            r.counts.entities.changes(),
            0,
            "{backend}: a quiet resync writes nothing"
        );

        // A workload is deleted.
        let (ns, name) = fake.with_cluster(|c| c.names("deployments")[3].clone());
        fake.with_cluster(|c| c.delete("deployments", &ns, &name));
        let r = sync(store, dir.path(), &prod).await;
        assert_eq!(
            (r.status, r.counts.entities.deleted),
            (RunStatus::Succeeded, 1),
            "{backend}"
        );
        let gone = format!("resource:default/{name}.{ns}.prod");
        assert_eq!(
            changes_since(store, &mut seen)
                .await
                .into_iter()
                .map(|(op, r, _)| (op, r))
                .collect::<Vec<_>>(),
            vec![(ChangeOp::Deleted, gone)],
            "{backend}"
        );

        // A label changes: `updated`, with the label in the patch.
        let (ns, name) = fake.with_cluster(|c| c.names("deployments")[4].clone());
        fake.with_cluster(|c| c.set_label("deployments", &ns, &name, "tier", "gold"));
        let r = sync(store, dir.path(), &prod).await;
        assert_eq!(r.counts.entities.updated, 1, "{backend}: {:?}", r.counts);
        let changes = changes_since(store, &mut seen).await;
        assert_eq!(changes.len(), 1, "{backend}: {changes:?}");
        let (op, entity, patch) = &changes[0];
        assert_eq!(*op, ChangeOp::Updated);
        assert_eq!(*entity, format!("resource:default/{name}.{ns}.prod"));
        assert!(
            patch.contains("/metadata/labels/tier") && patch.contains("gold"),
            "{patch}"
        );

        // The cluster is down: nothing is deleted, though nothing was seen.
        let (dead_ns, dead) = fake.with_cluster(|c| c.names("deployments")[5].clone());
        fake.with_cluster(|c| c.delete("deployments", &dead_ns, &dead));
        let closed = {
            let l = std::net::TcpListener::bind("127.0.0.1:0").expect("port");
            format!("http://{}", l.local_addr().expect("addr"))
        };
        let r = sync(store, dir.path(), &[("prod", &closed)]).await;
        assert_ne!(r.status, RunStatus::Succeeded, "{backend}");
        assert_eq!(r.counts.entities.deleted, 0, "{backend}");

        // A namespace the credentials may not list: partial there, complete elsewhere.
        fake.with_cluster(|c| c.forbidden.insert(dead_ns.clone()));
        let r = sync(store, dir.path(), &prod).await;
        assert_eq!(r.status, RunStatus::Partial, "{backend}");
        assert_eq!(
            r.counts.entities.deleted, 0,
            "{backend}: the deleted workload is in the forbidden namespace"
        );
        fake.with_cluster(|c| c.forbidden.clear());
        let r = sync(store, dir.path(), &prod).await;
        assert_eq!(
            (r.status, r.counts.entities.deleted),
            (RunStatus::Succeeded, 1),
            "{backend}"
        );

        // A whole namespace goes: its scope is gone, which the guard holds back as a mass delete.
        let victim = fake.with_cluster(|c| {
            let mut sizes = std::collections::BTreeMap::<String, usize>::new();
            for (ns, _) in c
                .names("deployments")
                .into_iter()
                .chain(c.names("services"))
            {
                *sizes.entry(ns).or_default() += 1;
            }
            sizes
                .into_iter()
                .max_by_key(|(_, n)| *n)
                .map(|(ns, _)| ns)
                .expect("a namespace")
        });
        let in_victim = fake.with_cluster(|c| {
            let names: Vec<(String, String, String)> = [
                "deployments",
                "statefulsets",
                "daemonsets",
                "cronjobs",
                "services",
            ]
            .iter()
            .flat_map(|r| {
                c.names(r)
                    .into_iter()
                    .map(move |(ns, n)| (r.to_string(), ns, n))
            })
            .filter(|(_, ns, _)| *ns == victim)
            .collect();
            for (r, ns, n) in &names {
                c.delete(r, ns, n);
            }
            c.delete("namespaces", "", &victim);
            names.len()
        });
        assert!(in_victim > 0);
        let r = sync(store, dir.path(), &prod).await;
        assert_eq!(
            (r.status, r.counts.entities.deleted),
            (RunStatus::Failed, 0),
            "{backend}: {r:?}"
        );
        ts.cleanup().await;
    }
}
