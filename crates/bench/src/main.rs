//! surveyor's benchmark program: each scenario prints a table and writes a JSON report with the
//! machine it ran on. They measure; the figures and their targets are in docs/benchmarks.md.
//!
//! `cargo run --release -p surveyor-bench -- <scenario> [--json PATH] [size flags]`, scenarios:
//! `github-requests`, `resync`, `reconcile`, `e2e`, `api`, `load`, `audit`, `http-abuse`,
//! `events`
//! (`--help` for each).

mod api;
mod audit;
mod clients;
mod db;
mod e2e;
mod events;
mod fakes;
mod generated;
mod github;
mod grade;
mod http_abuse;
mod load;
mod machine;
mod reconcile;
mod report;
mod resync;

use std::path::PathBuf;
use std::time::Instant;

use clap::{Parser, Subcommand};

use crate::machine::{Machine, load_average};
use crate::report::{Outcome, Report, write_json};

#[derive(Parser)]
#[command(about = "surveyor benchmarks: each prints a table and writes a JSON report")]
struct Args {
    /// Where the JSON report goes (default: target/bench/<scenario>.json)
    #[arg(long, global = true)]
    json: Option<PathBuf>,
    #[command(subcommand)]
    scenario: Scenario,
}

#[derive(Subcommand)]
enum Scenario {
    /// HTTP requests for a full GitHub sync against the floor ceil(repos/100) + ceil(teams/100)
    /// and Backstage's documented pattern (`github` is the old name)
    #[command(name = "github-requests", alias = "github")]
    GithubRequests(github::GithubBench),
    /// A full sync through every connector, then a no-change resync: 304 share, rows written
    /// (must be 0), time against the full sync
    Resync(resync::ResyncBench),
    /// Reconcile N generated entities: initial load, no-change re-run, 1% changed, against the
    /// raw bulk insert of the same rows (the floor), on SQLite and Postgres
    Reconcile(reconcile::ReconcileBench),
    /// A simulated org through every real connector against the in-process fakes:
    /// observations per second per core, wall time per connector, peak RSS
    E2e(e2e::E2eBench),
    /// Filtered lists and Backstage by-query on a large catalog from concurrent clients
    Api(api::ApiBench),
    /// `surveyor serve` in process under concurrent API clients while every connector syncs
    /// back to back against the fakes: errors, lock errors, p50/p99, syncs completed
    Load(load::LoadBench),
    /// N generated components classified and graded by three scorecards: the first grading,
    /// then gradings with nothing changed (wall time, peak RSS)
    Grade(grade::GradeBench),
    /// The audits against what the simulated org planted: per rule planted, found, precision
    /// and recall, on the small, medium and large orgs
    Audit(audit::AuditBench),
    /// Hostile clients against the API server in a child process: slow and silent
    /// connections (how many it closes, /healthz meanwhile), then expensive Backstage queries
    /// from many clients (latency, 503s, peak RSS); --plain for the server before its bounds
    #[command(name = "http-abuse")]
    HttpAbuse(http_abuse::HttpAbuseBench),
    /// Webhooks and watches from the simulated sources into `surveyor serve` in process: per
    /// source, change-to-catalog p50/p99, requests per change, and what the sweep repaired
    /// after dropped events
    Events(events::EventsBench),
}

impl Scenario {
    fn name(&self) -> &'static str {
        match self {
            Self::GithubRequests(_) => "github-requests",
            Self::Resync(_) => "resync",
            Self::Reconcile(_) => "reconcile",
            Self::E2e(_) => "e2e",
            Self::Api(_) => "api",
            Self::Load(_) => "load",
            Self::Audit(_) => "audit",
            Self::Grade(_) => "grade",
            Self::HttpAbuse(_) => "http-abuse",
            Self::Events(_) => "events",
        }
    }
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    surveyor_alloc::tune();
    let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
    let args = Args::parse();
    let scenario = args.scenario.name();

    // A reconcile child measures one phase set and prints one line; it writes no report.
    if let Scenario::Reconcile(reconcile::ReconcileBench {
        entities,
        pg,
        backend: Some(backend),
        phase: Some(phase),
        ..
    }) = &args.scenario
    {
        // The parent passes the URL explicitly; the child does not look at the environment.
        return reconcile::child_main(*backend, *phase, *entities, pg.postgres.as_deref()).await;
    }

    // The http-abuse server process serves until its stdin closes; it writes no report.
    if let Scenario::HttpAbuse(b) = &args.scenario
        && b.serve
    {
        return http_abuse::child_main(b).await;
    }

    let machine = Machine::describe();
    println!("{}", machine.summary());
    let load_start = load_average();
    if let Some(l) = load_start {
        println!("load average at start: {:.2} {:.2} {:.2}", l[0], l[1], l[2]);
    }
    let started = Instant::now();
    let outcome: Outcome = match args.scenario {
        Scenario::GithubRequests(b) => github::run(b).await?,
        Scenario::Resync(mut b) => {
            b.pg.resolve();
            resync::run(b).await?
        }
        Scenario::Reconcile(mut b) => {
            b.pg.resolve();
            reconcile::run(b)?
        }
        Scenario::E2e(mut b) => {
            b.pg.resolve();
            e2e::run(b).await?
        }
        Scenario::Api(mut b) => {
            b.resolve();
            api::run(b).await?
        }
        Scenario::Load(mut b) => {
            b.pg.resolve();
            load::run(b).await?
        }
        Scenario::Audit(b) => audit::run(b).await?,
        Scenario::Grade(mut b) => {
            b.pg.resolve();
            grade::run(b).await?
        }
        Scenario::HttpAbuse(b) => http_abuse::run(b).await?,
        Scenario::Events(mut b) => {
            b.pg.resolve();
            events::run(b).await?
        }
    };

    let load_end = load_average();
    if let Some(l) = load_end {
        println!("\nload average at end: {:.2} {:.2} {:.2}", l[0], l[1], l[2]);
    }
    let path = args
        .json
        .unwrap_or_else(|| PathBuf::from(format!("target/bench/{scenario}.json")));
    write_json(
        &path,
        &Report {
            scenario,
            date: chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
            machine: &machine,
            load_average_start: load_start,
            load_average_end: load_end,
            wall_seconds: report::round(started.elapsed().as_secs_f64(), 2),
            parameters: outcome.parameters,
            results: outcome.results,
        },
    )?;
    println!("report: {}", path.display());
    Ok(())
}
