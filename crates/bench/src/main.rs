//! surveyor's benchmark programs. They print figures; they assert nothing.
//!
//! `cargo run --release -p surveyor-bench -- reconcile [--entities N] [--postgres URL]`
//! `cargo run --release -p surveyor-bench -- github [--repos N] [--teams N] [--latency-ms MS]`
//! `cargo run --release -p surveyor-bench -- api [--entities N] [--clients N] [--seconds S]`

mod api;
mod github;

use std::time::Instant;

use anyhow::Context;

/// mimalloc: the reconciler allocates many short-lived strings on several threads, where
/// glibc's allocator spent a third of the initial load's CPU time (see docs/benchmarks.md).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;
use clap::{Parser, Subcommand};
use surveyor_engine::merge::{MergedEntity, ObservedEntity, SourceClaim};
use surveyor_engine::{ReconcileOptions, run_connector};
use surveyor_model::{Connector, ConnectorError, Entity, Observation, ObservationSink, Outcome};
use surveyor_store::{ChangeOp, ChangeWrite, ConnectOptions, EntityWrite, ObservationWrite, Store};

#[derive(Parser)]
#[command(about = "surveyor benchmarks: programs that print figures")]
struct Args {
    #[command(subcommand)]
    scenario: Scenario,
}

#[derive(Subcommand)]
enum Scenario {
    /// Reconcile N generated entities: initial load, no-change re-run, 1% changed, against the
    /// raw bulk insert of the same rows (the floor).
    Reconcile {
        #[arg(long, default_value_t = 100_000)]
        entities: usize,
        /// Also run on this Postgres (default: $SURVEYOR_TEST_DATABASE_URL when set)
        #[arg(long, env = "SURVEYOR_TEST_DATABASE_URL")]
        postgres: Option<String>,
        /// Skip SQLite
        #[arg(long)]
        no_sqlite: bool,
        /// Runs per phase; the median is printed
        #[arg(long, default_value_t = 5)]
        repeat: usize,
        /// Run one backend in this process (the program runs each backend in a child of its
        /// own, so one backend's memory does not count in the other's peak RSS)
        #[arg(long, value_enum, hide = true)]
        backend: Option<BackendArg>,
        #[arg(long, value_enum, hide = true)]
        phase: Option<Phase>,
    },
    /// Load on the HTTP API: concurrent filtered lists on a large catalog while a sync writes
    Api {
        #[arg(long, default_value_t = 100_000)]
        entities: usize,
        #[arg(long, default_value_t = 64)]
        clients: usize,
        #[arg(long, default_value_t = 10)]
        seconds: u64,
        /// Run on this Postgres instead of SQLite
        #[arg(long)]
        postgres: Option<String>,
    },
    /// Sync a simulated GitHub org: requests against the API's floor, 304s on a quiet resync,
    /// wall time with simulated latency per request.
    Github {
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
}

#[derive(Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub(crate) enum BackendArg {
    Sqlite,
    Postgres,
}

/// A connector that generates `n` components; `generation` changes the owner of 1% of them.
pub(crate) struct Generated {
    pub(crate) n: usize,
    pub(crate) generation: usize,
}

fn entity(i: usize, generation: usize) -> Entity {
    let mut e = Entity::new("Component", "default", &format!("service-{i:06}"));
    e.metadata.description = Some(format!("Generated service number {i} of the benchmark org"));
    e.metadata.annotations.insert(
        "github.com/project-slug".into(),
        format!("acme/service-{i:06}"),
    );
    e.metadata.tags = vec!["rust".into(), format!("tier-{}", i % 3)];
    let changed = generation > 0 && i.is_multiple_of(100);
    let owner = if changed {
        format!("team-{}", (i / 100 + generation) % 500)
    } else {
        format!("team-{}", i % 500)
    };
    e.spec.insert("type".into(), "service".into());
    e.spec.insert("lifecycle".into(), "production".into());
    e.spec.insert("owner".into(), owner.into());
    e.spec
        .insert("system".into(), format!("system-{}", i % 50).into());
    e
}

#[async_trait::async_trait]
impl Connector for Generated {
    fn id(&self) -> &str {
        "bench"
    }
    fn kind(&self) -> &'static str {
        "generated"
    }
    async fn crawl(&self, sink: ObservationSink) -> Result<Outcome, ConnectorError> {
        for i in 0..self.n {
            sink.send(Observation::discovered(
                "org",
                format!("node-{i}"),
                entity(i, self.generation),
            ))
            .await?;
        }
        let mut o = Outcome::default();
        o.complete("org");
        Ok(o)
    }
}

fn peak_rss_mb() -> f64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines().find(|l| l.starts_with("VmHWM:")).and_then(|l| {
                l.split_whitespace()
                    .nth(1)
                    .and_then(|kb| kb.parse::<f64>().ok())
            })
        })
        .map_or(f64::NAN, |kb| kb / 1024.0)
}

/// What one child process measured: one phase set on one fresh database.
#[derive(serde::Serialize, serde::Deserialize, Default)]
struct Measured {
    floor_s: Option<f64>,
    initial_s: Option<f64>,
    no_change_s: Option<f64>,
    one_percent_s: Option<f64>,
    changed_rows: u64,
    peak_rss_mb: f64,
}

/// Measures the reconcile phases on a fresh store: initial load, no-change, 1% changed.
async fn reconcile_phases(store: &Store, n: usize) -> anyhow::Result<Measured> {
    let opts = ReconcileOptions::default();
    let t = Instant::now();
    let r = run_connector(store, &Generated { n, generation: 0 }, &opts).await?;
    let initial = t.elapsed();
    anyhow::ensure!(
        r.counts.created == n as u64,
        "initial load created {}",
        r.counts.created
    );
    let t = Instant::now();
    let r = run_connector(store, &Generated { n, generation: 0 }, &opts).await?;
    let no_change = t.elapsed();
    anyhow::ensure!(
        r.counts.changes() == 0,
        "no-change run changed {}",
        r.counts.changes()
    );
    let t = Instant::now();
    let r = run_connector(store, &Generated { n, generation: 1 }, &opts).await?;
    Ok(Measured {
        initial_s: Some(initial.as_secs_f64()),
        no_change_s: Some(no_change.as_secs_f64()),
        one_percent_s: Some(t.elapsed().as_secs_f64()),
        changed_rows: r.counts.updated,
        peak_rss_mb: peak_rss_mb(),
        ..Measured::default()
    })
}

/// The floor: the rows the initial load writes, precomputed, bulk-inserted into a fresh store.
async fn floor_phase(store: &Store, n: usize) -> anyhow::Result<Measured> {
    let rows = floor_rows(n);
    let t = Instant::now();
    let mut tx = store.begin().await?;
    let now = chrono::Utc::now();
    tx.upsert_observations(&rows.observations).await?;
    tx.upsert_entities(&rows.entities, now).await?;
    tx.replace_relations(&[], &rows.relations).await?;
    tx.insert_changes(&rows.changes, now).await?;
    tx.commit().await?;
    Ok(Measured {
        floor_s: Some(t.elapsed().as_secs_f64()),
        ..Measured::default()
    })
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v.get(v.len() / 2).copied().unwrap_or(f64::NAN)
}

struct FloorRows {
    observations: Vec<ObservationWrite>,
    entities: Vec<EntityWrite>,
    relations: Vec<surveyor_store::RelationRow>,
    changes: Vec<ChangeWrite>,
}

fn floor_rows(n: usize) -> FloorRows {
    let mut rows = FloorRows {
        observations: Vec::with_capacity(n),
        entities: Vec::with_capacity(n),
        relations: Vec::with_capacity(n * 4),
        changes: Vec::with_capacity(n),
    };
    for i in 0..n {
        let observed =
            ObservedEntity::new(&entity(i, 0), &[], false).expect("valid generated entity");
        let body = observed.observation_body();
        let uid = uuid::Uuid::now_v7().to_string();
        let external_id = format!("node-{i}");
        rows.observations.push(ObservationWrite {
            source: "bench".into(),
            external_id: external_id.clone(),
            scope: "org".into(),
            entity_ref: observed.entity_ref.key(),
            kind: observed.kind.clone(),
            declared: false,
            hash: surveyor_model::hash::sha256_hex(body.as_bytes()),
            body,
            run_id: "floor".into(),
        });
        let merged = MergedEntity::new(
            observed,
            vec![SourceClaim {
                source: "bench".into(),
                external_id,
                declared: false,
                winner: true,
                fields: Vec::new(),
                disagrees: Default::default(),
            }],
        );
        rows.changes.push(ChangeWrite {
            run_id: "floor".into(),
            source: "bench".into(),
            entity_uid: uid.clone(),
            entity_ref: merged.winner.entity_ref.to_string(),
            previous_ref: None,
            op: ChangeOp::Created,
            patch: merged.created_patch(),
        });
        rows.entities.push(merged.to_write(&uid));
        rows.relations.extend(merged.relation_rows.iter().cloned());
    }
    rows
}

fn print(backend: &str, runs: &[Measured], n: usize) {
    let pick = |f: fn(&Measured) -> Option<f64>| median(runs.iter().filter_map(f).collect());
    let floor = pick(|m| m.floor_s);
    let initial = pick(|m| m.initial_s);
    let no_change = pick(|m| m.no_change_s);
    let one_percent = pick(|m| m.one_percent_s);
    let peak = runs.iter().map(|m| m.peak_rss_mb).fold(0.0, f64::max);
    let changed = runs.iter().map(|m| m.changed_rows).max().unwrap_or(0);
    let repeats = runs.iter().filter(|m| m.initial_s.is_some()).count();
    println!(
        "\n== reconcile {n} entities on {backend} (median of {repeats} runs, each in a fresh process and database) =="
    );
    println!("{:<34} {:>10}", "phase", "seconds");
    println!(
        "{:<34} {:>10.2}",
        "floor: raw bulk insert of the rows", floor
    );
    println!(
        "{:<34} {:>10.2}   {:.2}x floor (target <= 1.5x)",
        "initial load",
        initial,
        initial / floor
    );
    println!(
        "{:<34} {:>10.2}   {:.2}x initial (target <= 0.3x)",
        "no-change re-run",
        no_change,
        no_change / initial
    );
    println!(
        "{:<34} {:>10.2}   {} entities updated",
        "1% changed", one_percent, changed
    );
    println!(
        "{:<34} {:>10.1}   (target <= 200 MB)",
        "peak RSS of a reconcile process, MB", peak
    );
    println!(
        "{:<34} {:>10.0}",
        "initial load, entities/s",
        n as f64 / initial
    );
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
    match Args::parse().scenario {
        Scenario::Api {
            entities,
            clients,
            seconds,
            postgres,
        } => {
            api::run(api::ApiBench {
                entities,
                clients,
                seconds,
                postgres,
            })
            .await?
        }
        Scenario::Github {
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
        Scenario::Reconcile {
            entities,
            postgres,
            no_sqlite,
            repeat,
            backend,
            phase,
        } => match (backend, phase) {
            (Some(backend), Some(phase)) => {
                // A child: one phase set on one fresh database; prints one JSON line.
                let (store, cleanup) = open_fresh(backend, postgres.as_deref()).await?;
                let measured = match phase {
                    Phase::Floor => floor_phase(&store, entities).await,
                    Phase::Reconcile => reconcile_phases(&store, entities).await,
                };
                store.close().await;
                cleanup.run().await;
                println!("MEASURED {}", serde_json::to_string(&measured?)?);
            }
            _ => {
                println!(
                    "machine: {} cores; build: {}",
                    std::thread::available_parallelism().map_or(0, |n| n.get()),
                    if cfg!(debug_assertions) {
                        "debug (use --release)"
                    } else {
                        "release"
                    }
                );
                let mut backends = Vec::new();
                if !no_sqlite {
                    backends.push(("sqlite", "SQLite"));
                }
                if postgres.is_some() {
                    backends.push(("postgres", "Postgres"));
                }
                for (arg, label) in backends {
                    let mut runs = Vec::new();
                    // Floor and reconcile alternate, so slow spells of the disk hit both alike.
                    for _ in 0..repeat.max(1) {
                        for phase in ["floor", "reconcile"] {
                            runs.push(child(arg, phase, entities, postgres.as_deref())?);
                        }
                    }
                    print(label, &runs, entities);
                }
            }
        },
    }
    Ok(())
}

#[derive(Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
enum Phase {
    Floor,
    Reconcile,
}

/// Runs one phase set in a child process and reads its figures.
fn child(backend: &str, phase: &str, n: usize, postgres: Option<&str>) -> anyhow::Result<Measured> {
    // Flush what earlier runs left in the page cache, so it is not written during this one.
    let _ = std::process::Command::new("sync").status();
    let mut cmd = std::process::Command::new(std::env::current_exe()?);
    cmd.args([
        "reconcile",
        "--entities",
        &n.to_string(),
        "--backend",
        backend,
        "--phase",
        phase,
    ]);
    if let Some(url) = postgres {
        cmd.args(["--postgres", url]);
    }
    let out = cmd.stderr(std::process::Stdio::inherit()).output()?;
    anyhow::ensure!(
        out.status.success(),
        "the {backend} {phase} run failed: {}",
        out.status
    );
    let text = String::from_utf8_lossy(&out.stdout);
    let line = text
        .lines()
        .find_map(|l| l.strip_prefix("MEASURED "))
        .context("the child printed no figures")?;
    Ok(serde_json::from_str(line)?)
}

/// What to remove after a child's run.
pub(crate) enum Cleanup {
    Dir(std::path::PathBuf),
    Schema(String, String),
}

impl Cleanup {
    pub(crate) async fn run(self) {
        match self {
            Self::Dir(dir) => {
                let _ = std::fs::remove_dir_all(dir);
            }
            Self::Schema(url, schema) => {
                if let Ok(store) = Store::connect(&url).await {
                    let _ = store.drop_schema(&schema).await;
                    store.close().await;
                }
            }
        }
    }
}

pub(crate) async fn open_fresh(
    backend: BackendArg,
    postgres: Option<&str>,
) -> anyhow::Result<(Store, Cleanup)> {
    match backend {
        BackendArg::Sqlite => {
            let dir = tempfile_dir()?;
            let url = format!("sqlite://{}/bench.db", dir.display());
            Ok((
                Store::connect(&url).await.context("open SQLite")?,
                Cleanup::Dir(dir),
            ))
        }
        BackendArg::Postgres => {
            let url =
                postgres.context("--postgres URL (or SURVEYOR_TEST_DATABASE_URL) is required")?;
            let schema = format!("bench_{}", uuid::Uuid::now_v7().simple());
            let store = Store::connect_with(
                url,
                ConnectOptions {
                    schema: Some(schema.clone()),
                },
            )
            .await
            .context("open Postgres")?;
            Ok((store, Cleanup::Schema(url.to_string(), schema)))
        }
    }
}

fn tempfile_dir() -> anyhow::Result<std::path::PathBuf> {
    let dir = std::env::temp_dir().join(format!(
        "surveyor-bench-{}-{}",
        std::process::id(),
        uuid::Uuid::now_v7().simple()
    ));
    std::fs::create_dir_all(&dir)?;
    Ok(dir)
}
