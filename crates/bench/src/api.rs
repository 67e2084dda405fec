//! Load on the HTTP API: a filtered entity list (kind + owner, 50 per page) from many concurrent
//! clients on loopback against a large catalog, while a sync writes to it. Prints latency
//! percentiles and the error count.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use anyhow::Context;
use surveyor_engine::{ReconcileOptions, run_connector};
use surveyor_store::Store;
use tokio::sync::Mutex;

use crate::{BackendArg, Generated};

pub struct ApiBench {
    pub entities: usize,
    pub clients: usize,
    pub seconds: u64,
    pub postgres: Option<String>,
}

fn percentile(sorted: &[Duration], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i].as_secs_f64() * 1000.0
}

pub async fn run(b: ApiBench) -> anyhow::Result<()> {
    let backend = if b.postgres.is_some() {
        BackendArg::Postgres
    } else {
        BackendArg::Sqlite
    };
    let (store, cleanup): (Store, crate::Cleanup) =
        crate::open_fresh(backend, b.postgres.as_deref()).await?;
    let seeded = Instant::now();
    run_connector(
        &store,
        &Generated {
            n: b.entities,
            generation: 0,
        },
        &ReconcileOptions::default(),
    )
    .await
    .context("seeding the catalog")?;
    println!(
        "catalog: {} entities on {} (seeded in {:.1} s); {} clients for {} s; GET /api/v1/entities?kind=component&owner=team-N&limit=50",
        b.entities,
        if b.postgres.is_some() {
            "Postgres"
        } else {
            "SQLite"
        },
        seeded.elapsed().as_secs_f64(),
        b.clients,
        b.seconds
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let base = format!("http://{}", listener.local_addr()?);
    let app = surveyor_api::router(store.clone(), surveyor_api::ApiConfig::default(), None);
    let server = tokio::spawn(async move {
        let _ = surveyor_api::serve(listener, app, std::future::pending()).await;
    });

    let client = reqwest::Client::builder()
        .pool_max_idle_per_host(b.clients)
        .build()?;
    let stop = Arc::new(AtomicBool::new(false));
    let syncing = Arc::new(AtomicBool::new(false));
    let samples: Arc<Mutex<Vec<(Duration, bool, bool)>>> = Arc::new(Mutex::new(Vec::new()));
    let mut tasks = Vec::new();
    for c in 0..b.clients {
        let (client, base, stop, syncing, samples) = (
            client.clone(),
            base.clone(),
            Arc::clone(&stop),
            Arc::clone(&syncing),
            Arc::clone(&samples),
        );
        tasks.push(tokio::spawn(async move {
            let mut mine = Vec::new();
            let mut k = c;
            while !stop.load(Ordering::Relaxed) {
                k = (k + 7) % 500;
                let url = format!("{base}/api/v1/entities?kind=component&owner=team-{k}&limit=50");
                let during = syncing.load(Ordering::Relaxed);
                let t = Instant::now();
                let ok = match client.get(&url).send().await {
                    Ok(r) => r.status().is_success() && r.bytes().await.is_ok(),
                    Err(_) => false,
                };
                mine.push((t.elapsed(), ok, during));
            }
            samples.lock().await.extend(mine);
        }));
    }
    // A sync that changes 1% of the catalog, a second in, while the clients read.
    tokio::time::sleep(Duration::from_secs(1)).await;
    syncing.store(true, Ordering::Relaxed);
    let sync_started = Instant::now();
    let report = run_connector(
        &store,
        &Generated {
            n: b.entities,
            generation: 1,
        },
        &ReconcileOptions::default(),
    )
    .await?;
    let sync_took = sync_started.elapsed();
    syncing.store(false, Ordering::Relaxed);
    let rest = Duration::from_secs(b.seconds).saturating_sub(sync_took + Duration::from_secs(1));
    tokio::time::sleep(rest).await;
    stop.store(true, Ordering::Relaxed);
    for t in tasks {
        let _ = t.await;
    }
    server.abort();
    let samples = samples.lock().await.clone();
    let errors = samples.iter().filter(|(_, ok, _)| !ok).count();
    let mut all: Vec<Duration> = samples.iter().map(|(d, _, _)| *d).collect();
    let mut during: Vec<Duration> = samples.iter().filter(|s| s.2).map(|s| s.0).collect();
    all.sort();
    during.sort();
    let wall = b.seconds.max(1) as f64;
    println!(
        "requests {}  ({:.0}/s)  errors {}  p50 {:.2} ms  p90 {:.2} ms  p99 {:.2} ms  max {:.2} ms",
        all.len(),
        all.len() as f64 / wall,
        errors,
        percentile(&all, 0.5),
        percentile(&all, 0.9),
        percentile(&all, 0.99),
        all.last().map_or(f64::NAN, |d| d.as_secs_f64() * 1000.0)
    );
    println!(
        "while the sync wrote ({} updated in {:.1} s): requests {}  p50 {:.2} ms  p99 {:.2} ms",
        report.counts.updated,
        sync_took.as_secs_f64(),
        during.len(),
        percentile(&during, 0.5),
        percentile(&during, 0.99)
    );
    store.close().await;
    if std::env::var_os("SURVEYOR_BENCH_KEEP").is_some() {
        println!("kept the database (SURVEYOR_BENCH_KEEP)");
    } else {
        cleanup.run().await;
    }
    Ok(())
}
