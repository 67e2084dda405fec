//! The `reconcile` scenario: N generated entities into SQLite and Postgres (initial load,
//! no-change re-run, 1% changed) against a raw bulk insert of the same rows, each in a fresh
//! child process and database.

use std::time::Instant;

use anyhow::Context;
use serde::{Deserialize, Serialize};
use surveyor_engine::merge::{MergedEntity, ObservedEntity, SourceClaim};
use surveyor_engine::{ReconcileOptions, run_connector};
use surveyor_store::{ChangeOp, ChangeWrite, EntityWrite, IdentityKeyRow, ObservationWrite, Store};

use crate::db::{self, Backend, PostgresArgs};
use crate::generated::{Generated, entity};
use crate::machine::peak_rss_mb;
use crate::report::{Outcome, Table, median, ratio, round};

#[derive(Clone, Copy, PartialEq, Eq, Debug, clap::ValueEnum)]
pub enum Phase {
    Floor,
    Reconcile,
}

#[derive(clap::Args)]
pub struct ReconcileBench {
    #[arg(long, default_value_t = 100_000)]
    pub entities: usize,
    #[command(flatten)]
    pub pg: PostgresArgs,
    /// Skip SQLite
    #[arg(long)]
    pub no_sqlite: bool,
    /// Runs per phase; the median is printed
    #[arg(long, default_value_t = 5)]
    pub repeat: usize,
    /// Run one backend in this process (the program runs each backend in a child of its
    /// own, so one backend's memory does not count in the other's peak RSS)
    #[arg(long, value_enum, hide = true)]
    pub backend: Option<Backend>,
    #[arg(long, value_enum, hide = true)]
    pub phase: Option<Phase>,
}

/// What one child process measured: one phase set on one fresh database.
#[derive(Serialize, Deserialize, Default, Clone)]
pub struct Measured {
    floor_s: Option<f64>,
    initial_s: Option<f64>,
    no_change_s: Option<f64>,
    one_percent_s: Option<f64>,
    no_change_writes: u64,
    changed_rows: u64,
    peak_rss_mb: f64,
}

#[derive(Serialize)]
struct BackendResult {
    backend: &'static str,
    runs: usize,
    floor_s: f64,
    initial_s: f64,
    initial_over_floor: f64,
    no_change_s: f64,
    no_change_over_initial: f64,
    no_change_changes: u64,
    one_percent_s: f64,
    one_percent_updated: u64,
    peak_rss_mb: f64,
    initial_entities_per_s: f64,
    targets: Targets,
    measured: Vec<Measured>,
}

#[derive(Serialize)]
struct Targets {
    initial_over_floor_max: f64,
    no_change_over_initial_max: f64,
    peak_rss_mb_max: f64,
}

const TARGETS: Targets = Targets {
    initial_over_floor_max: 1.3,
    no_change_over_initial_max: 0.3,
    peak_rss_mb_max: 200.0,
};

/// The parent: alternates floor and reconcile children per backend and prints medians.
pub fn run(b: ReconcileBench) -> anyhow::Result<Outcome> {
    let mut results = Vec::new();
    for backend in db::backends(b.no_sqlite, &b.pg.postgres) {
        let mut runs = Vec::new();
        // Floor and reconcile alternate, so slow spells of the disk hit both alike.
        for _ in 0..b.repeat.max(1) {
            for phase in [Phase::Floor, Phase::Reconcile] {
                runs.push(child(backend, phase, b.entities, b.pg.postgres.as_deref())?);
            }
        }
        let r = summarise(backend, runs, b.entities);
        print(&r, b.entities);
        results.push(r);
    }
    Outcome::new(
        serde_json::json!({
            "entities": b.entities,
            "repeat": b.repeat.max(1),
            "backends": results.iter().map(|r| r.backend).collect::<Vec<_>>(),
        }),
        serde_json::json!({ "backends": results }),
    )
}

fn summarise(backend: Backend, runs: Vec<Measured>, n: usize) -> BackendResult {
    let pick = |f: fn(&Measured) -> Option<f64>| median(runs.iter().filter_map(f).collect());
    let floor = pick(|m| m.floor_s);
    let initial = pick(|m| m.initial_s);
    let no_change = pick(|m| m.no_change_s);
    BackendResult {
        backend: backend.label(),
        runs: runs.iter().filter(|m| m.initial_s.is_some()).count(),
        floor_s: round(floor, 3),
        initial_s: round(initial, 3),
        initial_over_floor: round(ratio(initial, floor), 3),
        no_change_s: round(no_change, 3),
        no_change_over_initial: round(ratio(no_change, initial), 3),
        no_change_changes: runs.iter().map(|m| m.no_change_writes).max().unwrap_or(0),
        one_percent_s: round(pick(|m| m.one_percent_s), 3),
        one_percent_updated: runs.iter().map(|m| m.changed_rows).max().unwrap_or(0),
        peak_rss_mb: round(
            runs.iter()
                .filter(|m| m.initial_s.is_some())
                .map(|m| m.peak_rss_mb)
                .fold(0.0, f64::max),
            1,
        ),
        initial_entities_per_s: round(ratio(n as f64, initial), 0),
        targets: TARGETS,
        measured: runs,
    }
}

fn print(r: &BackendResult, n: usize) {
    let mut t = Table::new(
        format!(
            "reconcile {n} entities on {} (median of {} runs, each in a fresh process and database)",
            r.backend, r.runs
        ),
        &["phase", "seconds", ""],
    );
    t.row(vec![
        "floor: raw bulk insert of the rows".into(),
        format!("{:.2}", r.floor_s),
        String::new(),
    ]);
    t.row(vec![
        "initial load".into(),
        format!("{:.2}", r.initial_s),
        format!(
            "{:.2}x floor (target <= {}x)",
            r.initial_over_floor, TARGETS.initial_over_floor_max
        ),
    ]);
    t.row(vec![
        "no-change re-run".into(),
        format!("{:.2}", r.no_change_s),
        format!(
            "{:.2}x initial (target <= {}x); {} changes",
            r.no_change_over_initial, TARGETS.no_change_over_initial_max, r.no_change_changes
        ),
    ]);
    t.row(vec![
        "1% changed".into(),
        format!("{:.2}", r.one_percent_s),
        format!("{} entities updated", r.one_percent_updated),
    ]);
    t.row(vec![
        "peak RSS of a reconcile process, MB".into(),
        format!("{:.1}", r.peak_rss_mb),
        format!("(target <= {} MB)", TARGETS.peak_rss_mb_max),
    ]);
    t.row(vec![
        "initial load, entities/s".into(),
        format!("{:.0}", r.initial_entities_per_s),
        String::new(),
    ]);
    t.print();
}

/// A child: one phase set on one fresh database; prints one `MEASURED {json}` line.
pub async fn child_main(
    backend: Backend,
    phase: Phase,
    n: usize,
    postgres: Option<&str>,
) -> anyhow::Result<()> {
    let (store, cleanup) = db::open_fresh(backend, postgres).await?;
    let measured = match phase {
        Phase::Floor => floor_phase(&store, n).await,
        Phase::Reconcile => reconcile_phases(&store, n).await,
    };
    store.close().await;
    cleanup.run().await;
    println!("MEASURED {}", serde_json::to_string(&measured?)?);
    Ok(())
}

/// Runs one phase set in a child process and reads its figures.
fn child(
    backend: Backend,
    phase: Phase,
    n: usize,
    postgres: Option<&str>,
) -> anyhow::Result<Measured> {
    // Flush what earlier runs left in the page cache, so it is not written during this one.
    let _ = std::process::Command::new("sync").status();
    let mut cmd = std::process::Command::new(std::env::current_exe()?);
    cmd.args([
        "reconcile",
        "--entities",
        &n.to_string(),
        "--backend",
        backend.arg(),
        "--phase",
        match phase {
            Phase::Floor => "floor",
            Phase::Reconcile => "reconcile",
        },
    ]);
    if let Some(url) = postgres {
        cmd.args(["--postgres", url]);
    }
    let out = cmd.stderr(std::process::Stdio::inherit()).output()?;
    anyhow::ensure!(
        out.status.success(),
        "the {} {phase:?} run failed: {}",
        backend.label(),
        out.status
    );
    let text = String::from_utf8_lossy(&out.stdout);
    let line = text
        .lines()
        .find_map(|l| l.strip_prefix("MEASURED "))
        .context("the child printed no figures")?;
    Ok(serde_json::from_str(line)?)
}

/// The reconcile phases on a fresh store: initial load, no-change, 1% changed.
async fn reconcile_phases(store: &Store, n: usize) -> anyhow::Result<Measured> {
    let opts = ReconcileOptions::default();
    let t = Instant::now();
    let r = run_connector(store, &Generated::new(n, 0), &opts).await?;
    let initial = t.elapsed();
    anyhow::ensure!(
        r.counts.entities.created == n as u64,
        "initial load created {}",
        r.counts.entities.created
    );
    let t = Instant::now();
    let r = run_connector(store, &Generated::new(n, 0), &opts).await?;
    let no_change = t.elapsed();
    let no_change_writes = r.counts.entities.changes();
    let t = Instant::now();
    let r = run_connector(store, &Generated::new(n, 1), &opts).await?;
    Ok(Measured {
        initial_s: Some(initial.as_secs_f64()),
        no_change_s: Some(no_change.as_secs_f64()),
        one_percent_s: Some(t.elapsed().as_secs_f64()),
        no_change_writes,
        changed_rows: r.counts.entities.updated,
        peak_rss_mb: peak_rss_mb(),
        ..Measured::default()
    })
}

/// The floor: the rows the initial load writes, precomputed, bulk-inserted into a fresh store.
async fn floor_phase(store: &Store, n: usize) -> anyhow::Result<Measured> {
    let rows = floor_rows(n)?;
    let t = Instant::now();
    let mut tx = store.begin().await?;
    let now = chrono::Utc::now();
    tx.upsert_observations(&rows.observations).await?;
    tx.upsert_entities(&rows.entities, now).await?;
    tx.replace_relations(&[], &rows.relations).await?;
    tx.insert_changes(&rows.changes, now).await?;
    tx.replace_identity_keys("bench", &[], &rows.identity_keys)
        .await?;
    tx.commit().await?;
    Ok(Measured {
        floor_s: Some(t.elapsed().as_secs_f64()),
        ..Measured::default()
    })
}

struct FloorRows {
    observations: Vec<ObservationWrite>,
    entities: Vec<EntityWrite>,
    relations: Vec<surveyor_store::RelationRow>,
    changes: Vec<ChangeWrite>,
    /// Each component's `github.com/project-slug` is an identity key the engine indexes.
    identity_keys: Vec<IdentityKeyRow>,
}

fn floor_rows(n: usize) -> anyhow::Result<FloorRows> {
    let mut rows = FloorRows {
        observations: Vec::with_capacity(n),
        entities: Vec::with_capacity(n),
        relations: Vec::with_capacity(n * 4),
        changes: Vec::with_capacity(n),
        identity_keys: Vec::with_capacity(n),
    };
    for i in 0..n {
        let generated = entity(i, 0, false);
        let observed = ObservedEntity::new(&generated, &[], false)
            .map_err(|e| anyhow::anyhow!("generated entity {i} is invalid: {e:?}"))?;
        for key in surveyor_engine::identity::identity_keys(&generated) {
            rows.identity_keys.push(IdentityKeyRow {
                key,
                source: "bench".into(),
                external_id: format!("node-{i}"),
                own_ref: observed.entity_ref.key(),
                declared: false,
            });
        }
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
                own: Default::default(),
                cosmetic: Default::default(),
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
    Ok(rows)
}
