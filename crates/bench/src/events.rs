//! The `events` scenario: the simulated org's sources announce their changes to `surveyor serve`
//! in this process, and per source it measures the time from a change at the source to the
//! change in the catalog (p50/p99), the requests spent per change, and — with a share of the
//! events dropped — how many changes the next sweep repaired.
//!
//! Each source is measured alone after a first whole crawl of every connector: `--changes`
//! changes one at a time, each awaited in the catalog; then `--lost-changes` changes with
//! `--drop` of the events never sent, after which the sweep (the connector's scheduled crawl,
//! triggered) runs, and what was still missing before it and after it is counted.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context;
use serde::Serialize;
use surveyor_api::Control;
use surveyor_connector_kubernetes::SYSTEM_NAMESPACES;
use surveyor_engine::run_connector;
use surveyor_engine::schedule::{Job, Scheduler, SchedulerHandle, SchedulerOptions};
use surveyor_model::EntityRef;
use surveyor_model::names::entity_name;
use surveyor_sim::gitlab::every_other;
use surveyor_sim::{WatchKnobs, WebhookSink, webhook::Webhooks};
use surveyor_store::Store;

use crate::db::{Backend, PostgresArgs};
use crate::fakes::{Fakes, Size, on_each_backend, reconcile_options};
use crate::report::{Outcome, Table, percentile_ms, round};

/// The secret every receiver checks and every fake signs with.
const SECRET: &str = "surveyor-bench-hook-secret";

/// How long one change may take to reach the catalog before the run gives up on it.
const PATIENCE: Duration = Duration::from_secs(30);

#[derive(Serialize, clap::Args)]
pub struct EventsBench {
    #[arg(long, value_enum, default_value_t = Size::Medium)]
    pub size: Size,
    /// Changes made at each source one at a time, each awaited in the catalog
    #[arg(long, default_value_t = 40)]
    pub changes: usize,
    /// Changes made at each source while a share of their events is dropped (those a later
    /// one undid, a Jira key changed again, are not counted)
    #[arg(long, default_value_t = 40)]
    pub lost_changes: usize,
    /// The share of events dropped while the lost changes are made
    #[arg(long, default_value_t = 0.3)]
    pub drop: f64,
    #[command(flatten)]
    #[serde(skip)]
    pub pg: PostgresArgs,
}

#[derive(Serialize)]
struct SourceFigures {
    source: &'static str,
    change: &'static str,
    changes: usize,
    /// From the change at the source to the change readable in the catalog.
    p50_ms: f64,
    p99_ms: f64,
    max_ms: f64,
    /// Requests the connector sent while the changes came in (reads of what events named).
    requests: u64,
    requests_per_change: f64,
    lost_changes: usize,
    /// Deliveries planned but never sent.
    events_dropped: usize,
    /// Lost changes not in the catalog when the events had all been handled.
    missing_before_sweep: usize,
    /// What the sweep reported as found without an event (`counts.unannounced`).
    sweep_unannounced: Option<u64>,
    missing_after_sweep: usize,
    repaired_pct: f64,
    sweep_requests: u64,
}

#[derive(Serialize)]
struct BackendFigures {
    backend: &'static str,
    sources: Vec<SourceFigures>,
}

/// How a fake announces its changes, for what became of them.
enum Announcer {
    Hooks(Webhooks),
    /// Kubernetes watches; `before` changes had been dropped already.
    Watch {
        before: usize,
    },
}

impl Announcer {
    async fn settled(&self) {
        if let Self::Hooks(h) = self {
            h.settled().await;
        }
    }

    fn dropped(&self, fakes: &Fakes) -> usize {
        match self {
            Self::Hooks(h) => h.planted().dropped().len(),
            Self::Watch { before } => fakes.kube.dropped_changes().len() - before,
        }
    }
}

/// What shows a change in the catalog: the source observes an entity under this key, or its
/// observation with this external id changed.
#[derive(Debug)]
enum Expect {
    Observed(String),
    Changed(String),
}

/// A source and the change it is measured with.
#[derive(Clone, Copy)]
enum Source {
    Github,
    Gitlab,
    PagerDuty,
    Jira,
    Kubernetes,
}

impl Source {
    const ALL: [Source; 5] = [
        Source::Github,
        Source::Gitlab,
        Source::PagerDuty,
        Source::Jira,
        Source::Kubernetes,
    ];

    fn id(self) -> &'static str {
        match self {
            Self::Github => "github",
            Self::Gitlab => "gitlab",
            Self::PagerDuty => "pagerduty",
            Self::Jira => "jira",
            Self::Kubernetes => "k8s",
        }
    }

    fn change(self) -> &'static str {
        match self {
            Self::Github => "rename a repository",
            Self::Gitlab => "create a project",
            Self::PagerDuty => "rename a service",
            Self::Jira => "change a project key",
            Self::Kubernetes => "create a deployment",
        }
    }

    /// From now on the source's fake announces its changes to `url` (Kubernetes: to its
    /// watches), dropping `drop` of them. Each phase has its own `seed`: the same seed would
    /// plant the same delivery ids, which the receiver takes once.
    async fn announce(self, fakes: &Fakes, url: &str, drop: f64, seed: u64) -> Announcer {
        let sink = WebhookSink {
            drop,
            seed,
            ..WebhookSink::reliable(url, SECRET)
        };
        Announcer::Hooks(match self {
            Self::Github => fakes.github.send_webhooks(sink).await,
            Self::Gitlab => fakes.gitlab.send_webhooks(sink).await,
            Self::PagerDuty => fakes.pagerduty.send_webhooks(sink).await,
            Self::Jira => fakes.jira.send_webhooks(sink).await,
            Self::Kubernetes => {
                fakes.kube.set_watch_knobs(WatchKnobs {
                    drop,
                    seed,
                    ..WatchKnobs::reliable()
                });
                let before = fakes.kube.dropped_changes().len();
                // The watches open once the scheduler runs; changes before would be lost.
                let deadline = Instant::now() + PATIENCE;
                while fakes.kube.open_watches() == 0 && Instant::now() < deadline {
                    tokio::time::sleep(Duration::from_millis(10)).await;
                }
                return Announcer::Watch { before };
            }
        })
    }

    /// Makes change number `n` at the source; what shows it in the catalog.
    fn make(self, fakes: &Fakes, n: usize) -> anyhow::Result<Expect> {
        let component = |name: &str| -> anyhow::Result<Expect> {
            Ok(Expect::Observed(
                EntityRef::new("Component", "default", name)?.key(),
            ))
        };
        match self {
            Self::Github => {
                let name = format!("ev-{n}");
                fakes
                    .github
                    .with_org(&fakes.org.name, |o| {
                        // Repositories whose names their descriptors do not set (renamed ones
                        // stay in the list: a small org's are renamed again).
                        let mut plain: Vec<&mut surveyor_sim::Repo> = o
                            .repos
                            .iter_mut()
                            .filter(|r| {
                                r.active
                                    && !r.archived
                                    && !r.files.contains_key("catalog-info.yaml")
                            })
                            .collect();
                        let count = plain.len().max(1);
                        let repo = plain.get_mut(n % count)?;
                        repo.name.clone_from(&name);
                        Some(())
                    })
                    .flatten()
                    .context("not enough repositories to rename")?;
                component(&name)
            }
            Self::Gitlab => loop {
                // The fake serves every other repository as a project.
                let added = fakes.gitlab.with_org(|o| {
                    let i = o.add_repo(0)?;
                    let r = &o.repos[i];
                    Some((every_other(r), r.name.clone()))
                });
                match added {
                    Some((true, name)) => {
                        break component(&entity_name(&name).context("a project name")?);
                    }
                    Some((false, _)) => continue,
                    None => anyhow::bail!("the org has no team to add a project to"),
                }
            },
            Self::PagerDuty => {
                // A service merges into its repository's component, whose name wins: the
                // rename shows as the service's observation changing.
                let name = format!("Ev Pd {n}");
                let id = fakes
                    .pagerduty
                    .with_account(|a| {
                        let id = a
                            .services
                            .keys()
                            .nth(n % a.services.len().max(1))
                            .cloned()?;
                        a.services.get_mut(&id)?["name"] = serde_json::json!(name);
                        Some(id)
                    })
                    .context("not enough services to rename")?;
                Ok(Expect::Changed(id))
            }
            Self::Jira => {
                let key = format!("EVJ{n}");
                let renamed = fakes.jira.with_site(|s| {
                    let old = s
                        .projects
                        .get(n % s.projects.len().max(1))
                        .map(|p| p.key.clone())?;
                    s.set_project_key(&old, &key).then_some(())
                });
                renamed.context("not enough projects to change the key of")?;
                Ok(Expect::Observed(
                    EntityRef::new("System", "default", &key.to_lowercase())?.key(),
                ))
            }
            Self::Kubernetes => {
                let name = format!("ev-{n}");
                let ns = fakes
                    .kube
                    .with_cluster(|c| {
                        c.names("namespaces")
                            .into_iter()
                            .map(|(_, ns)| ns)
                            .find(|ns| !SYSTEM_NAMESPACES.contains(&ns.as_str()))
                    })
                    .context("a namespace to deploy in")?;
                fakes.kube.with_cluster(|c| {
                    c.add_deployment(
                        &ns,
                        &name,
                        serde_json::json!({"app.kubernetes.io/name": name}),
                        "ghcr.io/acme/ev:1",
                    );
                });
                Ok(Expect::Observed(
                    EntityRef::new("Resource", "default", &format!("{name}.{ns}.prod"))?.key(),
                ))
            }
        }
    }

    /// Whether what `expect` looks for is still so at the source (a later change may have
    /// undone it).
    fn still_true(self, fakes: &Fakes, expect: &Expect) -> bool {
        match (self, expect) {
            (Self::Jira, Expect::Observed(key)) => {
                let site = fakes.jira.site();
                site.projects
                    .iter()
                    .any(|p| key.ends_with(&format!("/{}", p.key.to_lowercase())))
            }
            _ => true,
        }
    }
}

pub async fn run(b: EventsBench) -> anyhow::Result<Outcome> {
    let (spec, org) = b.size.org(None);
    println!(
        "org {:?}: {} repos, {} teams, {} people; {} changes per source awaited one by one, then {} with {:.0}% of their events dropped",
        b.size,
        spec.repos,
        spec.teams,
        spec.people,
        b.changes,
        b.lost_changes,
        b.drop * 100.0
    );
    on_each_backend(
        &b,
        false,
        &b.pg.postgres,
        &org,
        None,
        async |fakes, backend, store, dir| run_backend(fakes, backend, store, dir, &b).await,
        print,
    )
    .await
}

async fn run_backend(
    fakes: &Fakes,
    backend: Backend,
    store: &Store,
    dir: &std::path::Path,
    b: &EventsBench,
) -> anyhow::Result<BackendFigures> {
    let connectors = fakes.connectors_with(dir, 1000, Some(SECRET))?;
    let options = reconcile_options();
    // The catalog as a first crawl leaves it (and what each connector refreshes from).
    for c in &connectors {
        run_connector(store, c.as_ref(), &options)
            .await
            .with_context(|| format!("first crawl of {}", c.id()))?;
    }
    let jobs: Vec<Job> = connectors
        .into_iter()
        .map(|c| Job::on_demand(c, Duration::from_secs(600)))
        .collect();
    let scheduler = Scheduler::new(
        store.clone(),
        jobs,
        SchedulerOptions {
            reconcile: options,
            holder: format!("surveyor-bench:{}", std::process::id()),
            lease_ttl: Duration::from_secs(60),
            grace: Duration::from_secs(5),
        },
    );
    let handle = scheduler.handle();
    let control: Arc<dyn Control> = Arc::new(handle.clone());
    let (stop, stopped) = tokio::sync::watch::channel(false);
    let scheduling = tokio::spawn(scheduler.run(stopped));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    let app = surveyor_api::router(
        store.clone(),
        surveyor_api::ApiConfig::default(),
        Some(control),
    );
    let server = tokio::spawn(async move {
        let _ = surveyor_api::serve(listener, app, std::future::pending()).await;
    });

    let mut sources = Vec::new();
    for source in Source::ALL {
        let figures = measure(source, fakes, store, &handle, &format!("http://{addr}"), b).await;
        sources.push(figures?);
    }
    server.abort();
    let _ = stop.send(true);
    let _ = scheduling.await;
    Ok(BackendFigures {
        backend: backend.label(),
        sources,
    })
}

async fn measure(
    source: Source,
    fakes: &Fakes,
    store: &Store,
    handle: &SchedulerHandle,
    base: &str,
    b: &EventsBench,
) -> anyhow::Result<SourceFigures> {
    let id = source.id();
    let url = format!("{base}/hooks/{id}");

    // Every event delivered: one change at a time, each awaited in the catalog.
    let hooks = source.announce(fakes, &url, 0.0, 1).await;
    let before = fakes.requests(id);
    let mut latencies = Vec::with_capacity(b.changes);
    for n in 0..b.changes {
        let before = hashes(store, id).await?;
        let started = Instant::now();
        let key = source.make(fakes, n)?;
        if !appears(store, id, &key, &before, PATIENCE).await? {
            anyhow::bail!("{id}: {key:?} did not reach the catalog within {PATIENCE:?}");
        }
        latencies.push(started.elapsed());
    }
    hooks.settled().await;
    idle(handle, id).await;
    let requests = fakes.requests(id).since(before).requests;
    latencies.sort();

    // A share of the events dropped: what is missing once the rest are handled, and after
    // the sweep.
    let hooks = source.announce(fakes, &url, b.drop, 2).await;
    let unchanged = hashes(store, id).await?;
    let mut keys = Vec::with_capacity(b.lost_changes);
    for n in 0..b.lost_changes {
        keys.push(source.make(fakes, b.changes + n)?);
    }
    hooks.settled().await;
    idle(handle, id).await;
    // A small site's projects take several keys in turn: only the last is still true.
    keys.retain(|k| source.still_true(fakes, k));
    let missing_before_sweep = keys.len() - holding(store, id, &keys, &unchanged).await?;
    let before = fakes.requests(id);
    let sweep = sweep(store, handle, id).await?;
    let sweep_requests = fakes.requests(id).since(before).requests;
    let missing_after_sweep = keys.len() - holding(store, id, &keys, &unchanged).await?;
    let repaired = missing_before_sweep - missing_after_sweep.min(missing_before_sweep);
    Ok(SourceFigures {
        source: id,
        change: source.change(),
        changes: b.changes,
        p50_ms: round(percentile_ms(&latencies, 0.5), 1),
        p99_ms: round(percentile_ms(&latencies, 0.99), 1),
        max_ms: round(
            latencies.last().map_or(0.0, |d| d.as_secs_f64() * 1000.0),
            1,
        ),
        requests,
        requests_per_change: round(requests as f64 / b.changes.max(1) as f64, 2),
        lost_changes: keys.len(),
        events_dropped: hooks.dropped(fakes),
        missing_before_sweep,
        sweep_unannounced: sweep,
        missing_after_sweep,
        repaired_pct: if missing_before_sweep == 0 {
            100.0
        } else {
            round(100.0 * repaired as f64 / missing_before_sweep as f64, 1)
        },
        sweep_requests,
    })
}

/// Whether `expect` holds for `source` within `patience` (asked every 5 ms). The source's own
/// observation is looked at, since the entity it merges into may keep another source's name.
async fn appears(
    store: &Store,
    source: &str,
    expect: &Expect,
    hashes: &HashMap<String, String>,
    patience: Duration,
) -> anyhow::Result<bool> {
    let deadline = Instant::now() + patience;
    while Instant::now() < deadline {
        if holding(store, source, std::slice::from_ref(expect), hashes).await? == 1 {
            return Ok(true);
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    Ok(false)
}

/// Each live observation's hash by external id, to tell a changed one.
async fn hashes(store: &Store, source: &str) -> anyhow::Result<HashMap<String, String>> {
    Ok(store
        .observation_index(source)
        .await?
        .into_iter()
        .filter(|o| o.live)
        .map(|o| (o.external_id, o.hash))
        .collect())
}

/// How many of `expected` hold for `source` now; `before` are the hashes before the changes.
async fn holding(
    store: &Store,
    source: &str,
    expected: &[Expect],
    before: &HashMap<String, String>,
) -> anyhow::Result<usize> {
    let index = store.observation_index(source).await?;
    let live: HashMap<&str, &str> = index
        .iter()
        .filter(|o| o.live)
        .map(|o| (o.external_id.as_str(), o.hash.as_str()))
        .collect();
    let refs: HashSet<String> = index
        .iter()
        .filter(|o| o.live)
        .map(|o| o.entity_ref.to_lowercase())
        .collect();
    Ok(expected
        .iter()
        .filter(|e| match e {
            Expect::Observed(key) => refs.contains(&key.to_lowercase()),
            Expect::Changed(id) => {
                live.get(id.as_str()).copied() != before.get(id).map(String::as_str)
            }
        })
        .count())
}

/// Waits until the connector's worker has run what events asked for: past the time a burst
/// is left to settle, and not running.
async fn idle(handle: &SchedulerHandle, id: &str) {
    for _ in 0..2 {
        tokio::time::sleep(Duration::from_millis(400)).await;
        while handle.connectors().iter().any(|c| c.id == id && c.running) {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}

/// Runs the connector's scheduled crawl now and waits for it: the sweep. What it found that
/// no event announced.
async fn sweep(store: &Store, handle: &SchedulerHandle, id: &str) -> anyhow::Result<Option<u64>> {
    let last = store
        .list_runs(Some(id), 1)
        .await?
        .first()
        .map(|r| r.id.clone());
    handle
        .trigger(id)
        .map_err(|e| anyhow::anyhow!("trigger {id}: {e}"))?;
    let deadline = Instant::now() + Duration::from_secs(600);
    loop {
        if let Some(run) = store.list_runs(Some(id), 1).await?.into_iter().next()
            && Some(&run.id) != last.as_ref()
            && run.finished_at.is_some()
        {
            return Ok(run
                .counts
                .as_ref()
                .and_then(|c| c.get("unannounced"))
                .and_then(serde_json::Value::as_u64));
        }
        if Instant::now() > deadline {
            anyhow::bail!("the sweep of {id} did not finish");
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

fn print(r: &BackendFigures) {
    let mut t = Table::new(
        format!("events, {}: change at the source -> catalog", r.backend),
        &[
            "source",
            "change",
            "n",
            "p50 ms",
            "p99 ms",
            "max ms",
            "requests/change",
            "lost",
            "dropped events",
            "missing before sweep",
            "sweep found unannounced",
            "repaired",
            "sweep requests",
        ],
    );
    for s in &r.sources {
        t.row(vec![
            s.source.into(),
            s.change.into(),
            s.changes.to_string(),
            format!("{:.1}", s.p50_ms),
            format!("{:.1}", s.p99_ms),
            format!("{:.1}", s.max_ms),
            format!("{:.2}", s.requests_per_change),
            s.lost_changes.to_string(),
            s.events_dropped.to_string(),
            s.missing_before_sweep.to_string(),
            s.sweep_unannounced
                .map_or_else(|| "-".into(), |n| n.to_string()),
            format!("{:.0}%", s.repaired_pct),
            s.sweep_requests.to_string(),
        ]);
    }
    t.note("targets: p99 < 2000 ms, <= 3 requests per change, 100% of the lost changes repaired by the sweep");
    t.print();
}
