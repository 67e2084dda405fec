//! Test support shared by the end-to-end tests: a store per backend (SQLite always, Postgres
//! when `SURVEYOR_TEST_DATABASE_URL` is set, each test in its own schema) and a scripted connector.

pub use surveyor_model::testing::{Scripted, complete};
use surveyor_model::{Entity, Observation};
use surveyor_store::{ConnectOptions, Store};

/// The variable CI sets to run the store tests on Postgres too.
pub const PG_ENV: &str = "SURVEYOR_TEST_DATABASE_URL";

/// A store for one test; dropping it leaves the temp dir / schema behind only on failure paths.
pub struct TestStore {
    pub store: Store,
    pub backend: &'static str,
    /// The database's URL, for a second connection to it (another process, say).
    url: String,
    schema: Option<String>,
    _dir: Option<tempfile::TempDir>,
}

impl TestStore {
    pub async fn sqlite() -> Self {
        let dir = tempfile::tempdir().expect("tempdir");
        let url = format!("sqlite://{}", dir.path().join("catalog.db").display());
        let store = Store::connect(&url).await.expect("open sqlite");
        Self {
            store,
            backend: "sqlite",
            url,
            schema: None,
            _dir: Some(dir),
        }
    }

    /// A fresh schema on the test Postgres, or None (saying so) when the variable is unset.
    pub async fn postgres() -> Option<Self> {
        let Ok(url) = std::env::var(PG_ENV) else {
            eprintln!("skipping the Postgres half of this test: {PG_ENV} is not set");
            return None;
        };
        let schema = format!("t_{}", uuid_like());
        let store = Store::connect_with(
            &url,
            ConnectOptions {
                schema: Some(schema.clone()),
            },
        )
        .await
        .unwrap_or_else(|e| panic!("{PG_ENV} is set but Postgres is unusable: {e}"));
        Some(Self {
            store,
            backend: "postgres",
            url,
            schema: Some(schema),
            _dir: None,
        })
    }

    /// SQLite, plus Postgres when configured.
    pub async fn all() -> Vec<Self> {
        let mut v = vec![Self::sqlite().await];
        v.extend(Self::postgres().await);
        v
    }

    /// A second store on the same database, with its own connections: what another process
    /// sharing the catalog would open.
    pub async fn reopen(&self) -> Store {
        Store::connect_with(
            &self.url,
            ConnectOptions {
                schema: self.schema.clone(),
            },
        )
        .await
        .expect("reopen the test database")
    }

    /// Drops the Postgres schema. Call at the end of a test.
    pub async fn cleanup(self) {
        if let Some(schema) = &self.schema {
            let _ = self.store.drop_schema(schema).await;
        }
        self.store.close().await;
    }
}

fn uuid_like() -> String {
    use std::sync::atomic::{AtomicU64, Ordering};
    static N: AtomicU64 = AtomicU64::new(0);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or(0);
    format!(
        "{}_{}_{}",
        std::process::id(),
        nanos,
        N.fetch_add(1, Ordering::Relaxed)
    )
}

/// A discovered Component named `name` with `owner`, in scope `scope`, identified by `external_id`.
pub fn component(scope: &str, external_id: &str, name: &str, owner: &str) -> Observation {
    let mut e = Entity::new("Component", "default", name);
    e.spec.insert("type".into(), "service".into());
    e.spec.insert("lifecycle".into(), "production".into());
    e.spec.insert("owner".into(), owner.into());
    Observation::discovered(scope, external_id, e)
}

/// Every live entity's key and `spec.owner`, in key order: a compact picture of a catalog.
pub async fn owners(store: &Store) -> std::collections::BTreeMap<String, String> {
    store
        .list_entities(&surveyor_store::EntityFilter::default())
        .await
        .expect("list entities")
        .into_iter()
        .map(|e| {
            let v: serde_json::Value = serde_json::from_str(&e.body).expect("stored body is JSON");
            (
                e.entity_ref,
                v["spec"]["owner"].as_str().unwrap_or("").to_string(),
            )
        })
        .collect()
}

/// One sync of `connector` into `store` with the default options, as `surveyor sync` runs it.
pub async fn sync_once(
    store: &Store,
    connector: &dyn surveyor_model::Connector,
) -> surveyor_engine::RunReport {
    surveyor_engine::run_connector(store, connector, &Default::default())
        .await
        .expect("run")
}

/// How many changes the history holds.
pub async fn change_count(store: &Store) -> usize {
    store
        .list_changes(&surveyor_store::ChangeFilter::default())
        .await
        .expect("changes")
        .len()
}

/// The changes recorded after the first `seen` (op, entity ref and patch), moving `seen` past
/// them.
pub async fn changes_since(
    store: &Store,
    seen: &mut usize,
) -> Vec<(surveyor_store::ChangeOp, String, String)> {
    let all = store
        .list_changes(&surveyor_store::ChangeFilter::default())
        .await
        .expect("changes");
    let fresh = all
        .iter()
        .skip(*seen)
        .map(|c| (c.op, c.entity_ref.clone(), c.patch.to_string()))
        .collect();
    *seen = all.len();
    fresh
}

/// The ops (and entity refs) of [`changes_since`].
pub async fn ops_since(store: &Store, seen: &mut usize) -> Vec<(surveyor_store::ChangeOp, String)> {
    let changes = changes_since(store, seen).await;
    changes.into_iter().map(|(op, r, _)| (op, r)).collect()
}

/// A scheduler running one connector on demand (no schedule, no run on start), and the API on
/// loopback in front of it: only webhooks to `http://{addr}/hooks/{id}`, and the connector's
/// watch, bring changes in.
pub struct Served {
    pub addr: std::net::SocketAddr,
    stop: tokio::sync::watch::Sender<bool>,
    scheduler: tokio::task::JoinHandle<()>,
    server: tokio::task::JoinHandle<()>,
}

impl Served {
    pub async fn start(
        store: &Store,
        connector: std::sync::Arc<dyn surveyor_model::Connector>,
    ) -> Self {
        use std::time::Duration;
        use surveyor_engine::schedule::{Job, Scheduler, SchedulerOptions};

        let scheduler = Scheduler::new(
            store.clone(),
            vec![Job::on_demand(connector, Duration::from_secs(60))],
            SchedulerOptions {
                reconcile: surveyor_engine::ReconcileOptions::default(),
                holder: "test:1".into(),
                lease_ttl: Duration::from_secs(30),
                grace: Duration::from_millis(200),
            },
        );
        let handle: std::sync::Arc<dyn surveyor_model::Control> =
            std::sync::Arc::new(scheduler.handle());
        let (stop, stopped) = tokio::sync::watch::channel(false);
        let scheduler = tokio::spawn(scheduler.run(stopped));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let addr = listener.local_addr().expect("addr");
        let app = surveyor_api::router(
            store.clone(),
            surveyor_api::ApiConfig::default(),
            Some(handle),
        );
        let server = tokio::spawn(async move {
            let _ = surveyor_api::serve(listener, app, std::future::pending()).await;
        });
        Self {
            addr,
            stop,
            scheduler,
            server,
        }
    }

    pub async fn stop(self) {
        self.server.abort();
        let _ = self.stop.send(true);
        let _ = self.scheduler.await;
    }
}
