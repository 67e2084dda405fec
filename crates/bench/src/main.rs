//! surveyor's benchmark program: each scenario prints a table and writes a JSON report with the
//! machine it ran on. They measure; the figures and their targets are in docs/benchmarks.md.
//!
//! `cargo run --release -p surveyor-bench -- <scenario> [--json PATH] [size flags]`, scenarios:
//! `github-requests`, `resync`, `reconcile`, `e2e`, `api`, `load` (`--help` for each).

mod api;
mod clients;
mod db;
mod e2e;
mod fakes;
mod generated;
mod github;
mod load;
mod machine;
mod reconcile;
mod report;
mod resync;

use std::path::PathBuf;
use std::time::Instant;

use clap::{Parser, Subcommand};

use crate::db::Backend;
use crate::fakes::Size;
use crate::machine::{Machine, load_average};
use crate::report::{Outcome, Report, write_json};

/// mimalloc: the reconciler allocates many short-lived strings on several threads, where
/// glibc's allocator spent a third of the initial load's CPU time (see docs/benchmarks.md).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

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
    GithubRequests {
        #[arg(long, default_value_t = 10_000)]
        repos: usize,
        #[arg(long, default_value_t = 500)]
        teams: usize,
        #[arg(long, default_value_t = 4_000)]
        people: usize,
        /// Added to every answer of the fake
        #[arg(long, default_value_t = 50)]
        latency_ms: u64,
        /// The connector's own request rate limit (its default is 10)
        #[arg(long, default_value_t = 10)]
        requests_per_second: u32,
    },
    /// A full sync through every connector, then a no-change resync: 304 share, rows written
    /// (must be 0), time against the full sync
    Resync {
        #[arg(long, value_enum, default_value_t = Size::Large)]
        size: Size,
        /// Override the org's number of repositories
        #[arg(long)]
        repos: Option<usize>,
        /// Added to every answer of the GitHub and GitLab fakes
        #[arg(long, default_value_t = 0)]
        latency_ms: u64,
        #[arg(long, default_value_t = 1000)]
        requests_per_second: u32,
        #[command(flatten)]
        pg: PostgresArgs,
    },
    /// Reconcile N generated entities: initial load, no-change re-run, 1% changed, against the
    /// raw bulk insert of the same rows (the floor), on SQLite and Postgres
    Reconcile {
        #[arg(long, default_value_t = 100_000)]
        entities: usize,
        #[command(flatten)]
        pg: PostgresArgs,
        /// Skip SQLite
        #[arg(long)]
        no_sqlite: bool,
        /// Runs per phase; the median is printed
        #[arg(long, default_value_t = 5)]
        repeat: usize,
        /// Run one backend in this process (the program runs each backend in a child of its
        /// own, so one backend's memory does not count in the other's peak RSS)
        #[arg(long, value_enum, hide = true)]
        backend: Option<Backend>,
        #[arg(long, value_enum, hide = true)]
        phase: Option<reconcile::Phase>,
    },
    /// A simulated org through every real connector against the in-process fakes:
    /// observations per second per core, wall time per connector, peak RSS
    E2e {
        #[arg(long, value_enum, default_value_t = Size::Large)]
        size: Size,
        /// Override the org's number of repositories
        #[arg(long)]
        repos: Option<usize>,
        #[arg(long, default_value_t = 1000)]
        requests_per_second: u32,
        #[command(flatten)]
        pg: PostgresArgs,
    },
    /// Filtered lists and Backstage by-query on a large catalog from concurrent clients
    Api {
        #[arg(long, default_value_t = 100_000)]
        entities: usize,
        #[arg(long, default_value_t = 64)]
        clients: usize,
        /// Clients for the by-query phase (default: --clients). A filter on kind and owner is
        /// paged by the database; other filters are matched in memory, which at 100k entities
        /// holds the whole kind (~450 MB) per request: ask for fewer clients for those.
        #[arg(long)]
        by_query_clients: Option<usize>,
        /// Seconds per phase (one per query type, then the lists mixed while a sync writes)
        #[arg(long, default_value_t = 10)]
        seconds: u64,
        #[command(flatten)]
        pg: PostgresArgs,
        #[arg(long)]
        no_sqlite: bool,
    },
    /// `surveyor serve` in process under concurrent API clients while every connector syncs
    /// back to back against the fakes: errors, lock errors, p50/p99, syncs completed
    Load {
        #[arg(long, value_enum, default_value_t = Size::Medium)]
        size: Size,
        #[arg(long)]
        repos: Option<usize>,
        #[arg(long, default_value_t = 64)]
        clients: usize,
        /// At least this long, and until every connector finished a sync
        #[arg(long, default_value_t = 60)]
        seconds: u64,
        /// How often the simulated org changes (a repo renamed, archived, deleted, re-owned)
        #[arg(long, default_value_t = 2000)]
        mutate_every_ms: u64,
        #[arg(long, default_value_t = 1000)]
        requests_per_second: u32,
        #[command(flatten)]
        pg: PostgresArgs,
        #[arg(long)]
        no_sqlite: bool,
    },
}

#[derive(clap::Args)]
struct PostgresArgs {
    /// Also run on this Postgres (default: $SURVEYOR_BENCH_DATABASE_URL, else
    /// $SURVEYOR_TEST_DATABASE_URL)
    #[arg(long)]
    postgres: Option<String>,
    /// Skip Postgres even when a URL is set
    #[arg(long)]
    no_postgres: bool,
}

impl PostgresArgs {
    fn url(self) -> Option<String> {
        db::postgres_url(self.postgres, self.no_postgres)
    }
}

impl Scenario {
    fn name(&self) -> &'static str {
        match self {
            Self::GithubRequests { .. } => "github-requests",
            Self::Resync { .. } => "resync",
            Self::Reconcile { .. } => "reconcile",
            Self::E2e { .. } => "e2e",
            Self::Api { .. } => "api",
            Self::Load { .. } => "load",
        }
    }
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
    let args = Args::parse();
    let scenario = args.scenario.name();

    // A reconcile child measures one phase set and prints one line; it writes no report.
    if let Scenario::Reconcile {
        entities,
        pg,
        backend: Some(backend),
        phase: Some(phase),
        ..
    } = &args.scenario
    {
        // The parent passes the URL explicitly; the child does not look at the environment.
        return reconcile::child_main(*backend, *phase, *entities, pg.postgres.as_deref()).await;
    }

    let machine = Machine::describe();
    println!("{}", machine.summary());
    let load_start = load_average();
    if let Some(l) = load_start {
        println!("load average at start: {:.2} {:.2} {:.2}", l[0], l[1], l[2]);
    }
    let started = Instant::now();
    let outcome: Outcome = match args.scenario {
        Scenario::GithubRequests {
            repos,
            teams,
            people,
            latency_ms,
            requests_per_second,
        } => {
            github::run(github::GithubBench {
                repos,
                teams,
                people,
                latency_ms,
                requests_per_second,
            })
            .await?
        }
        Scenario::Resync {
            size,
            repos,
            latency_ms,
            requests_per_second,
            pg,
        } => {
            resync::run(resync::ResyncBench {
                size,
                repos,
                latency_ms,
                requests_per_second,
                postgres: pg.url(),
            })
            .await?
        }
        Scenario::Reconcile {
            entities,
            pg,
            no_sqlite,
            repeat,
            ..
        } => reconcile::run(reconcile::ReconcileBench {
            entities,
            postgres: pg.url(),
            no_sqlite,
            repeat,
        })?,
        Scenario::E2e {
            size,
            repos,
            requests_per_second,
            pg,
        } => {
            e2e::run(e2e::E2eBench {
                size,
                repos,
                requests_per_second,
                postgres: pg.url(),
            })
            .await?
        }
        Scenario::Api {
            entities,
            clients,
            by_query_clients,
            seconds,
            pg,
            no_sqlite,
        } => {
            api::run(api::ApiBench {
                entities,
                clients,
                by_query_clients: by_query_clients.unwrap_or(clients),
                seconds,
                postgres: pg.url(),
                no_sqlite,
            })
            .await?
        }
        Scenario::Load {
            size,
            repos,
            clients,
            seconds,
            mutate_every_ms,
            requests_per_second,
            pg,
            no_sqlite,
        } => {
            load::run(load::LoadBench {
                size,
                repos,
                clients,
                seconds,
                mutate_every_ms,
                requests_per_second,
                postgres: pg.url(),
                no_sqlite,
            })
            .await?
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
