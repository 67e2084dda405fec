//! `surveyor demo`: the whole product on a simulated organisation in one process — fake vendor
//! APIs on loopback, the real connectors, a SQLite catalog, its summary, the API, a living org.

/// `println!` that ignores a closed stdout (`surveyor demo | head`) instead of panicking.
macro_rules! say {
    ($($arg:tt)*) => {{
        use std::io::Write as _;
        let _ = writeln!(std::io::stdout().lock(), $($arg)*);
    }};
}

mod progress;
mod report;
mod world;

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use chrono::Utc;
use clap::{Args, ValueEnum};
use surveyor_api::{ConnectorView, Control, TriggerRefusal};
use surveyor_engine::lease::{self, Lease};
use surveyor_engine::schedule::{Job, Scheduler, SchedulerHandle, SchedulerOptions};
use surveyor_engine::{ReconcileOptions, run_connector};
use surveyor_model::{Accepted, Connector, ConnectorMetric, Delivery, DeliveryRefusal};
use surveyor_sim::{Org, OrgSpec};
use surveyor_store::Store;

use crate::CliError;
use crate::registry;
use crate::setup::{api_config, audit_sources, load, open, reconcile_options, shutdown_signal};
use progress::{Progress, Watched};
use report::{RunResult, Summary};
use world::World;

/// `surveyor demo --help`'s examples (a literal, for `concat!`).
macro_rules! examples {
    () => {
        "Examples:
  surveyor demo --once                sync, print the summary, exit
  surveyor demo                       ... then serve the API, change the org every 30s
  surveyor demo --once --changes 4    ... and show four changes without waiting
  surveyor demo --size medium --seed 7 --port 8080 --mutate-every 10"
    };
}

/// Run the whole product on a simulated organisation: no tokens, no network
#[derive(Debug, Args)]
#[command(
    after_help = examples!(),
    after_long_help = concat!(
        "What it does:\n  ",
        "Starts simulated GitHub, GitLab, Kubernetes, PagerDuty and Jira APIs on loopback, all\n  ",
        "serving one generated org (teams, people, repositories with CODEOWNERS and manifests,\n  ",
        "workloads, on-call, Jira projects), writes a config that points the real connectors at\n  ",
        "them (<name>.toml beside the catalog; tokens as ${ENV} references the demo sets for\n  ",
        "itself), syncs into a SQLite catalog with a progress line per connector, and prints a\n  ",
        "summary: entities per kind, entities merged from several sources, ownership gaps and\n  ",
        "drift findings per rule.\n\n  ",
        "Without --once it then serves the HTTP API, as `surveyor serve` does, and the org lives:\n  ",
        "every --mutate-every seconds one thing changes (a repository renamed, an owner changed\n  ",
        "in CODEOWNERS, a workload removed, a team disbanded, a repository created, archived or\n  ",
        "deleted, a person leaving). The simulated APIs announce it as their vendors do (signed\n  ",
        "webhooks to /hooks/<connector>, a Kubernetes watch), so the catalog has it within a\n  ",
        "second; a sync then finds what events missed, and the demo prints both.\n  ",
        "Ctrl-C stops it.\n\n",
        examples!()
    )
)]
pub struct DemoArgs {
    /// How big an org: small (6 teams, 30 people, 40 repositories), medium (50, 400, 1,000)
    /// or large (500, 4,000, 10,000)
    #[arg(long, value_enum, default_value_t = Size::Small)]
    pub size: Size,
    /// Seed of the generated org: the same seed gives the same org and the same changes
    #[arg(long, default_value_t = 42)]
    pub seed: u64,
    /// Port of the HTTP API on 127.0.0.1; the simulated APIs take the five ports after it, so
    /// their URLs (which links in the catalog hold) stay the same between runs. 0: any free ports
    #[arg(long, default_value_t = 7878)]
    pub port: u16,
    /// Sync, print the summary and exit (no API, no waiting for changes)
    #[arg(long)]
    pub once: bool,
    /// The SQLite catalog; the config (<name>.toml) and kubeconfig are written beside it
    #[arg(long, value_name = "PATH", default_value = "surveyor-demo.db")]
    pub db: PathBuf,
    /// Change the org every this many seconds, then sync and print what changed
    #[arg(long, value_name = "SECS", default_value_t = 30,
          value_parser = clap::value_parser!(u64).range(1..=86_400))]
    pub mutate_every: u64,
    /// Right after the first sync, change the org this many times, each followed by a sync
    /// (with --once: a way to watch the org live without waiting)
    #[arg(long, value_name = "N", default_value_t = 0)]
    pub changes: usize,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Size {
    Small,
    Medium,
    Large,
}

impl Size {
    fn spec(self, seed: u64) -> OrgSpec {
        let spec = match self {
            Self::Small => OrgSpec::small(),
            Self::Medium => OrgSpec::medium(),
            Self::Large => OrgSpec::large(),
        };
        OrgSpec { seed, ..spec }
    }

    fn name(self) -> &'static str {
        match self {
            Self::Small => "small",
            Self::Medium => "medium",
            Self::Large => "large",
        }
    }
}

/// Sets the variables the demo's config names for the fakes' tokens, so the config loads
/// without the user exporting anything. The config is read through the process environment
/// (`${ENV}` references are expanded when it is parsed), hence variables and not a map.
///
/// # Safety
///
/// No other thread may exist: changing the environment while another thread reads it is
/// undefined behaviour. `main` calls this before telemetry and the async runtime start.
pub unsafe fn export_tokens() {
    for (name, value) in world::TOKEN_VARIABLES {
        // SAFETY: the caller guarantees this thread is the only one.
        unsafe { std::env::set_var(name, value) };
    }
}

/// Where the demo writes its files: the catalog, and beside it the config and kubeconfig.
struct Files {
    dir: PathBuf,
    config: PathBuf,
    database: String,
    kubeconfig: String,
    cache: String,
}

impl Files {
    fn for_db(db: &Path) -> Result<Self, CliError> {
        let bad = |why: &str| CliError::Input(format!("--db {}: {why}", db.display()));
        if db.is_dir() {
            return Err(bad(
                "is a directory; give a file path like ./surveyor-demo.db",
            ));
        }
        let dir = match db.parent() {
            Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
            _ => PathBuf::from("."),
        };
        if !dir.is_dir() {
            return Err(bad("its directory does not exist"));
        }
        let name = db
            .file_name()
            .and_then(|n| n.to_str())
            .ok_or_else(|| bad("not a file name in UTF-8"))?;
        let stem = db
            .file_stem()
            .and_then(|s| s.to_str())
            .filter(|s| !s.is_empty())
            .ok_or_else(|| bad("not a file name in UTF-8"))?;
        let config = dir.join(format!("{stem}.toml"));
        if db
            .extension()
            .is_some_and(|e| e == "toml" || e == "kubeconfig")
        {
            return Err(bad(
                "the demo writes its config and kubeconfig beside the catalog under the catalog's name; give the catalog another extension (.db)",
            ));
        }
        Ok(Self {
            config,
            database: name.to_string(),
            kubeconfig: format!("{stem}.kubeconfig"),
            cache: format!("{stem}.cache"),
            dir,
        })
    }
}

fn write_file(path: &Path, text: &str) -> Result<(), CliError> {
    std::fs::write(path, text)
        .map_err(|e| CliError::Runtime(anyhow::anyhow!("cannot write {}: {e}", path.display())))
}

/// What the API shows of the demo's connectors on `/api/v1/connectors`, and where the
/// simulated APIs' webhooks go (the scheduler that reads again what they name).
struct DemoControl {
    status: Arc<Mutex<Vec<ConnectorView>>>,
    connectors: Vec<Arc<dyn Connector>>,
    events: SchedulerHandle,
}

impl Control for DemoControl {
    fn connectors(&self) -> Vec<ConnectorView> {
        self.status
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    fn trigger(&self, id: &str) -> Result<(), TriggerRefusal> {
        // The demo syncs after each change of the org, on its own clock.
        if self.connectors.iter().any(|c| c.id() == id) {
            Err(TriggerRefusal::Busy(id.to_string()))
        } else {
            Err(TriggerRefusal::Unknown(id.to_string()))
        }
    }

    fn deliver(&self, id: &str, delivery: Delivery) -> Result<Accepted, DeliveryRefusal> {
        self.events.deliver(id, delivery)
    }

    fn connector_metrics(&self) -> Vec<(String, Vec<ConnectorMetric>)> {
        self.connectors
            .iter()
            .map(|c| (c.id().to_string(), c.metrics()))
            .collect()
    }
}

/// The catalog side of the demo: the connectors the config describes and where they write.
struct Catalog {
    store: Store,
    options: ReconcileOptions,
    connectors: Vec<Arc<dyn Connector>>,
    sources: surveyor_audit::Sources,
    classify: surveyor_model::classify::ClassifyRules,
    scorecards: Vec<surveyor_model::score::Scorecard>,
    status: Arc<Mutex<Vec<ConnectorView>>>,
    schedule: Option<String>,
    /// While events are read again beside the syncs, each sync of a connector holds its lease
    /// under this name, as the scheduler's refreshes do under theirs: never both at once.
    sweeper: Option<String>,
}

impl Catalog {
    /// Runs every connector once, in the config's order (as `surveyor sync` does).
    async fn sync(&self, progress: &Progress) -> Vec<RunResult> {
        let tasks: Vec<_> = self
            .connectors
            .iter()
            .map(|c| progress.task(c.id()))
            .collect();
        let mut results = Vec::new();
        for (i, (connector, task)) in self.connectors.iter().zip(tasks).enumerate() {
            self.set_status(i, |v| {
                v.running = true;
                v.last_started = Some(Utc::now());
            });
            let lease = self.lease(connector.id()).await;
            task.start();
            let watched = Watched {
                inner: Arc::clone(connector),
                task: Arc::clone(&task),
            };
            let report = run_connector(&self.store, &watched, &self.options)
                .await
                .map_err(|e| e.to_string());
            if let Some(lease) = lease {
                lease.release().await;
            }
            task.finish(report.as_ref().map_err(String::as_str));
            self.set_status(i, |v| {
                v.running = false;
                v.last_status = Some(match &report {
                    Ok(r) => r.status.as_str().to_string(),
                    Err(_) => "failed".into(),
                });
                v.last_error = match &report {
                    Ok(r) => r.error.clone(),
                    Err(e) => Some(e.clone()),
                };
            });
            results.push(RunResult {
                connector: connector.id().to_string(),
                report,
                elapsed: task.elapsed(),
            });
        }
        results
    }

    /// `id`'s lease, waited for while a refresh holds it; none when no events run.
    async fn lease(&self, id: &str) -> Option<Lease> {
        let holder = self.sweeper.as_deref()?;
        let ttl = lease::default_ttl(self.store.backend());
        let deadline = Instant::now() + Duration::from_secs(120);
        loop {
            match Lease::take(&self.store, id, holder, Utc::now(), ttl).await {
                Ok(Some(l)) => return Some(l),
                Ok(None) if Instant::now() < deadline => {
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
                Ok(None) => {
                    eprintln!(
                        "warning: {id}: a refresh held its lease for 2 minutes; syncing anyway"
                    );
                    return None;
                }
                Err(e) => {
                    eprintln!("warning: {id}: cannot take its lease: {e}");
                    return None;
                }
            }
        }
    }

    fn set_status(&self, index: usize, change: impl FnOnce(&mut ConnectorView)) {
        if let Some(v) = self
            .status
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get_mut(index)
        {
            change(v);
        }
    }

    fn set_next_run(&self, at: chrono::DateTime<Utc>) {
        for v in self
            .status
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .iter_mut()
        {
            v.next_run = Some(at);
            v.schedule.clone_from(&self.schedule);
        }
    }

    /// Records the audits' findings with their history, then classifies the Components and
    /// grades the scorecards, as `surveyor sync` does after a sync.
    async fn record_findings(&self) -> Option<surveyor_audit::Recorded> {
        let recorded = match surveyor_audit::record(&self.store, &self.sources, Utc::now()).await {
            Ok(recorded) => Some(recorded),
            Err(e) => {
                eprintln!("warning: could not record audit findings: {e}");
                None
            }
        };
        let graded =
            crate::setup::grade_catalog(&self.store, &self.classify, &self.scorecards).await;
        if let Err(e) = graded {
            eprintln!("warning: could not classify and grade the catalog: {e}");
        }
        recorded
    }

    /// Changes the org once, shows what its events brought in (when the APIs send them),
    /// syncs, and prints what the sync changed.
    async fn live_once(&self, world: &mut World, number: usize) -> Result<(), CliError> {
        let since = Utc::now();
        let what = world.change();
        say!("\nChange {number}: {what}");
        let events = self.sweeper.is_some();
        if events {
            report::print_events(&self.store, since).await?;
        }
        let since = Utc::now();
        let runs = self.sync(&Progress::Quiet).await;
        let findings = self.record_findings().await;
        report::print_round(&self.store, &runs, findings.as_ref(), since, events).await?;
        Ok(())
    }
}

pub async fn run(args: DemoArgs) -> Result<(), CliError> {
    let files = Files::for_db(&args.db)?;
    // Bind first: a busy port should fail before a long sync, not after it.
    let listener = if args.once {
        None
    } else {
        let addr = format!("127.0.0.1:{}", args.port);
        Some(tokio::net::TcpListener::bind(&addr).await.map_err(|e| {
            CliError::Runtime(anyhow::anyhow!(
                "cannot listen on {addr}: {e} (choose another with --port, or 0 for any)"
            ))
        })?)
    };
    let listen = match &listener {
        Some(l) => l
            .local_addr()
            .map(|a| a.to_string())
            .unwrap_or_else(|_| format!("127.0.0.1:{}", args.port)),
        None => format!("127.0.0.1:{}", args.port),
    };

    let spec = args.size.spec(args.seed);
    let org = Org::generate(&spec);
    // The simulated APIs take the ports after the API's, steady from one run to the next.
    let first_port = (args.port != 0).then(|| args.port.checked_add(1)).flatten();
    let (mut world, warnings) = World::start(org, first_port)
        .await
        .map_err(|e| CliError::Runtime(anyhow::anyhow!("cannot start the simulated APIs: {e}")))?;
    eprintln!(
        "surveyor demo: simulated org {:?} ({}: {} teams, {} people, {} repositories; seed {})",
        world.org().name,
        args.size.name(),
        spec.teams,
        spec.people,
        spec.repos,
        spec.seed
    );
    for (what, url) in world.endpoints() {
        eprintln!("  {what:<11} {url}");
    }
    for w in warnings {
        eprintln!("  warning: {w}");
    }
    write_file(&files.dir.join(&files.kubeconfig), &world.kubeconfig())?;
    write_file(
        &files.config,
        &world.config(
            &files.database,
            &files.kubeconfig,
            &files.cache,
            &listen,
            !args.once,
        ),
    )?;
    eprintln!(
        "  wrote {} (tokens as ${{ENV}} references, set by the demo for itself)",
        files.config.display()
    );

    // From here on the demo is `surveyor sync` on that config: the same loader, registry and
    // reconcile options.
    let config = load(&files.config)?;
    let base = config.base_dir();
    let mut connectors: Vec<Arc<dyn Connector>> = Vec::new();
    for spec in config.connectors.iter().filter(|c| c.enabled) {
        connectors.push(Arc::from(
            registry::build(spec, &base).map_err(CliError::Input)?,
        ));
    }
    let store = open(&config).await?;
    let schedule = (!args.once).then(|| format!("every {}s (surveyor demo)", args.mutate_every));
    let status = connectors
        .iter()
        .map(|c| ConnectorView {
            id: c.id().to_string(),
            kind: c.kind().to_string(),
            schedule: schedule.clone(),
            ..ConnectorView::default()
        })
        .collect();
    let catalog = Catalog {
        options: reconcile_options(&config, false, false),
        sources: audit_sources(&config),
        classify: config.classify.clone(),
        scorecards: config.scorecards.clone(),
        store,
        connectors,
        status: Arc::new(Mutex::new(status)),
        schedule,
        sweeper: None,
    };

    let started = Instant::now();
    let runs = catalog.sync(&Progress::for_stderr()).await;
    say!(
        "Synced into {} in {:.1}s",
        args.db.display(),
        started.elapsed().as_secs_f64()
    );
    report::print_runs(&runs);
    let recorded = catalog.record_findings().await;
    Summary::read(&catalog.store, &catalog.sources, &catalog.scorecards)
        .await?
        .print();
    if let Some(recorded) = recorded {
        say!(
            "Findings recorded with their history (surveyor audit ... --history): {}",
            report::delta(&recorded)
        );
    }
    let all_succeeded = runs.iter().all(RunResult::succeeded);

    let mut changes = 0;
    while changes < args.changes {
        changes += 1;
        catalog.live_once(&mut world, changes).await?;
    }

    let Some(listener) = listener else {
        catalog.store.close().await;
        return if all_succeeded {
            Ok(())
        } else {
            Err(CliError::Exit(1))
        };
    };

    // Events: the simulated APIs post webhooks to the API below and the cluster is watched;
    // a scheduler without schedules reads again what they name, under each connector's lease.
    let jobs = catalog
        .connectors
        .iter()
        .map(|c| Job::on_demand(Arc::clone(c), Duration::from_secs(600)))
        .collect();
    let scheduler = Scheduler::new(
        catalog.store.clone(),
        jobs,
        SchedulerOptions {
            reconcile: catalog.options.clone(),
            holder: lease::this_process(),
            lease_ttl: lease::default_ttl(catalog.store.backend()),
            grace: Duration::from_secs(5),
        },
    );
    let control: Arc<dyn Control> = Arc::new(DemoControl {
        status: Arc::clone(&catalog.status),
        connectors: catalog.connectors.clone(),
        events: scheduler.handle(),
    });
    let catalog = Catalog {
        sweeper: Some(format!("{}#demo-sync", lease::this_process())),
        ..catalog
    };
    let app = surveyor_api::router(catalog.store.clone(), api_config(&config), Some(control));
    let (stop, mut stopped) = tokio::sync::watch::channel(false);
    let events = tokio::spawn(scheduler.run(stop.subscribe()));
    let api = tokio::spawn(surveyor_api::serve(listener, app, async move {
        let _ = stopped.wait_for(|s| *s).await;
    }));
    let base_url = format!("http://{listen}");
    world.send_webhooks(&base_url).await;
    say!("\nServing the catalog at {base_url}");
    say!(
        "  {base_url}/                     the console: search, entities, graphs, gaps, drift, changes, runs"
    );
    say!("  {base_url}/docs                 every operation");
    say!("  {base_url}/api/v1/entities      the entities (try ?kind=component&q=payments)");
    say!("  {base_url}/api/v1/changes       the history");
    say!("  {base_url}/api/v1/audit/ownership");
    say!(
        "The org changes every {}s: its webhooks and the cluster's watch bring each change in at once, and a sync after it finds what they missed; Ctrl-C stops.",
        args.mutate_every
    );

    let every = Duration::from_secs(args.mutate_every);
    let shutdown = shutdown_signal();
    tokio::pin!(shutdown);
    loop {
        catalog.set_next_run(
            Utc::now() + chrono::Duration::from_std(every).unwrap_or(chrono::Duration::zero()),
        );
        tokio::select! {
            _ = &mut shutdown => break,
            _ = tokio::time::sleep(every) => {}
        }
        changes += 1;
        tokio::select! {
            // Dropping a sync midway rolls its open scope back.
            _ = &mut shutdown => break,
            result = catalog.live_once(&mut world, changes) => result?,
        }
    }
    eprintln!("surveyor demo: stopping");
    let _ = stop.send(true);
    let _ = events.await;
    if let Ok(Err(e)) = api.await {
        tracing::warn!(error = %e, "the API server stopped with an error");
    }
    catalog.store.close().await;
    Ok(())
}
