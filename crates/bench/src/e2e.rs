//! The `e2e` scenario: a simulated org through every real connector against the in-process
//! fakes into a fresh catalog, one connector after the other as `surveyor sync` runs them:
//! wall time per connector, observations per second per core, CPU time with the fakes' own
//! share of it (they run on threads of their own), peak RSS.

use std::path::Path;
use std::time::Instant;

use serde::Serialize;
use surveyor_engine::run_connector;
use surveyor_store::Store;

use crate::db::{Backend, PostgresArgs};
use crate::fakes::{Fakes, Size, on_each_backend, reconcile_options};
use crate::machine::{
    cores, cpu_seconds, peak_rss_mb, processes_cpu_seconds, reset_peak_rss, rss_mb,
};
use crate::report::{Outcome, Table, fmt_int, ratio, round};

#[derive(Serialize, clap::Args)]
pub struct E2eBench {
    #[arg(long, value_enum, default_value_t = Size::Large)]
    pub size: Size,
    /// Override the org's number of repositories
    #[arg(long)]
    pub repos: Option<usize>,
    #[arg(long, default_value_t = 1000)]
    pub requests_per_second: u32,
    #[command(flatten)]
    #[serde(skip)]
    pub pg: PostgresArgs,
}

#[derive(Serialize)]
struct ConnectorFigures {
    connector: String,
    status: String,
    wall_s: f64,
    /// CPU time of the whole process (connector, engine, database, and the fake serving it).
    cpu_s: f64,
    /// Of `cpu_s`, what the fakes' own threads used: the vendor's side, not ours.
    fakes_cpu_s: f64,
    /// On Postgres, what the database server on this machine used beside `cpu_s`.
    server_cpu_s: Option<f64>,
    requests: u64,
    observed: u64,
    created: u64,
    observations_per_s: f64,
}

#[derive(Serialize)]
struct BackendFigures {
    backend: &'static str,
    connectors: Vec<ConnectorFigures>,
    wall_s: f64,
    observed: u64,
    entities: u64,
    observations_per_s: f64,
    observations_per_s_per_core: f64,
    cores: usize,
    cpu_s: f64,
    /// Of `cpu_s`, what the fakes' own threads used.
    fakes_cpu_s: f64,
    /// `fakes_cpu_s` over `cpu_s`, in percent.
    fakes_cpu_share_pct: f64,
    /// On Postgres, what the database server on this machine used beside `cpu_s` (SQLite runs
    /// inside the process, in `cpu_s`); `None` where no server process is seen here.
    server_cpu_s: Option<f64>,
    /// Observations per CPU-second of the process and the server together.
    observations_per_cpu_s_with_server: Option<f64>,
    /// Observations per CPU-second: what one fully busy core would do.
    observations_per_cpu_s: f64,
    /// Observations per CPU-second of the process but the fakes: the connectors, engine and
    /// database alone.
    observations_per_cpu_s_without_fakes: f64,
    /// CPU time (the server's included, where measured) over wall time x cores: below 1, the
    /// cores were partly idle (waiting on the disk, on the fakes' answers, or on each other).
    cpu_utilisation: f64,
    /// RSS with the fakes started and the org generated, before the first sync.
    rss_before_mb: f64,
    /// The process's peak during the syncs (it holds the fakes too).
    peak_rss_mb: f64,
    peak_rss_reset: bool,
}

pub async fn run(b: E2eBench) -> anyhow::Result<Outcome> {
    let (spec, org) = b.size.org(b.repos);
    println!(
        "org {:?}: {} repos, {} teams, {} people; connector limit {} requests/s; fakes answer at once",
        b.size, spec.repos, spec.teams, spec.people, b.requests_per_second
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
    dir: &Path,
    b: &E2eBench,
) -> anyhow::Result<BackendFigures> {
    let options = reconcile_options();
    let connectors = fakes.connectors(dir, b.requests_per_second)?;
    let rss_before = rss_mb();
    let peak_rss_reset = reset_peak_rss();
    let mut figures = Vec::new();
    let started = Instant::now();
    for c in connectors {
        let before = fakes.requests(c.id());
        let t = Instant::now();
        let cpu = cpu_seconds();
        let fakes_cpu = fakes.cpu_seconds();
        let server_cpu = server_cpu_seconds(backend);
        let r = run_connector(store, c.as_ref(), &options).await?;
        let wall = t.elapsed().as_secs_f64();
        let cpu = cpu_seconds() - cpu;
        let fakes_cpu = fakes.cpu_seconds() - fakes_cpu;
        let server_cpu = server_cpu
            .zip(server_cpu_seconds(backend))
            .map(|(a, b)| b - a);
        figures.push(ConnectorFigures {
            connector: c.id().to_string(),
            status: r.status.as_str().to_string(),
            wall_s: round(wall, 3),
            cpu_s: round(cpu, 2),
            fakes_cpu_s: round(fakes_cpu, 2),
            server_cpu_s: server_cpu.map(|s| round(s, 2)),
            requests: fakes.requests(c.id()).since(before).requests,
            observed: r.counts.observations.observed,
            created: r.counts.entities.created,
            observations_per_s: round(ratio(r.counts.observations.observed as f64, wall), 0),
        });
    }
    let wall = started.elapsed().as_secs_f64();
    let peak = peak_rss_mb();
    let entities = store.table_counts().await.map(|c| c.entities).unwrap_or(0);
    let observed: u64 = figures.iter().map(|f| f.observed).sum();
    let cpu: f64 = figures.iter().map(|f| f.cpu_s).sum();
    let fakes_cpu: f64 = figures.iter().map(|f| f.fakes_cpu_s).sum();
    let server_cpu: Option<f64> = figures.iter().map(|f| f.server_cpu_s).sum();
    let per_s = ratio(observed as f64, wall);
    Ok(BackendFigures {
        backend: backend.label(),
        connectors: figures,
        wall_s: round(wall, 3),
        observed,
        entities: entities as u64,
        observations_per_s: round(per_s, 0),
        observations_per_s_per_core: round(per_s / cores() as f64, 0),
        cores: cores(),
        cpu_s: round(cpu, 2),
        fakes_cpu_s: round(fakes_cpu, 2),
        fakes_cpu_share_pct: round(100.0 * ratio(fakes_cpu, cpu), 1),
        server_cpu_s: server_cpu.map(|s| round(s, 2)),
        observations_per_cpu_s_with_server: server_cpu
            .map(|s| round(ratio(observed as f64, cpu + s), 0)),
        observations_per_cpu_s: round(ratio(observed as f64, cpu), 0),
        observations_per_cpu_s_without_fakes: round(ratio(observed as f64, cpu - fakes_cpu), 0),
        cpu_utilisation: round(
            ratio(cpu + server_cpu.unwrap_or(0.0), wall * cores() as f64),
            2,
        ),
        rss_before_mb: round(rss_before, 1),
        peak_rss_mb: round(peak, 1),
        peak_rss_reset,
    })
}

fn print(r: &BackendFigures) {
    let mut t = Table::new(
        format!("e2e on {}: every connector, one after the other", r.backend),
        &[
            "connector",
            "status",
            "seconds",
            "CPU s",
            "fakes CPU s",
            "fakes %",
            "server CPU s",
            "requests",
            "observations",
            "obs/s",
        ],
    );
    for f in &r.connectors {
        t.row(vec![
            f.connector.clone(),
            f.status.clone(),
            format!("{:.2}", f.wall_s),
            format!("{:.2}", f.cpu_s),
            format!("{:.2}", f.fakes_cpu_s),
            format!("{:.1}", 100.0 * ratio(f.fakes_cpu_s, f.cpu_s)),
            server_cell(f.server_cpu_s),
            fmt_int(f.requests),
            fmt_int(f.observed),
            format!("{:.0}", f.observations_per_s),
        ]);
    }
    t.row(vec![
        "all".into(),
        String::new(),
        format!("{:.2}", r.wall_s),
        format!("{:.2}", r.cpu_s),
        format!("{:.2}", r.fakes_cpu_s),
        format!("{:.1}", r.fakes_cpu_share_pct),
        server_cell(r.server_cpu_s),
        fmt_int(r.connectors.iter().map(|f| f.requests).sum()),
        fmt_int(r.observed),
        format!("{:.0}", r.observations_per_s),
    ]);
    t.note(format!(
        "{:.0} observations/s per core ({} cores); {:.0} per CPU-second of the process (the cores were {:.0}% busy{}); {} entities in the catalog",
        r.observations_per_s_per_core,
        r.cores,
        r.observations_per_cpu_s,
        100.0 * r.cpu_utilisation,
        if r.server_cpu_s.is_some() { ", the server included" } else { "" },
        fmt_int(r.entities)
    ));
    t.note(format!(
        "fakes share of CPU {:.1}% ({:.2} of {:.2} CPU-s, on their own threads); without them, {:.0} observations per CPU-second",
        r.fakes_cpu_share_pct, r.fakes_cpu_s, r.cpu_s, r.observations_per_cpu_s_without_fakes
    ));
    if let (Some(server), Some(per_cpu_s)) = (r.server_cpu_s, r.observations_per_cpu_s_with_server)
    {
        t.note(format!(
            "the Postgres server on this machine used {server:.2} CPU-s beside the process's {:.2}; with it, {per_cpu_s:.0} observations per CPU-second",
            r.cpu_s
        ));
    }
    t.note(format!(
        "RSS {:.1} MB with the fakes up before syncing; peak {:.1} MB during the syncs{} (fakes included)",
        r.rss_before_mb,
        r.peak_rss_mb,
        if r.peak_rss_reset {
            ""
        } else {
            " (peak not reset: includes start-up)"
        }
    ));
    t.print();
}

/// CPU time the Postgres server on this machine has used so far (its processes are named
/// `postgres`); `None` on SQLite, which runs inside this process, or when no server runs here.
fn server_cpu_seconds(backend: Backend) -> Option<f64> {
    matches!(backend, Backend::Postgres)
        .then(|| processes_cpu_seconds("postgres"))
        .flatten()
}

fn server_cell(seconds: Option<f64>) -> String {
    seconds.map_or_else(|| "-".to_string(), |s| format!("{s:.2}"))
}
