//! The `resync` scenario: a full sync of a simulated org through every connector, then the same
//! sync again with nothing changed: the share of 304s, the catalog rows the resync wrote
//! (every row compared before and after; must be 0) and its time against the full sync.

use std::path::Path;
use std::time::{Duration, Instant};

use serde::Serialize;
use surveyor_engine::{RunStatus, run_connector};
use surveyor_store::Store;

use crate::db::{Backend, PostgresArgs, RowsWritten, Snapshot};
use crate::fakes::{Fakes, Requests, Size, on_each_backend, reconcile_options};
use crate::report::{Outcome, Table, fmt_int, ratio, round};

#[derive(Serialize, clap::Args)]
pub struct ResyncBench {
    #[arg(long, value_enum, default_value_t = Size::Large)]
    pub size: Size,
    /// Override the org's number of repositories
    #[arg(long)]
    pub repos: Option<usize>,
    /// Added to every answer of the GitHub and GitLab fakes
    #[arg(long, default_value_t = 0)]
    pub latency_ms: u64,
    #[arg(long, default_value_t = 1000)]
    pub requests_per_second: u32,
    #[command(flatten)]
    #[serde(skip)]
    pub pg: PostgresArgs,
}

#[derive(Serialize)]
struct ConnectorFigures {
    connector: String,
    full_s: f64,
    full_requests: u64,
    full_observed: u64,
    full_created: u64,
    resync_s: f64,
    resync_requests: u64,
    resync_conditional: u64,
    resync_not_modified: u64,
    resync_changes: u64,
    resync_status: String,
    resync_over_full: f64,
}

#[derive(Serialize)]
struct BackendFigures {
    backend: &'static str,
    connectors: Vec<ConnectorFigures>,
    full_s: f64,
    resync_s: f64,
    resync_over_full: f64,
    resync_requests: u64,
    resync_not_modified: u64,
    /// 304s among all the resync's requests.
    not_modified_share: f64,
    /// 304s among the requests that can be conditional (REST to GitHub and GitLab).
    not_modified_share_of_conditional: f64,
    rows_written: RowsWritten,
    catalog_rows: u64,
}

pub async fn run(b: ResyncBench) -> anyhow::Result<Outcome> {
    let (spec, org) = b.size.org(b.repos);
    println!(
        "org {:?}: {} repos, {} teams, {} people; {} ms per answer (GitHub, GitLab); connector limit {} requests/s",
        b.size, spec.repos, spec.teams, spec.people, b.latency_ms, b.requests_per_second
    );
    on_each_backend(
        &b,
        false,
        &b.pg.postgres,
        &org,
        Some(Duration::from_millis(b.latency_ms)),
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
    b: &ResyncBench,
) -> anyhow::Result<BackendFigures> {
    let options = reconcile_options();
    let mut figures: Vec<ConnectorFigures> = Vec::new();
    // Full sync: a connector built for it, as a `surveyor sync` process would.
    for c in fakes.connectors(dir, b.requests_per_second)? {
        let before = fakes.requests(c.id());
        let t = Instant::now();
        let r = run_connector(store, c.as_ref(), &options).await?;
        anyhow::ensure!(
            r.status == RunStatus::Succeeded,
            "full sync of {}: {} {:?}",
            c.id(),
            r.status.as_str(),
            r.error
        );
        figures.push(ConnectorFigures {
            connector: c.id().to_string(),
            full_s: t.elapsed().as_secs_f64(),
            full_requests: fakes.requests(c.id()).since(before).requests,
            full_observed: r.counts.observations.observed,
            full_created: r.counts.entities.created,
            resync_s: 0.0,
            resync_requests: 0,
            resync_conditional: 0,
            resync_not_modified: 0,
            resync_changes: 0,
            resync_status: String::new(),
            resync_over_full: 0.0,
        });
    }
    let before = Snapshot::take(store).await?;
    // The resync: new connectors again (a new process), whose ETag caches are on disk.
    for (c, f) in fakes
        .connectors(dir, b.requests_per_second)?
        .into_iter()
        .zip(figures.iter_mut())
    {
        let was = fakes.requests(c.id());
        let t = Instant::now();
        let r = run_connector(store, c.as_ref(), &options).await?;
        f.resync_s = t.elapsed().as_secs_f64();
        let Requests {
            requests,
            conditional,
            not_modified,
        } = fakes.requests(c.id()).since(was);
        f.resync_requests = requests;
        f.resync_conditional = conditional;
        f.resync_not_modified = not_modified;
        f.resync_changes = r.counts.entities.changes();
        f.resync_status = r.status.as_str().to_string();
        f.resync_over_full = round(ratio(f.resync_s, f.full_s), 3);
        f.full_s = round(f.full_s, 3);
        f.resync_s = round(f.resync_s, 3);
    }
    let after = Snapshot::take(store).await?;
    let rows_written = before.written_since(&after);
    let catalog_rows = ["observations", "entities", "relations", "changes"]
        .iter()
        .map(|t| after.rows(t) as u64)
        .sum();
    let full: f64 = figures.iter().map(|f| f.full_s).sum();
    let resync: f64 = figures.iter().map(|f| f.resync_s).sum();
    let requests: u64 = figures.iter().map(|f| f.resync_requests).sum();
    let not_modified: u64 = figures.iter().map(|f| f.resync_not_modified).sum();
    let conditional: u64 = figures.iter().map(|f| f.resync_conditional).sum();
    Ok(BackendFigures {
        backend: backend.label(),
        full_s: round(full, 3),
        resync_s: round(resync, 3),
        resync_over_full: round(ratio(resync, full), 3),
        resync_requests: requests,
        resync_not_modified: not_modified,
        not_modified_share: round(ratio(not_modified as f64, requests as f64), 4),
        not_modified_share_of_conditional: round(ratio(not_modified as f64, conditional as f64), 4),
        rows_written,
        catalog_rows,
        connectors: figures,
    })
}

fn print(r: &BackendFigures) {
    let mut t = Table::new(
        format!(
            "resync on {}: full sync, then again with nothing changed",
            r.backend
        ),
        &[
            "connector",
            "full s",
            "full requests",
            "resync s",
            "resync/full",
            "resync requests",
            "304s",
            "changes",
        ],
    );
    for f in &r.connectors {
        t.row(vec![
            f.connector.clone(),
            format!("{:.2}", f.full_s),
            fmt_int(f.full_requests),
            format!("{:.2}", f.resync_s),
            format!("{:.2}", f.resync_over_full),
            fmt_int(f.resync_requests),
            fmt_int(f.resync_not_modified),
            fmt_int(f.resync_changes),
        ]);
    }
    t.row(vec![
        "all".into(),
        format!("{:.2}", r.full_s),
        fmt_int(r.connectors.iter().map(|f| f.full_requests).sum()),
        format!("{:.2}", r.resync_s),
        format!("{:.2}", r.resync_over_full),
        fmt_int(r.resync_requests),
        fmt_int(r.resync_not_modified),
        fmt_int(r.connectors.iter().map(|f| f.resync_changes).sum()),
    ]);
    t.note(format!(
        "304s: {:.1}% of the resync's requests, {:.1}% of those that can be conditional (GitHub and GitLab REST); catalog rows written by the resync: {} of {} (by table: {:?}; target 0)",
        100.0 * r.not_modified_share,
        100.0 * r.not_modified_share_of_conditional,
        r.rows_written.total,
        fmt_int(r.catalog_rows),
        r.rows_written.by_table
    ));
    t.print();
}
