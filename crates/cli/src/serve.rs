//! `surveyor serve`: the scheduler and the HTTP API in one long-lived process, stopped cleanly
//! by SIGTERM or Ctrl-C (no new runs; a running crawl gets a grace period, then rolls back).

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use surveyor_api::Control;
use surveyor_engine::schedule::{Job, Scheduler, SchedulerOptions};
use surveyor_model::Connector;
use tokio::sync::watch;

use crate::CliError;
use crate::registry;
use crate::setup::{
    api_config, audit_sources, load, open, reconcile_options, serve_options, shutdown_signal,
};

/// Time after the grace to roll a run back and close the database before the process is ended
/// regardless.
const CLOSING: Duration = Duration::from_secs(5);

pub async fn serve(path: &Path, listen: Option<String>) -> Result<(), CliError> {
    let config = load(path)?;
    let base = config.base_dir();
    let parser = croner::parser::CronParser::builder()
        .seconds(croner::parser::Seconds::Optional)
        .build();
    let mut jobs = Vec::new();
    for spec in config.connectors.iter().filter(|c| c.enabled) {
        let connector: Arc<dyn Connector> =
            Arc::from(registry::build(spec, &base).map_err(CliError::Input)?);
        let schedule = match &spec.schedule {
            Some(s) => Some(parser.parse(s).map_err(|e| {
                CliError::Input(format!("connectors[{}].schedule: {e}", spec.index))
            })?),
            None => None,
        };
        jobs.push(Job {
            id: spec.id.clone(),
            kind: spec.kind.clone(),
            schedule_text: spec.schedule.clone(),
            schedule,
            timezone: spec.timezone,
            timeout: spec.timeout,
            jitter: spec.jitter,
            run_on_start: spec.run_on_start,
            connector,
        });
    }
    let scheduled = jobs.iter().filter(|j| j.schedule.is_some()).count();
    let store = open(&config).await?;
    let listen = listen.unwrap_or_else(|| config.server.listen.clone());
    let listener = tokio::net::TcpListener::bind(&listen)
        .await
        .map_err(|e| CliError::Runtime(anyhow::anyhow!("cannot listen on {listen}: {e}")))?;
    let scheduler = Scheduler::new(
        store.clone(),
        jobs,
        SchedulerOptions {
            reconcile: reconcile_options(&config, false, false),
            holder: surveyor_engine::lease::this_process(),
            lease_ttl: surveyor_engine::lease::default_ttl(store.backend()),
            grace: config.server.shutdown_grace,
        },
    );
    let control: Arc<dyn Control> = Arc::new(scheduler.handle());
    let app = surveyor_api::router(store.clone(), api_config(&config), Some(control));
    let (stop, stopped) = watch::channel(false);
    let scheduler_task = tokio::spawn(scheduler.run(stopped.clone()));
    let mut api_stop = stopped.clone();
    let api_task = tokio::spawn(surveyor_api::serve_with(
        listener,
        app,
        serve_options(&config),
        async move {
            let _ = api_stop.wait_for(|s| *s).await;
        },
    ));
    // Tombstones past the retention are purged hourly (history stays).
    let retention = config.catalog.retention;
    let purge_store = store.clone();
    let mut purge_stop = stopped.clone();
    let purge_task = tokio::spawn(async move {
        let mut every = tokio::time::interval(Duration::from_secs(3600));
        loop {
            tokio::select! {
                _ = every.tick() => {
                    if let Some(before) = chrono::Duration::from_std(retention).ok().map(|r| chrono::Utc::now() - r)
                        && let Err(e) = purge_store.purge_tombstones(before).await
                    {
                        tracing::warn!(error = %e, "purging tombstones failed");
                    }
                }
                _ = async { drop(purge_stop.wait_for(|s| *s).await) } => return,
            }
        }
    });
    // Findings keep a history: after runs finish, the audits run and their findings are
    // recorded (first seen, last seen, resolved).
    let audit_task = tokio::spawn(record_findings_after_runs(
        store.clone(),
        audit_sources(&config),
        stopped.clone(),
    ));
    eprintln!(
        "surveyor: serving http://{listen} (the console at /, the API under /api; {} connectors, {scheduled} on a schedule); Ctrl-C or SIGTERM stops",
        config.connectors.iter().filter(|c| c.enabled).count()
    );
    shutdown_signal().await;
    let grace = config.server.shutdown_grace;
    eprintln!(
        "surveyor: stopping: no new runs; a running crawl gets {}s to finish",
        grace.as_secs_f64()
    );
    let _ = stop.send(true);
    // The process ends within the grace whatever is going on: a blocking read that cannot be
    // cancelled, a client that never lets go, an audit half-way. A second signal ends it now.
    std::thread::spawn(move || {
        std::thread::sleep(grace + CLOSING);
        eprintln!(
            "surveyor: still stopping {}s after the signal; exiting now",
            (grace + CLOSING).as_secs_f64()
        );
        std::process::exit(1);
    });
    tokio::spawn(async {
        shutdown_signal().await;
        eprintln!("surveyor: a second signal: exiting now");
        std::process::exit(130);
    });
    let _ = scheduler_task.await;
    let _ = purge_task.await;
    let _ = audit_task.await;
    if let Ok(Err(e)) = api_task.await {
        tracing::warn!(error = %e, "the API server stopped with an error");
    }
    store.close().await;
    eprintln!("surveyor: stopped");
    Ok(())
}

/// Every 30 s, when a run has finished since the last look, records the audits' findings.
async fn record_findings_after_runs(
    store: surveyor_store::Store,
    sources: surveyor_audit::Sources,
    mut stop: watch::Receiver<bool>,
) {
    let mut every = tokio::time::interval(Duration::from_secs(30));
    let mut recorded_up_to: Option<chrono::DateTime<chrono::Utc>> = None;
    loop {
        tokio::select! {
            _ = every.tick() => {
                let latest = match store.list_runs(None, 1).await {
                    Ok(runs) => runs.first().and_then(|r| r.finished_at),
                    Err(e) => {
                        tracing::warn!(error = %e, "cannot read runs");
                        continue;
                    }
                };
                if latest.is_none() || latest == recorded_up_to {
                    continue;
                }
                match surveyor_audit::record(&store, &sources, chrono::Utc::now()).await {
                    Ok(r) => {
                        recorded_up_to = latest;
                        tracing::info!(
                            ownership_opened = r.ownership.opened,
                            ownership_resolved = r.ownership.resolved,
                            drift_opened = r.drift.opened,
                            drift_resolved = r.drift.resolved,
                            "audit findings recorded"
                        );
                    }
                    Err(e) => tracing::warn!(error = %e, "recording audit findings failed"),
                }
            }
            _ = async { drop(stop.wait_for(|s| *s).await) } => return,
        }
    }
}
