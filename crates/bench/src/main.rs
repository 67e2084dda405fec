//! surveyor's benchmark programs. They print figures; they assert nothing.
//!
//! `cargo run --release -p surveyor-bench -- reconcile [--entities N] [--postgres URL]`

use std::time::{Duration, Instant};

use anyhow::Context;
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
        #[arg(long, default_value_t = 3)]
        repeat: usize,
        /// Run one backend in this process (the program runs each backend in a child of its
        /// own, so one backend's memory does not count in the other's peak RSS)
        #[arg(long, value_enum, hide = true)]
        backend: Option<BackendArg>,
    },
}

#[derive(Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
enum BackendArg {
    Sqlite,
    Postgres,
}

/// A connector that generates `n` components; `generation` changes the owner of 1% of them.
struct Generated {
    n: usize,
    generation: usize,
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

struct Figures {
    backend: &'static str,
    repeat: usize,
    floor: Duration,
    initial: Duration,
    no_change: Duration,
    one_percent: Duration,
    changed_rows: u64,
    peak_rss_mb: f64,
}

async fn reconcile_on(
    backend: &'static str,
    open: impl AsyncFn() -> anyhow::Result<Store>,
    n: usize,
    repeat: usize,
) -> anyhow::Result<Figures> {
    let opts = ReconcileOptions::default();
    let (mut initial, mut no_change, mut one_percent) = (Vec::new(), Vec::new(), Vec::new());
    let mut changed_rows = 0;
    for _ in 0..repeat {
        let store = open().await?;
        let t = Instant::now();
        let r = run_connector(&store, &Generated { n, generation: 0 }, &opts).await?;
        initial.push(t.elapsed());
        anyhow::ensure!(
            r.counts.created == n as u64,
            "initial load created {}",
            r.counts.created
        );
        let t = Instant::now();
        let r = run_connector(&store, &Generated { n, generation: 0 }, &opts).await?;
        no_change.push(t.elapsed());
        anyhow::ensure!(
            r.counts.changes() == 0,
            "no-change run changed {}",
            r.counts.changes()
        );
        let t = Instant::now();
        let r = run_connector(&store, &Generated { n, generation: 1 }, &opts).await?;
        one_percent.push(t.elapsed());
        changed_rows = r.counts.updated;
        store.close().await;
    }
    let peak = peak_rss_mb();

    // The floor: the rows the initial load wrote, precomputed, bulk-inserted into a fresh store.
    let rows = floor_rows(n);
    let mut floor = Vec::new();
    for _ in 0..repeat {
        let fresh = open().await?;
        let t = Instant::now();
        let mut tx = fresh.begin().await?;
        let now = chrono::Utc::now();
        tx.upsert_observations(&rows.observations).await?;
        tx.upsert_entities(&rows.entities, now).await?;
        tx.replace_relations(&[], &rows.relations).await?;
        tx.insert_changes(&rows.changes, now).await?;
        tx.commit().await?;
        floor.push(t.elapsed());
        fresh.close().await;
    }
    Ok(Figures {
        backend,
        repeat,
        floor: median(floor),
        initial: median(initial),
        no_change: median(no_change),
        one_percent: median(one_percent),
        changed_rows,
        peak_rss_mb: peak,
    })
}

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v.get(v.len() / 2).copied().unwrap_or_default()
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

fn print(f: &Figures, n: usize) {
    let secs = |d: Duration| d.as_secs_f64();
    println!(
        "\n== reconcile {n} entities on {} (median of {} runs) ==",
        f.backend, f.repeat
    );
    println!("{:<34} {:>10}", "phase", "seconds");
    println!(
        "{:<34} {:>10.2}",
        "floor: raw bulk insert of the rows",
        secs(f.floor)
    );
    println!(
        "{:<34} {:>10.2}   {:.2}x floor (target <= 1.5x)",
        "initial load",
        secs(f.initial),
        secs(f.initial) / secs(f.floor)
    );
    println!(
        "{:<34} {:>10.2}   {:.2}x initial (target <= 0.3x)",
        "no-change re-run",
        secs(f.no_change),
        secs(f.no_change) / secs(f.initial)
    );
    println!(
        "{:<34} {:>10.2}   {} entities updated",
        "1% changed",
        secs(f.one_percent),
        f.changed_rows
    );
    println!(
        "{:<34} {:>10.1}   (target <= 200 MB)",
        "peak RSS over all runs, MB", f.peak_rss_mb
    );
    println!(
        "{:<34} {:>10.0}",
        "initial load, entities/s",
        n as f64 / secs(f.initial)
    );
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
    match Args::parse().scenario {
        Scenario::Reconcile {
            entities,
            postgres,
            no_sqlite,
            repeat,
            backend,
        } => match backend {
            None => {
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
                    backends.push("sqlite");
                }
                if postgres.is_some() {
                    backends.push("postgres");
                }
                for b in backends {
                    let mut cmd = std::process::Command::new(std::env::current_exe()?);
                    cmd.args([
                        "reconcile",
                        "--entities",
                        &entities.to_string(),
                        "--backend",
                        b,
                    ]);
                    if let Some(url) = &postgres {
                        cmd.args(["--postgres", url]);
                    }
                    let status = cmd.status()?;
                    anyhow::ensure!(status.success(), "the {b} benchmark failed: {status}");
                }
            }
            Some(BackendArg::Sqlite) => {
                let dir = tempfile_dir()?;
                let counter = std::sync::atomic::AtomicUsize::new(0);
                let f = reconcile_on(
                    "SQLite",
                    async || {
                        let k = counter.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                        let url = format!("sqlite://{}/bench-{k}.db", dir.display());
                        Store::connect(&url).await.context("open SQLite")
                    },
                    entities,
                    repeat.max(1),
                )
                .await;
                let _ = std::fs::remove_dir_all(&dir);
                print(&f?, entities);
            }
            Some(BackendArg::Postgres) => {
                let url = postgres
                    .context("--postgres URL (or SURVEYOR_TEST_DATABASE_URL) is required")?;
                let schemas = std::sync::Mutex::new(Vec::new());
                let f = reconcile_on(
                    "Postgres",
                    async || {
                        let schema = format!("bench_{}", uuid::Uuid::now_v7().simple());
                        schemas
                            .lock()
                            .map_err(|_| anyhow::anyhow!("lock"))?
                            .push(schema.clone());
                        Store::connect_with(
                            &url,
                            ConnectOptions {
                                schema: Some(schema),
                            },
                        )
                        .await
                        .context("open Postgres")
                    },
                    entities,
                    repeat.max(1),
                )
                .await;
                let cleanup = Store::connect(&url).await?;
                let names: Vec<String> =
                    schemas.lock().map_err(|_| anyhow::anyhow!("lock"))?.clone();
                for s in &names {
                    cleanup.drop_schema(s).await?;
                }
                print(&f?, entities);
            }
        },
    }
    Ok(())
}

fn tempfile_dir() -> anyhow::Result<std::path::PathBuf> {
    let dir = std::env::temp_dir().join(format!("surveyor-bench-{}", std::process::id()));
    std::fs::create_dir_all(&dir)?;
    Ok(dir)
}
