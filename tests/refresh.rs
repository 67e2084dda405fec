//! Refreshing what events named: only the targets are read again, what the source shows is
//! written, and only what the source confirms gone is deleted — on SQLite and on Postgres;
//! and the scheduler's side: deliveries verified, replays taken once, bursts coalesced into one
//! refresh, and a connector that cannot refresh crawled whole instead.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use surveyor_engine::schedule::{Job, Scheduler, SchedulerOptions};
use surveyor_engine::{ReconcileOptions, RunStatus, refresh_connector, run_connector};
use surveyor_model::{
    Accepted, Connector, ConnectorError, Control, Delivery, DeliveryRefusal, EventError,
    ObservationSink, Outcome, Received, ScopeStatus, Target,
};
use surveyor_store::{ChangeFilter, Store};
use surveyor_tests::{Scripted, Served, TestStore, complete, component};

/// A source of repositories (node id → name and owner) in one org, `acme`, that can read
/// one repository by id, as a connector with events does.
struct Org {
    repos: Mutex<BTreeMap<String, (String, String)>>,
    /// Repositories read, by crawls and refreshes.
    reads: AtomicUsize,
    /// The next refresh's read of the org fails (a 5xx, a token that lost access).
    broken: Mutex<bool>,
    /// Whether it can refresh at all (a connector without events cannot).
    refreshes: bool,
    crawls: AtomicUsize,
    refreshed: AtomicUsize,
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
            refreshes: true,
            crawls: AtomicUsize::new(0),
            refreshed: AtomicUsize::new(0),
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
        self.crawls.fetch_add(1, Ordering::Relaxed);
        let repos = self.repos.lock().expect("lock").clone();
        for (id, (name, owner)) in repos {
            self.reads.fetch_add(1, Ordering::Relaxed);
            sink.send(component("acme", &id, &name, &owner)).await?;
        }
        let mut outcome = Outcome::default();
        outcome.complete("acme");
        Ok(outcome)
    }

    fn refreshes(&self, _: &[Target]) -> bool {
        self.refreshes
    }

    async fn refresh(
        &self,
        targets: &[Target],
        sink: ObservationSink,
    ) -> Result<Outcome, ConnectorError> {
        if !self.refreshes {
            return Err(ConnectorError::Unsupported("no refresh here".into()));
        }
        self.refreshed.fetch_add(1, Ordering::Relaxed);
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

    /// A delivery is `id=<node id>` signed by a header equal to the secret `s3cret`.
    fn receive(&self, delivery: &Delivery) -> Result<Received, EventError> {
        if delivery.header("x-secret") != Some("s3cret") {
            return Err(EventError::Unauthorized);
        }
        let body = String::from_utf8_lossy(&delivery.body);
        let key = body
            .strip_prefix("id=")
            .ok_or_else(|| EventError::Malformed("no id".into()))?;
        Ok(Received {
            delivery_id: delivery.header("x-delivery").map(str::to_string),
            targets: vec![repo(key)],
        })
    }
}

fn delivery(id: &str, key: &str, secret: &str) -> Delivery {
    let mut d = Delivery {
        body: format!("id={key}").into_bytes(),
        ..Delivery::default()
    };
    d.headers.insert("x-secret".into(), secret.into());
    d.headers.insert("x-delivery".into(), id.into());
    d
}

fn job(org: Arc<Org>) -> Job {
    Job::on_demand(org, Duration::from_secs(60))
}

async fn until(mut done: impl AsyncFnMut() -> bool) {
    for _ in 0..200 {
        if done().await {
            return;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    panic!("timed out waiting");
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

#[tokio::test]
async fn deliveries_are_verified_replays_taken_once_and_a_burst_is_one_refresh() {
    let ts = TestStore::sqlite().await;
    let store = ts.store.clone();
    let org = Arc::new(Org::new(&[
        ("R_a", "api", "team-a"),
        ("R_b", "billing", "team-b"),
    ]));
    run_connector(&store, org.as_ref(), &ReconcileOptions::default())
        .await
        .expect("crawl");
    let scheduler = Scheduler::new(
        store.clone(),
        vec![job(Arc::clone(&org))],
        SchedulerOptions {
            reconcile: ReconcileOptions::default(),
            holder: "test:1".into(),
            lease_ttl: Duration::from_secs(30),
            grace: Duration::from_millis(200),
        },
    );
    let handle = scheduler.handle();
    let (stop, stopped) = tokio::sync::watch::channel(false);
    let task = tokio::spawn(scheduler.run(stopped));

    // Refused deliveries queue nothing.
    assert_eq!(
        handle.deliver("gh", delivery("d0", "R_a", "guess")),
        Err(DeliveryRefusal::Event(EventError::Unauthorized))
    );
    assert!(matches!(
        handle.deliver("nope", delivery("d0", "R_a", "s3cret")),
        Err(DeliveryRefusal::Unknown(_))
    ));
    // A burst about api (the same thing five times, and one replay) while the worker waits:
    // one refresh reads it once.
    org.set("R_a", "api", "team-x");
    for i in 0..5 {
        assert_eq!(
            handle.deliver("gh", delivery(&format!("d{i}"), "R_a", "s3cret")),
            Ok(Accepted::Queued { targets: 1 })
        );
    }
    assert_eq!(
        handle.deliver("gh", delivery("d3", "R_a", "s3cret")),
        Ok(Accepted::Duplicate)
    );
    let reads = org.reads.load(Ordering::Relaxed);
    until(async || catalog(&store).await.contains(&"api team-x".to_string())).await;
    assert_eq!(org.refreshed.load(Ordering::Relaxed), 1);
    assert_eq!(org.reads.load(Ordering::Relaxed) - reads, 1);
    assert_eq!(
        org.crawls.load(Ordering::Relaxed),
        1,
        "only the first crawl"
    );
    let _ = stop.send(true);
    let _ = task.await;
    ts.cleanup().await;
}

#[tokio::test]
async fn a_connector_that_cannot_refresh_is_crawled_whole_when_an_event_comes() {
    let ts = TestStore::sqlite().await;
    let store = ts.store.clone();
    let mut plain = Org::new(&[("R_a", "api", "team-a")]);
    plain.refreshes = false;
    let org = Arc::new(plain);
    run_connector(&store, org.as_ref(), &ReconcileOptions::default())
        .await
        .expect("crawl");
    let scheduler = Scheduler::new(
        store.clone(),
        vec![job(Arc::clone(&org))],
        SchedulerOptions {
            reconcile: ReconcileOptions::default(),
            holder: "test:1".into(),
            lease_ttl: Duration::from_secs(30),
            grace: Duration::from_millis(200),
        },
    );
    let handle = scheduler.handle();
    let (stop, stopped) = tokio::sync::watch::channel(false);
    let task = tokio::spawn(scheduler.run(stopped));
    org.set("R_a", "api", "team-x");
    org.set("R_n", "new", "team-n");
    handle
        .deliver("gh", delivery("d1", "R_a", "s3cret"))
        .expect("queued");
    until(async || catalog(&store).await.len() == 2).await;
    assert_eq!(catalog(&store).await, ["api team-x", "new team-n"]);
    assert_eq!(
        org.crawls.load(Ordering::Relaxed),
        2,
        "the event led to a whole crawl"
    );
    // The run the scheduler shows is the crawl, not the refresh it could not do. The run is
    // finished (and shown) just after its catalog commits: wait for it.
    let status = || {
        handle
            .connectors()
            .into_iter()
            .find(|c| c.id == "gh")
            .expect("view")
            .last_status
    };
    until(async || status().is_some()).await;
    assert_eq!(status().as_deref(), Some("succeeded"));
    // It was never asked to refresh: no failed run for each event in the runs table.
    let runs = store.list_runs(Some("gh"), 10).await.expect("runs");
    assert_eq!(runs.len(), 2, "the first crawl and the event's");
    assert!(runs.iter().all(|r| r.status == "succeeded"), "{runs:?}");
    let _ = stop.send(true);
    let _ = task.await;
    ts.cleanup().await;
}

#[tokio::test]
async fn a_signed_github_webhook_brings_a_change_in_without_waiting_for_the_schedule() {
    use surveyor_connector_github::{GithubConfig, GithubConnector};
    use surveyor_sim::{FAKE_TOKEN, GithubFake, Org as SimOrg, OrgSpec, WebhookSink};

    let ts = TestStore::sqlite().await;
    let store = ts.store.clone();
    let fake = GithubFake::start(vec![SimOrg::generate(&OrgSpec::small())])
        .await
        .expect("fake");
    let dir = tempfile::tempdir().expect("dir");
    let toml = format!(
        "orgs = [\"acme\"]\ntoken = \"{FAKE_TOKEN}\"\napi_url = \"{}\"\nwebhook_secret = \"hook-secret\"",
        fake.url()
    );
    let config: GithubConfig = toml::from_str(&toml).expect("config");
    let github = Arc::new(GithubConnector::new("github", config, dir.path()).expect("connector"));
    run_connector(&store, github.as_ref(), &ReconcileOptions::default())
        .await
        .expect("first crawl");

    // No schedule: only events bring changes in.
    let served = Served::start(&store, github).await;
    let addr = served.addr;

    // A delivery signed with another secret changes nothing.
    let forged = reqwest::Client::new()
        .post(format!("http://{addr}/hooks/github"))
        .header("X-GitHub-Event", "repository")
        .header("X-Hub-Signature-256", "sha256=00")
        .body("{}")
        .send()
        .await
        .expect("post");
    assert_eq!(forged.status().as_u16(), 401);

    let hooks = fake
        .send_webhooks(WebhookSink::reliable(
            &format!("http://{addr}/hooks/github"),
            "hook-secret",
        ))
        .await;
    let old = fake
        .with_org("acme", |o| {
            let repo = o
                .repos
                .iter_mut()
                .find(|r| !r.files.contains_key("catalog-info.yaml") && !r.archived)
                .expect("a plain repository");
            std::mem::replace(&mut repo.name, "renamed-by-an-event".into())
        })
        .expect("the org");
    hooks.settled().await;
    let planted = hooks.planted();
    assert!(
        planted.sent().iter().any(|d| d.event == "repository"),
        "{planted:?}"
    );
    let renamed = "component:default/renamed-by-an-event".to_string();
    until(async || surveyor_tests::owners(&store).await.contains_key(&renamed)).await;
    assert!(
        !surveyor_tests::owners(&store)
            .await
            .contains_key(&format!("component:default/{old}")),
        "a rename, not a copy"
    );
    // The repository alone was read again (by node id), not the org.
    let by_target = fake.stats().by_target;
    assert_eq!(
        by_target.get("graphql:repositories"),
        Some(&1),
        "{by_target:?}"
    );
    assert!(
        by_target
            .get("graphql:nodes")
            .is_some_and(|n| (1..=3).contains(n)),
        "{by_target:?}"
    );
    served.stop().await;
    ts.cleanup().await;
}

#[tokio::test]
async fn a_gitlab_hook_with_the_secret_token_brings_a_new_project_in() {
    use surveyor_connector_gitlab::{GitlabConfig, GitlabConnector};
    use surveyor_sim::{GITLAB_TOKEN, GitlabFake, Org as SimOrg, OrgSpec, WebhookSink};

    let ts = TestStore::sqlite().await;
    let store = ts.store.clone();
    let fake = GitlabFake::start(SimOrg::generate(&OrgSpec::small()))
        .await
        .expect("fake");
    let dir = tempfile::tempdir().expect("dir");
    let toml = format!(
        "groups = [\"acme\"]\ntoken = \"{GITLAB_TOKEN}\"\nurl = \"{}\"\nrequests_per_second = 1000\nwebhook_secret = \"hook-token\"",
        fake.url()
    );
    let config: GitlabConfig = toml::from_str(&toml).expect("config");
    let gitlab = Arc::new(GitlabConnector::new("gitlab", config, dir.path()).expect("connector"));
    run_connector(&store, gitlab.as_ref(), &ReconcileOptions::default())
        .await
        .expect("first crawl");
    let before = surveyor_tests::owners(&store).await.len();
    let served = Served::start(&store, gitlab).await;
    let addr = served.addr;

    // The wrong token is refused.
    let wrong = reqwest::Client::new()
        .post(format!("http://{addr}/hooks/gitlab"))
        .header("X-Gitlab-Event", "Project Hook")
        .header("X-Gitlab-Token", "guess")
        .body("{}")
        .send()
        .await
        .expect("post");
    assert_eq!(wrong.status().as_u16(), 401);

    let hooks = fake
        .send_webhooks(WebhookSink::reliable(
            &format!("http://{addr}/hooks/gitlab"),
            "hook-token",
        ))
        .await;
    fake.with_org(|o| o.add_repo(0)).expect("a new project");
    hooks.settled().await;
    let planted = hooks.planted();
    assert!(
        planted.sent().iter().any(|d| d.event == "Project Hook"),
        "{planted:?}"
    );
    until(async || surveyor_tests::owners(&store).await.len() == before + 1).await;
    // The new project alone was read: its REST object and its files, no group listing again.
    let by_target = fake.stats().by_target;
    assert_eq!(by_target.get("rest:project"), Some(&1), "{by_target:?}");
    assert_eq!(
        by_target.get("rest:projects:acme"),
        Some(&1),
        "{by_target:?}"
    );
    served.stop().await;
    ts.cleanup().await;
}

#[tokio::test]
async fn a_sweep_counts_the_changes_no_event_announced() {
    use surveyor_connector_github::{GithubConfig, GithubConnector};
    use surveyor_sim::{FAKE_TOKEN, GithubFake, Org as SimOrg, OrgSpec};

    let ts = TestStore::sqlite().await;
    let store = ts.store.clone();
    let fake = GithubFake::start(vec![SimOrg::generate(&OrgSpec::small())])
        .await
        .expect("fake");
    let dir = tempfile::tempdir().expect("dir");
    let github = |id: &str, secret: &str| {
        let toml = format!(
            "orgs = [\"acme\"]\ntoken = \"{FAKE_TOKEN}\"\napi_url = \"{}\"\n{secret}",
            fake.url()
        );
        let config: GithubConfig = toml::from_str(&toml).expect("config");
        GithubConnector::new(id, config, dir.path()).expect("connector")
    };
    let listening = github("listening", "webhook_secret = \"s\"");
    let deaf = github("deaf", "");
    let options = ReconcileOptions::default();
    let sweep = async |c: &GithubConnector| {
        run_connector(&store, c, &options)
            .await
            .expect("run")
            .counts
            .unannounced
    };
    assert_eq!(sweep(&listening).await, None, "a first crawl is a load");
    assert_eq!(sweep(&deaf).await, None);
    assert_eq!(sweep(&listening).await, Some(0), "nothing changed");

    // Two changes while no event reached us (none is configured at the fake: all were lost).
    fake.with_org("acme", |o| {
        let mut plain = o
            .repos
            .iter_mut()
            .filter(|r| r.active && !r.files.contains_key("catalog-info.yaml"));
        plain.next().expect("a repo").description = "changed unannounced".into();
        plain.next().expect("a repo").description = "changed unannounced too".into();
    })
    .expect("the org");
    assert_eq!(sweep(&listening).await, Some(2));
    assert_eq!(sweep(&deaf).await, None, "without events nothing is missed");
    ts.cleanup().await;
}

/// A source with two scopes (two clusters, say) whose refresh reads one of them.
struct TwoScopes;

#[async_trait::async_trait]
impl Connector for TwoScopes {
    fn id(&self) -> &str {
        "two"
    }

    fn kind(&self) -> &'static str {
        "test"
    }

    async fn crawl(&self, sink: ObservationSink) -> Result<Outcome, ConnectorError> {
        sink.send(component("a", "id-a", "alpha", "group:default/x"))
            .await?;
        sink.send(component("b", "id-b", "beta", "group:default/x"))
            .await?;
        let mut outcome = Outcome::default();
        outcome.complete("a");
        outcome.complete("b");
        Ok(outcome)
    }

    fn refreshes(&self, _: &[Target]) -> bool {
        true
    }

    async fn refresh(
        &self,
        _: &[Target],
        sink: ObservationSink,
    ) -> Result<Outcome, ConnectorError> {
        sink.send(component("a", "id-a", "alpha-two", "group:default/x"))
            .await?;
        let mut outcome = Outcome::default();
        outcome.refreshed("a");
        Ok(outcome)
    }
}

#[tokio::test]
async fn a_refresh_of_one_scope_leaves_the_others_as_they_are() {
    let ts = TestStore::sqlite().await;
    let store = ts.store.clone();
    let options = ReconcileOptions::default();
    run_connector(&store, &TwoScopes, &options)
        .await
        .expect("crawl");
    let target = Target {
        scope: "a".into(),
        kind: "thing".into(),
        key: "id-a".into(),
    };
    let report = refresh_connector(&store, &TwoScopes, &[target], &options)
        .await
        .expect("refresh");
    assert_eq!(report.status, RunStatus::Succeeded, "{:?}", report.scopes);
    let scopes: Vec<&str> = report.scopes.iter().map(|s| s.scope.as_str()).collect();
    assert_eq!(scopes, ["a"], "scope b was not read, so it is not reported");
    assert_eq!(
        catalog(&store).await,
        ["alpha-two group:default/x", "beta group:default/x"]
    );
    ts.cleanup().await;
}
