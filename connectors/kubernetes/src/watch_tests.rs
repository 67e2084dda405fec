//! Watches and refreshes against the fake API server: a change is a hint naming the object,
//! the first list is not; a dropped connection resumes from the last version, a 410 lists
//! again and names only what differs; a refresh reads one object with one request, a 404
//! confirms it gone and a failure deletes nothing.

use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::Duration;

use kube::runtime::watcher::Event;
use serde_json::json;
use surveyor_model::{
    Collected, Connector, HintSink, ObservationSink, Outcome, ScopeStatus, Target,
};
use surveyor_sim::{Cluster, FaultAction, KubeFake, Org, OrgSpec, WatchKnobs};
use tokio::sync::mpsc;

use super::*;
use crate::events::{Changed, Known, Seen};

fn connector(dir: &Path, url: &str, extra: &str) -> KubernetesConnector {
    std::fs::write(
        dir.join("kubeconfig"),
        KubeFake::kubeconfig(&[("prod", url)]),
    )
    .unwrap();
    let toml = format!(
        "contexts = [\"prod\"]\nkubeconfig = \"kubeconfig\"\ntimeout_secs = 5\nwatch = true\n{extra}"
    );
    KubernetesConnector::new("k8s", toml::from_str(&toml).unwrap(), dir).unwrap()
}

/// Kinds watched per cluster without Ingresses: namespaces, four workload kinds, Services.
const WATCHED: usize = 6;

/// Waits, up to a generous deadline, until `done`; fails saying what it waited for.
async fn until(what: &str, mut done: impl FnMut() -> bool) {
    for _ in 0..1200 {
        if done() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    panic!("waited 30 s for {what}");
}

/// A connector's watch running in the background, its hints in a channel.
struct Watching {
    hints: mpsc::UnboundedReceiver<Target>,
    task: tokio::task::JoinHandle<Result<(), surveyor_model::ConnectorError>>,
}

impl Watching {
    async fn start(c: &Arc<KubernetesConnector>, fake: &KubeFake) -> Self {
        let (tx, hints) = mpsc::unbounded_channel();
        let sink = HintSink::new(move |targets| targets.into_iter().all(|t| tx.send(t).is_ok()));
        let watching = Arc::clone(c);
        let task = tokio::spawn(async move { watching.watch(sink).await });
        until("every kind's watch to open", || {
            fake.open_watches() == WATCHED
        })
        .await;
        Self { hints, task }
    }

    async fn next(&mut self) -> Target {
        tokio::time::timeout(Duration::from_secs(30), self.hints.recv())
            .await
            .expect("a hint within 30 s")
            .expect("the watch is running")
    }

    /// The next `n` distinct targets.
    async fn distinct(&mut self, n: usize) -> BTreeSet<Target> {
        let mut got = BTreeSet::new();
        while got.len() < n {
            got.insert(self.next().await);
        }
        got
    }
}

impl Drop for Watching {
    fn drop(&mut self) {
        self.task.abort();
    }
}

fn target(ns: &str, kind: &str, name: &str) -> Target {
    Target {
        scope: format!("prod/{ns}"),
        kind: kind.into(),
        key: name.into(),
    }
}

async fn refresh(c: &KubernetesConnector, targets: &[Target]) -> Collected {
    let (sink, mut rx) = ObservationSink::channel("k8s", 64);
    let kept = async {
        let mut all = Vec::new();
        while let Some(o) = rx.recv().await {
            all.push(o);
        }
        all
    };
    let (outcome, observations): (Result<Outcome, _>, _) =
        tokio::join!(c.refresh(targets, sink), kept);
    Collected {
        observations,
        outcome: outcome.unwrap(),
    }
}

fn seen(ns: &str, name: &str, version: &str, uid: &str) -> Seen {
    Seen {
        namespace: ns.into(),
        name: name.into(),
        resource_version: version.into(),
        uid: uid.into(),
    }
}

#[test]
fn the_first_list_is_quiet_and_a_relist_names_only_what_differs() {
    let mut k = Known::default();
    let list = |k: &mut Known, objects: Vec<Seen>| {
        let mut out = k.event(Event::Init);
        for o in objects {
            out.extend(k.event(Event::InitApply(o)));
        }
        out.extend(k.event(Event::InitDone));
        out
    };
    let first = list(
        &mut k,
        vec![
            seen("a", "same", "1", "u1"),
            seen("a", "edited", "2", "u2"),
            seen("a", "removed", "3", "u3"),
            seen("a", "replaced", "4", "u4"),
        ],
    );
    assert!(
        first.is_empty(),
        "the first list is what a crawl read: {first:?}"
    );
    // An event, then the same event again: one change.
    assert_eq!(
        k.event(Event::Apply(seen("a", "edited", "5", "u2"))),
        [Changed::Object {
            namespace: "a".into(),
            name: "edited".into()
        }]
    );
    assert!(
        k.event(Event::Apply(seen("a", "edited", "5", "u2")))
            .is_empty()
    );
    let again = list(
        &mut k,
        vec![
            seen("a", "same", "1", "u1"),
            seen("a", "edited", "6", "u2"),
            seen("a", "replaced", "7", "u9"),
            seen("a", "new", "8", "u8"),
        ],
    );
    let again: BTreeSet<String> = again.iter().map(|c| format!("{c:?}")).collect();
    let want: BTreeSet<String> = [
        Changed::Object {
            namespace: "a".into(),
            name: "edited".into(),
        },
        Changed::Gone {
            namespace: "a".into(),
            name: "replaced".into(),
            uid: "u4".into(),
        },
        Changed::Object {
            namespace: "a".into(),
            name: "new".into(),
        },
        Changed::Gone {
            namespace: "a".into(),
            name: "removed".into(),
            uid: "u3".into(),
        },
    ]
    .iter()
    .map(|c| format!("{c:?}"))
    .collect();
    assert_eq!(again, want);
    assert_eq!(
        k.event(Event::Delete(seen("a", "new", "9", "u8"))),
        [Changed::Gone {
            namespace: "a".into(),
            name: "new".into(),
            uid: "u8".into()
        }]
    );
}

#[tokio::test]
async fn a_change_is_a_hint_for_that_object_and_the_first_list_is_none() {
    let org = Org::generate(&OrgSpec::small());
    let fake = KubeFake::start(Cluster::from_org(&org, "prod"))
        .await
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let c = Arc::new(connector(dir.path(), fake.url(), ""));
    assert!(c.listens());
    let mut w = Watching::start(&c, &fake).await;
    // Each kind was listed once, then watched from the list's version.
    let watches = fake.stats().watches;
    assert_eq!(watches.len(), WATCHED, "{watches:?}");
    assert!(
        watches.iter().all(|(_, from)| from.is_some()),
        "{watches:?}"
    );

    // A system namespace is not crawled: its changes name nothing.
    fake.with_cluster(|cl| {
        cl.set_label("deployments", "kube-system", "coredns", "x", "y");
        cl.add_deployment(
            "payments",
            "fresh-api",
            json!({"app.kubernetes.io/name": "fresh-api"}),
            "x:1",
        );
    });
    assert_eq!(
        w.next().await,
        target("payments", "deployments", "fresh-api")
    );
    fake.with_cluster(|cl| cl.delete("deployments", "payments", "fresh-api"));
    assert_eq!(
        w.next().await,
        target("payments", "deployments", "fresh-api")
    );
    fake.with_cluster(|cl| cl.set_label("namespaces", "", "payments", "team", "other"));
    assert_eq!(
        w.next().await,
        Target {
            scope: "prod".into(),
            kind: "namespaces".into(),
            key: "payments".into()
        }
    );
    assert!(w.hints.try_recv().is_err(), "nothing else");
}

#[tokio::test]
async fn a_dropped_connection_resumes_from_the_last_version_without_a_list() {
    let org = Org::generate(&OrgSpec::small());
    let fake = KubeFake::start(Cluster::from_org(&org, "prod"))
        .await
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let c = Arc::new(connector(dir.path(), fake.url(), ""));
    let mut w = Watching::start(&c, &fake).await;
    fake.with_cluster(|cl| cl.add_deployment("payments", "one", json!({}), "x:1"));
    assert_eq!(w.next().await, target("payments", "deployments", "one"));
    let version = fake.with_cluster(|cl| cl.resource_version()).to_string();
    let lists = |s: &surveyor_sim::KubeStats| s.requests - s.watches.len() as u64 - s.gets;
    let before = fake.stats();

    fake.cut_watches();
    // While nobody watches, a change: the resumed watch gets it from the window.
    fake.with_cluster(|cl| cl.add_deployment("payments", "two", json!({}), "x:1"));
    until("the watches to resume", || {
        fake.stats().watches.len() >= 2 * WATCHED
    })
    .await;
    assert_eq!(w.next().await, target("payments", "deployments", "two"));
    let after = fake.stats();
    assert_eq!(
        lists(&after),
        lists(&before),
        "no list after a dropped connection"
    );
    let resumed = &after.watches[WATCHED..];
    assert!(
        resumed
            .iter()
            .any(|(path, from)| path == "deployments" && from.as_deref() == Some(version.as_str())),
        "the deployments watch resumed from {version}: {resumed:?}"
    );
}

#[tokio::test]
async fn after_a_410_the_list_again_names_only_what_the_watch_missed() {
    let org = Org::generate(&OrgSpec::small());
    let cluster = Cluster::from_org(&org, "prod");
    let payments: Vec<String> = cluster
        .names("deployments")
        .into_iter()
        .filter(|(ns, _)| ns == "payments")
        .map(|(_, n)| n)
        .collect();
    assert!(payments.len() >= 2, "{payments:?}");
    let (edited, removed) = (payments[0].clone(), payments[1].clone());
    let fake = KubeFake::start(cluster).await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let c = Arc::new(connector(dir.path(), fake.url(), ""));
    Collected::crawl(c.as_ref()).await.unwrap();
    let removed_uid = fake.with_cluster(|cl| {
        cl.object("deployments", "payments", &removed).unwrap()["metadata"]["uid"]
            .as_str()
            .unwrap()
            .to_string()
    });
    let mut w = Watching::start(&c, &fake).await;

    // Three changes the watch never hears of.
    fake.set_watch_knobs(WatchKnobs {
        drop: 1.0,
        ..WatchKnobs::reliable()
    });
    fake.with_cluster(|cl| {
        cl.set_label("deployments", "payments", &edited, "owner", "team-x");
        cl.delete("deployments", "payments", &removed);
        cl.add_deployment("payments", "appeared", json!({}), "x:1");
    });
    assert_eq!(fake.dropped_changes().len(), 3);
    fake.set_watch_knobs(WatchKnobs::reliable());
    let lists = |s: &surveyor_sim::KubeStats| s.requests - s.watches.len() as u64 - s.gets;
    let before = lists(&fake.stats());
    fake.expire_watch_window();
    let got = w.distinct(3).await;
    let want = BTreeSet::from([
        target("payments", "deployments", &edited),
        target("payments", "deployments", &removed),
        target("payments", "deployments", "appeared"),
    ]);
    assert_eq!(got, want);
    // Every kind listed again, and nothing else differed.
    until("every kind's watch to open again", || {
        fake.open_watches() == WATCHED
    })
    .await;
    fake.with_cluster(|cl| cl.add_deployment("payments", "marker", json!({}), "x:1"));
    assert_eq!(w.next().await, target("payments", "deployments", "marker"));
    let stats = fake.stats();
    assert_eq!(stats.expired, WATCHED as u64);
    assert_eq!(
        lists(&stats),
        before + WATCHED as u64,
        "each kind listed again once"
    );

    // The one the list no longer had is confirmed gone by its uid.
    let r = refresh(&c, &[target("payments", "deployments", &removed)]).await;
    assert_eq!(
        r.outcome.gone["prod/payments"],
        BTreeSet::from([removed_uid])
    );
}

#[tokio::test]
async fn a_refresh_reads_one_object_with_one_request_and_maps_it_as_a_crawl_does() {
    let org = Org::generate(&OrgSpec::small());
    let cluster = Cluster::from_org(&org, "prod");
    let name = cluster
        .names("deployments")
        .into_iter()
        .find(|(ns, _)| ns == "payments")
        .map(|(_, n)| n)
        .unwrap();
    let fake = KubeFake::start(cluster).await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let c = connector(dir.path(), fake.url(), "max_retries = 0");
    let t = target("payments", "deployments", &name);
    assert!(
        !c.refreshes(std::slice::from_ref(&t)),
        "no crawl yet: no context"
    );
    let crawled = Collected::crawl(&c).await.unwrap();
    assert!(c.refreshes(std::slice::from_ref(&t)));
    let ns_target = Target {
        scope: "prod".into(),
        kind: "namespaces".into(),
        key: "payments".into(),
    };
    assert!(
        !c.refreshes(&[t.clone(), ns_target]),
        "a namespace is crawled whole"
    );
    assert!(
        !c.refreshes(&[target("new-ns", "deployments", "x")]),
        "a namespace no crawl saw"
    );

    let before = crawled
        .observations
        .iter()
        .find(|o| {
            o.entity.spec_str("kind") == Some("Deployment")
                && o.entity
                    .metadata
                    .title
                    .as_deref()
                    .is_some_and(|t| t.ends_with(&format!("/{name} (prod)")))
        })
        .unwrap()
        .clone();
    fake.with_cluster(|cl| cl.set_label("deployments", "payments", &name, "owner", "team-new"));
    fake.reset_stats();
    let r = refresh(&c, std::slice::from_ref(&t)).await;
    let stats = fake.stats();
    assert_eq!((stats.requests, stats.gets), (1, 1), "{stats:?}");
    assert_eq!(
        r.outcome.status("prod/payments"),
        Some(&ScopeStatus::Refreshed)
    );
    assert_eq!(r.observations.len(), 1);
    let after = &r.observations[0];
    assert_eq!(after.external_id, before.external_id);
    assert_eq!(
        after.entity.spec_str("owner"),
        Some("group:default/team-new")
    );
    // Everything else as the crawl mapped it.
    let mut same = after.entity.clone();
    same.spec
        .insert("owner".into(), before.entity.spec["owner"].clone());
    same.metadata.labels.remove("owner");
    let mut was = before.entity.clone();
    was.metadata.labels.remove("owner");
    assert_eq!(same, was);

    // Gone at the source: 404, and the crawled uid is confirmed gone.
    fake.with_cluster(|cl| cl.delete("deployments", "payments", &name));
    let r = refresh(&c, std::slice::from_ref(&t)).await;
    assert!(r.observations.is_empty());
    assert_eq!(
        r.outcome.status("prod/payments"),
        Some(&ScopeStatus::Refreshed)
    );
    assert_eq!(
        r.outcome.gone["prod/payments"],
        BTreeSet::from([before.external_id.clone()])
    );

    // A read that fails: the scope failed, nothing is confirmed gone.
    let other = fake.with_cluster(|cl| {
        cl.names("services")
            .into_iter()
            .find(|(ns, _)| ns == "payments")
            .map(|(_, n)| n)
            .unwrap()
    });
    fake.add_fault(surveyor_sim::Fault::new("*", FaultAction::Status(500)));
    let r = refresh(&c, &[target("payments", "services", &other)]).await;
    assert!(
        matches!(
            r.outcome.status("prod/payments"),
            Some(ScopeStatus::Failed { .. })
        ),
        "{:?}",
        r.outcome
    );
    assert!(r.outcome.gone.is_empty());
    assert!(r.observations.is_empty());
}

#[tokio::test]
async fn without_watch_there_is_nothing_to_watch_or_refresh() {
    let org = Org::generate(&OrgSpec::small());
    let fake = KubeFake::start(Cluster::from_org(&org, "prod"))
        .await
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let c = connector(dir.path(), fake.url(), "");
    let toml = "contexts = [\"prod\"]\nkubeconfig = \"kubeconfig\"";
    let off = KubernetesConnector::new("k8s", toml::from_str(toml).unwrap(), dir.path()).unwrap();
    assert!(c.listens() && !off.listens());
    Collected::crawl(&off).await.unwrap();
    assert!(!off.refreshes(&[target("payments", "deployments", "x")]));
    let sink = HintSink::new(|_| true);
    assert!(matches!(
        off.watch(sink).await,
        Err(surveyor_model::ConnectorError::Unsupported(_))
    ));
    assert_eq!(fake.stats().watches.len(), 0);
}
