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
        config.classify.clone(),
        config.scorecards.clone(),
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

/// Every 30 s, when a run that changed something has finished since the findings were last
/// recorded, records the audits' findings, classifies the Components and grades the
/// scorecards. Start-up does not record them again when no run
/// changed anything since the last recording (by this process or another), and neither do
/// refreshes that read something and found it as it was.
async fn record_findings_after_runs(
    store: surveyor_store::Store,
    sources: surveyor_audit::Sources,
    rules: surveyor_model::classify::ClassifyRules,
    scorecards: Vec<surveyor_model::score::Scorecard>,
    mut stop: watch::Receiver<bool>,
) {
    let mut every = tokio::time::interval(Duration::from_secs(30));
    let mut recorded_up_to = match store.findings_recorded_at().await {
        Ok(at) => at,
        Err(e) => {
            tracing::warn!(error = %e, "cannot read when findings were last recorded");
            None
        }
    };
    loop {
        tokio::select! {
            _ = every.tick() => {
                let news = match runs_since(&store, recorded_up_to).await {
                    Ok(news) => news,
                    Err(e) => {
                        tracing::warn!(error = %e, "cannot read runs");
                        continue;
                    }
                };
                let Some(RunsSince { newest, changed }) = news else {
                    continue;
                };
                if !changed {
                    recorded_up_to = Some(newest);
                    continue;
                }
                match surveyor_audit::record(&store, &sources, chrono::Utc::now()).await {
                    Ok(r) => {
                        recorded_up_to = Some(newest);
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
                match crate::setup::grade_catalog(&store, &rules, &scorecards).await {
                    Ok(g) => tracing::info!(graded = %g.line(), "catalog classified and graded"),
                    Err(e) => tracing::warn!(error = %e, "classifying and grading failed"),
                }
            }
            _ = async { drop(stop.wait_for(|s| *s).await) } => return,
        }
    }
}

/// Runs read at most, looking for one that changed something since the last recording; when
/// every one of them is newer, some change is presumed among the rest.
const RUNS_LOOKED_AT: i64 = 200;

/// The runs finished after `since`: when the newest finished, and whether any changed what the
/// audits read (an observation new, changed or gone, or an entity changed).
#[derive(Debug, PartialEq, Eq)]
struct RunsSince {
    newest: chrono::DateTime<chrono::Utc>,
    changed: bool,
}

async fn runs_since(
    store: &surveyor_store::Store,
    since: Option<chrono::DateTime<chrono::Utc>>,
) -> Result<Option<RunsSince>, surveyor_store::StoreError> {
    let runs = store.list_runs(None, RUNS_LOOKED_AT).await?;
    let newer: Vec<&surveyor_store::RunRow> = runs
        .iter()
        .filter(|r| r.finished_at.is_some_and(|f| since.is_none_or(|s| f > s)))
        .collect();
    let Some(newest) = newer.iter().filter_map(|r| r.finished_at).max() else {
        return Ok(None);
    };
    let unseen_beyond = runs.len() as i64 == RUNS_LOOKED_AT && newer.len() == runs.len();
    let changed = unseen_beyond || newer.iter().any(|r| changed_anything(r.counts.as_ref()));
    Ok(Some(RunsSince { newest, changed }))
}

/// Whether a run's counts show a change: observations new, changed or gone, or entities
/// created, updated, renamed, deleted or restored.
fn changed_anything(counts: Option<&serde_json::Value>) -> bool {
    let Some(counts) = counts else {
        return false;
    };
    let sum = |group: &str, keys: &[&str]| -> u64 {
        keys.iter().filter_map(|k| counts[group][k].as_u64()).sum()
    };
    sum("observations", &["new", "changed", "gone"]) > 0
        || sum(
            "entities",
            &["created", "updated", "renamed", "deleted", "restored"],
        ) > 0
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::{TimeZone, Utc};
    use serde_json::json;

    fn at(s: i64) -> chrono::DateTime<Utc> {
        Utc.timestamp_opt(1_800_000_000 + s, 0)
            .single()
            .expect("time")
    }

    #[tokio::test]
    async fn findings_are_recorded_again_only_after_a_run_that_changed_something() {
        let dir = tempfile::tempdir().expect("dir");
        let url = format!("sqlite://{}", dir.path().join("c.db").display());
        let store = surveyor_store::Store::connect(&url).await.expect("store");
        assert_eq!(runs_since(&store, None).await.expect("runs"), None);

        let run = async |id: &str, started: i64, counts: serde_json::Value| {
            store
                .insert_run(id, "gh", at(started))
                .await
                .expect("insert");
            store
                .finish_run(id, "succeeded", &json!({}), &counts, None, at(started + 1))
                .await
                .expect("finish");
        };
        let quiet = json!({"observations": {"new": 0, "changed": 0, "gone": 0, "unchanged": 3},
                           "entities": {"created": 0, "updated": 0, "unchanged": 3}});
        let busy = json!({"observations": {"new": 0, "changed": 1, "gone": 0},
                          "entities": {"created": 0, "updated": 1}});
        run("r1", 10, busy.clone()).await;
        // The first look records: a run changed the catalog and nothing was recorded yet.
        assert_eq!(
            runs_since(&store, None).await.expect("runs"),
            Some(RunsSince {
                newest: at(11),
                changed: true
            })
        );
        // After recording at 11, a refresh that found everything as it was changes nothing.
        run("r2", 20, quiet).await;
        assert_eq!(
            runs_since(&store, Some(at(11))).await.expect("runs"),
            Some(RunsSince {
                newest: at(21),
                changed: false
            })
        );
        assert_eq!(runs_since(&store, Some(at(21))).await.expect("runs"), None);
        // An observation that changed (a source disagreeing anew) is a change too.
        run(
            "r3",
            30,
            json!({"observations": {"changed": 1}, "entities": {"updated": 0}}),
        )
        .await;
        assert_eq!(
            runs_since(&store, Some(at(21))).await.expect("runs"),
            Some(RunsSince {
                newest: at(31),
                changed: true
            })
        );

        // At start-up, the last recording is read from the findings themselves.
        assert_eq!(store.findings_recorded_at().await.expect("read"), None);
        let finding = surveyor_store::FindingRecord {
            rule: "no-owner".into(),
            entity_ref: "component:default/a".into(),
            severity: "warning".into(),
            message: "no owner".into(),
            kind: "Component".into(),
            owner: None,
            evidence: "[]".into(),
        };
        store
            .record_findings("ownership", &[finding], at(40))
            .await
            .expect("record");
        assert_eq!(
            store.findings_recorded_at().await.expect("read"),
            Some(at(40))
        );
        store
            .record_findings("ownership", &[], at(50))
            .await
            .expect("resolve");
        assert_eq!(
            store.findings_recorded_at().await.expect("read"),
            Some(at(50)),
            "a resolution is a recording too"
        );
        store.close().await;
    }
}
