//! Refreshing what events named: only the targets are read again, what the source shows is
//! written, and only what the source confirms gone is deleted — on SQLite and on Postgres.

use std::collections::BTreeMap;
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};

use surveyor_engine::{ReconcileOptions, RunStatus, refresh_connector, run_connector};
use surveyor_model::{Connector, ConnectorError, ObservationSink, Outcome, ScopeStatus, Target};
use surveyor_store::{ChangeFilter, Store};
use surveyor_tests::{Scripted, TestStore, complete, component};

/// A source of repositories (node id → name and owner) in one org, `acme`, that can read
/// one repository by id, as a connector with events does.
struct Org {
    repos: Mutex<BTreeMap<String, (String, String)>>,
    /// Repositories read, by crawls and refreshes.
    reads: AtomicUsize,
    /// The next refresh's read of the org fails (a 5xx, a token that lost access).
    broken: Mutex<bool>,
}

impl Org {
    fn new(repos: &[(&str, &str, &str)]) -> Self {
        Self {
            repos: Mutex::new(
                repos
                    .iter()
                    .map(|(id, name, owner)| {
                        (id.to_string(), (name.to_string(), owner.to_string()))
                    })
                    .collect(),
            ),
            reads: AtomicUsize::new(0),
            broken: Mutex::new(false),
        }
    }

    fn set(&self, id: &str, name: &str, owner: &str) {
        self.repos
            .lock()
            .expect("lock")
            .insert(id.into(), (name.into(), owner.into()));
    }

    fn remove(&self, id: &str) {
        self.repos.lock().expect("lock").remove(id);
    }
}

#[async_trait::async_trait]
impl Connector for Org {
    fn id(&self) -> &str {
        "gh"
    }

    fn kind(&self) -> &'static str {
        "test"
    }

    async fn crawl(&self, sink: ObservationSink) -> Result<Outcome, ConnectorError> {
        let repos = self.repos.lock().expect("lock").clone();
        for (id, (name, owner)) in repos {
            self.reads.fetch_add(1, Ordering::Relaxed);
            sink.send(component("acme", &id, &name, &owner)).await?;
        }
        let mut outcome = Outcome::default();
        outcome.complete("acme");
        Ok(outcome)
    }

    async fn refresh(
        &self,
        targets: &[Target],
        sink: ObservationSink,
    ) -> Result<Outcome, ConnectorError> {
        let mut outcome = Outcome::default();
        if std::mem::take(&mut *self.broken.lock().expect("lock")) {
            outcome.failed("acme", "GitHub answered 502");
            // Whatever it believes, a failed read confirms nothing.
            for t in targets {
                outcome.confirm_gone("acme", t.key.clone());
            }
            return Ok(outcome);
        }
        for t in targets {
            self.reads.fetch_add(1, Ordering::Relaxed);
            let found = self.repos.lock().expect("lock").get(&t.key).cloned();
            match found {
                Some((name, owner)) => sink.send(component("acme", &t.key, &name, &owner)).await?,
                // The source answers 404 for it: gone, by the source's word.
                None => outcome.confirm_gone("acme", t.key.clone()),
            }
        }
        outcome.refreshed("acme");
        Ok(outcome)
    }
}

fn repo(id: &str) -> Target {
    Target {
        scope: "acme".into(),
        kind: "repository".into(),
        key: id.into(),
    }
}

/// Live entities as `name owner`.
async fn catalog(store: &Store) -> Vec<String> {
    surveyor_tests::owners(store)
        .await
        .into_iter()
        .map(|(key, owner)| format!("{} {}", key.trim_start_matches("component:default/"), owner))
        .collect()
}

#[tokio::test]
async fn a_refresh_writes_what_the_source_shows_and_deletes_only_what_it_confirms_gone() {
    for ts in TestStore::all().await {
        let (s, backend) = (&ts.store, ts.backend);
        let org = Org::new(&[
            ("R_a", "api", "team-a"),
            ("R_b", "billing", "team-b"),
            ("R_c", "cart", "team-c"),
        ]);
        run_connector(s, &org, &ReconcileOptions::default())
            .await
            .expect("crawl");
        let changes_before = s
            .list_changes(&ChangeFilter::default())
            .await
            .expect("changes")
            .len();

        // At the source: api changes owner, billing is deleted, docs is created. Events name
        // api and docs only (the deletion's event was lost).
        org.set("R_a", "api", "team-x");
        org.remove("R_b");
        org.set("R_d", "docs", "team-d");
        let reads = org.reads.load(Ordering::Relaxed);
        let report = refresh_connector(s, &org, &[repo("R_a"), repo("R_d")], &Default::default())
            .await
            .expect("refresh");
        assert_eq!(report.status, RunStatus::Succeeded, "{backend}: {report:?}");
        assert_eq!(report.scopes[0].status, ScopeStatus::Refreshed, "{backend}");
        assert_eq!(
            org.reads.load(Ordering::Relaxed) - reads,
            2,
            "{backend}: only the targets"
        );
        assert_eq!(
            catalog(s).await,
            ["api team-x", "billing team-b", "cart team-c", "docs team-d"],
            "{backend}: billing stays until the source confirms it gone"
        );
        let counts = &report.counts.entities;
        assert_eq!(
            (counts.created, counts.updated, counts.deleted),
            (1, 1, 0),
            "{backend}"
        );

        // A stale or forged event about cart: one read, no change written.
        let report = refresh_connector(s, &org, &[repo("R_c")], &Default::default())
            .await
            .expect("refresh");
        assert_eq!(report.counts.entities.changes(), 0, "{backend}");
        let changes_now = s
            .list_changes(&ChangeFilter::default())
            .await
            .expect("changes")
            .len();
        assert_eq!(changes_now, changes_before + 2, "{backend}");

        // An event naming billing: the source answers 404, so it is deleted.
        let report = refresh_connector(s, &org, &[repo("R_b")], &Default::default())
            .await
            .expect("refresh");
        assert_eq!(report.counts.entities.deleted, 1, "{backend}: {report:?}");
        assert_eq!(
            catalog(s).await,
            ["api team-x", "cart team-c", "docs team-d"],
            "{backend}"
        );

        // The source fails while reading: nothing it claims is gone is deleted.
        *org.broken.lock().expect("lock") = true;
        let report = refresh_connector(s, &org, &[repo("R_c")], &Default::default())
            .await
            .expect("refresh");
        assert_eq!(report.status, RunStatus::Failed, "{backend}");
        assert_eq!(report.counts.entities.deleted, 0, "{backend}");
        assert_eq!(
            catalog(s).await,
            ["api team-x", "cart team-c", "docs team-d"],
            "{backend}"
        );

        // The next sweep (a whole crawl) agrees with the source.
        run_connector(s, &org, &ReconcileOptions::default())
            .await
            .expect("crawl");
        assert_eq!(
            catalog(s).await,
            ["api team-x", "cart team-c", "docs team-d"],
            "{backend}"
        );
        ts.cleanup().await;
    }
}

#[tokio::test]
async fn a_connector_without_events_cannot_refresh_and_its_catalog_stays() {
    let ts = TestStore::sqlite().await;
    let s = &ts.store;
    let plain = Scripted::new(
        "gh",
        vec![component("acme", "R_a", "api", "team-a")],
        complete(&["acme"]),
    );
    run_connector(s, &plain, &ReconcileOptions::default())
        .await
        .expect("crawl");
    let report = refresh_connector(s, &plain, &[repo("R_a")], &Default::default())
        .await
        .expect("a report");
    assert_eq!(report.status, RunStatus::Failed);
    let error = report.error.unwrap_or_default();
    assert!(error.contains("cannot refresh"), "{error}");
    assert_eq!(catalog(s).await, ["api team-a"]);
    ts.cleanup().await;
}
