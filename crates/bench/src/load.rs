//! The `load` scenario: what `surveyor serve` does, in process (the scheduler running every
//! connector against the fakes back to back while the org changes, and the HTTP API), under
//! many concurrent API clients; counts requests, errors, lock errors and completed syncs.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde::Serialize;
use surveyor_api::Control;
use surveyor_engine::schedule::{Job, Scheduler, SchedulerOptions};
use surveyor_store::Store;
use tokio::sync::watch;

use crate::clients::{self, Latency, QueryMix, is_lock_error};
use crate::db::{Backend, PostgresArgs};
use crate::fakes::{Fakes, Size, on_each_backend, reconcile_options};
use crate::report::{Outcome, Table, fmt_int, round};

#[derive(Serialize, clap::Args)]
pub struct LoadBench {
    #[arg(long, value_enum, default_value_t = Size::Medium)]
    pub size: Size,
    #[arg(long)]
    pub repos: Option<usize>,
    #[arg(long, default_value_t = 64)]
    pub clients: usize,
    /// At least this long, and until every connector finished a sync
    #[arg(long, default_value_t = 60)]
    pub seconds: u64,
    /// How often the simulated org changes (a repo renamed, archived, deleted, re-owned)
    #[arg(long, default_value_t = 2000)]
    pub mutate_every_ms: u64,
    #[arg(long, default_value_t = 1000)]
    pub requests_per_second: u32,
    #[command(flatten)]
    #[serde(skip)]
    pub pg: PostgresArgs,
    #[arg(long)]
    pub no_sqlite: bool,
}

#[derive(Serialize, Default)]
struct Syncs {
    completed: usize,
    by_connector: BTreeMap<String, BTreeMap<String, usize>>,
    /// Runs that did not succeed, and scheduler errors (a lease not taken), with their text.
    failures: Vec<String>,
    lock_errors: usize,
    org_changes: usize,
}

#[derive(Serialize)]
struct BackendFigures {
    backend: &'static str,
    seconds: f64,
    api: Latency,
    by_query: BTreeMap<&'static str, Latency>,
    syncs: Syncs,
    lock_errors: usize,
    entities_at_end: i64,
}

pub async fn run(b: LoadBench) -> anyhow::Result<Outcome> {
    let (spec, org) = b.size.org(b.repos);
    println!(
        "org {:?}: {} repos, {} teams, {} people; {} clients for {} s; the org changes every {} ms; connector limit {} requests/s",
        b.size,
        spec.repos,
        spec.teams,
        spec.people,
        b.clients,
        b.seconds,
        b.mutate_every_ms,
        b.requests_per_second
    );
    on_each_backend(
        &b,
        b.no_sqlite,
        &b.pg.postgres,
        &org,
        None,
        async |fakes, backend, store, dir| run_backend(fakes, backend, store, dir, &b).await,
        |r| print(r, &b),
    )
    .await
}

/// The query mix: lists by kind and owner, Backstage by-query, runs and connector status.
fn mix(teams: Arc<Vec<String>>) -> QueryMix {
    Arc::new(move |c, n| {
        let k = c * 7 + n as usize * 13;
        let team = &teams[k % teams.len().max(1)];
        match (c + n as usize) % 5 {
            0 => (
                "list kind",
                "/api/v1/entities?kind=component&limit=50".into(),
            ),
            1 => (
                "list kind+owner",
                format!("/api/v1/entities?kind=component&owner={team}&limit=50"),
            ),
            2 => (
                "by-query",
                format!(
                    "/api/catalog/entities/by-query?filter=kind%3Dcomponent%2Crelations.ownedBy%3Dgroup%3Adefault%2F{team}&limit=20"
                ),
            ),
            3 => ("runs", "/api/v1/runs?limit=20".into()),
            _ => ("connectors", "/api/v1/connectors".into()),
        }
    })
}

async fn run_backend(
    fakes: &Fakes,
    backend: Backend,
    store: &Store,
    dir: &Path,
    b: &LoadBench,
) -> anyhow::Result<BackendFigures> {
    let jobs: Vec<Job> = fakes
        .connectors(dir, b.requests_per_second)?
        .into_iter()
        .map(|c| Job {
            run_on_start: true,
            ..Job::on_demand(c, Duration::from_secs(600))
        })
        .collect();
    let ids: Vec<String> = jobs.iter().map(|j| j.id.clone()).collect();
    let scheduler = Scheduler::new(
        store.clone(),
        jobs,
        SchedulerOptions {
            reconcile: reconcile_options(),
            holder: format!("surveyor-bench:{}", std::process::id()),
            lease_ttl: Duration::from_secs(60),
            grace: Duration::from_secs(30),
        },
    );
    let handle = scheduler.handle();
    let control: Arc<dyn Control> = Arc::new(handle.clone());
    let app = surveyor_api::router(
        store.clone(),
        surveyor_api::ApiConfig::default(),
        Some(control),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let base = format!("http://{}", listener.local_addr()?);
    let (stop_tx, stop_rx) = watch::channel(false);
    let mut api_stop = stop_rx.clone();
    let server = tokio::spawn(surveyor_api::serve(listener, app, async move {
        let _ = api_stop.wait_for(|s| *s).await;
    }));
    let started_at = chrono::Utc::now();
    let scheduler_task = tokio::spawn(scheduler.run(stop_rx.clone()));

    let teams: Vec<String> = fakes.org.live_teams().map(|t| t.slug.clone()).collect();
    let stop_clients = Arc::new(AtomicBool::new(false));
    let driver = {
        let (base, stop) = (base.clone(), Arc::clone(&stop_clients));
        let (clients, mix) = (b.clients, mix(Arc::new(teams)));
        tokio::spawn(async move {
            clients::drive(&base, clients, mix, stop, Arc::new(AtomicBool::new(false))).await
        })
    };

    // Keep every connector busy: a trigger waits behind each running sync, and the org
    // changes as it goes, so syncs have something to write.
    let scheduler_errors: Arc<Mutex<Vec<String>>> = Arc::default();
    let started = Instant::now();
    let mut last_change = Instant::now();
    let mut org_changes = 0;
    loop {
        for id in &ids {
            let _ = handle.trigger(id);
        }
        for s in handle.connectors() {
            if let Some(e) = s.last_error.filter(|e| e.starts_with("lease")) {
                let mut errors = scheduler_errors.lock().unwrap_or_else(|p| p.into_inner());
                let line = format!("{}: {e}", s.id);
                if !errors.contains(&line) {
                    errors.push(line);
                }
            }
        }
        if last_change.elapsed() >= Duration::from_millis(b.mutate_every_ms.max(1)) {
            fakes.github.with_org(&fakes.org.name, |o| o.mutate());
            fakes.gitlab.with_org(|o| o.mutate());
            org_changes += 1;
            last_change = Instant::now();
        }
        // The run ends after `seconds`, once every connector has finished a sync: a load
        // test in which no sync completed would say nothing about syncs.
        if started.elapsed() >= Duration::from_secs(b.seconds) {
            let runs = store.list_runs(None, 100_000).await?;
            let finished = |id: &str| {
                runs.iter().any(|r| {
                    r.connector == id && r.started_at >= started_at && r.finished_at.is_some()
                })
            };
            if ids.iter().all(|id| finished(id)) {
                break;
            }
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    stop_clients.store(true, Ordering::Relaxed);
    let samples = driver.await??;
    let seconds = started.elapsed().as_secs_f64();
    let _ = stop_tx.send(true);
    let _ = scheduler_task.await;
    let _ = server.await;

    let mut syncs = Syncs {
        org_changes,
        ..Syncs::default()
    };
    for r in store.list_runs(None, 100_000).await? {
        if r.started_at < started_at {
            continue;
        }
        *syncs
            .by_connector
            .entry(r.connector.clone())
            .or_default()
            .entry(r.status.clone())
            .or_default() += 1;
        if r.status == "succeeded" || r.status == "partial" {
            syncs.completed += 1;
        }
        if r.status != "succeeded" {
            let text = format!(
                "{} run {}: {}{}",
                r.connector,
                r.status,
                r.error.as_deref().unwrap_or(""),
                r.outcome.map(|o| format!(" {o}")).unwrap_or_default()
            );
            if is_lock_error(&text) {
                syncs.lock_errors += 1;
            }
            syncs.failures.push(text);
        }
    }
    for e in scheduler_errors
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .iter()
    {
        if is_lock_error(e) {
            syncs.lock_errors += 1;
        }
        syncs.failures.push(e.clone());
    }
    let entities_at_end = store.table_counts().await.map(|c| c.entities).unwrap_or(0);
    let api = clients::latency(samples.iter(), seconds);
    Ok(BackendFigures {
        backend: backend.label(),
        seconds: round(seconds, 1),
        lock_errors: api.lock_errors + syncs.lock_errors,
        by_query: clients::by_label(&samples, seconds),
        api,
        syncs,
        entities_at_end,
    })
}

fn print(r: &BackendFigures, b: &LoadBench) {
    let mut t = Table::new(
        format!(
            "load on {}: {} API clients for {:.0} s while every connector syncs back to back",
            r.backend, b.clients, r.seconds
        ),
        &[
            "query",
            "requests",
            "requests/s",
            "p50 ms",
            "p99 ms",
            "max ms",
            "errors",
        ],
    );
    let row = |t: &mut Table, label: &str, l: &Latency| {
        t.row(vec![
            label.to_string(),
            fmt_int(l.requests as u64),
            fmt_int(l.requests_per_s.round() as u64),
            format!("{:.2}", l.p50_ms),
            format!("{:.2}", l.p99_ms),
            format!("{:.2}", l.max_ms),
            l.errors.to_string(),
        ]);
    };
    for (label, l) in &r.by_query {
        row(&mut t, label, l);
    }
    row(&mut t, "all", &r.api);
    t.note(format!(
        "syncs completed: {} ({:?}); org changes: {}; lock errors: {} (API {}, syncs {}); {} entities at the end",
        r.syncs.completed,
        r.syncs.by_connector,
        r.syncs.org_changes,
        r.lock_errors,
        r.api.lock_errors,
        r.syncs.lock_errors,
        fmt_int(r.entities_at_end as u64)
    ));
    for e in &r.api.error_examples {
        t.note(format!("API error: {e}"));
    }
    // A partial run is the connector refusing to trust a crawl the org changed under (a group
    // deleted between listing it and reading its members): counted, not an error.
    for e in r.syncs.failures.iter().take(5) {
        t.note(format!("sync not succeeded: {e}"));
    }
    t.print();
}
