//! The scheduler: triggered runs, a run that outlives its timeout is abandoned without writing,
//! a second trigger while one waits is refused, and shutdown ends the workers.

use std::sync::Arc;
use std::time::Duration;

use surveyor_engine::config::ScheduleZone;
use surveyor_engine::reconcile::ReconcileOptions;
use surveyor_engine::schedule::{Job, Scheduler, SchedulerHandle, SchedulerOptions};
use surveyor_model::{Control, TriggerRefusal};
use surveyor_store::{EntityFilter, Store};
use surveyor_tests::{Scripted, TestStore, complete, component};
use tokio::sync::watch;
use tokio::task::JoinHandle;

fn job(stall: Duration, timeout: Duration) -> Job {
    Job {
        id: "slow".into(),
        kind: "test".into(),
        schedule_text: None,
        schedule: None,
        timezone: ScheduleZone::Utc,
        timeout,
        jitter: Duration::ZERO,
        run_on_start: false,
        // Sends one observation, then takes `stall` before finishing.
        connector: Arc::new(
            Scripted::new(
                "slow",
                vec![component("org", "x1", "stalled", "team-a")],
                complete(&["org"]),
            )
            .stalling(stall),
        ),
    }
}

fn options() -> SchedulerOptions {
    SchedulerOptions {
        reconcile: ReconcileOptions::default(),
        holder: "test:1".into(),
        lease_ttl: Duration::from_secs(30),
        grace: Duration::from_millis(200),
    }
}

/// Runs a scheduler with `job` alone on a task: its handle, the switch that stops it, the task.
fn start(store: &Store, job: Job) -> (SchedulerHandle, watch::Sender<bool>, JoinHandle<()>) {
    let scheduler = Scheduler::new(store.clone(), vec![job], options());
    let handle = scheduler.handle();
    let (stop, stopped) = watch::channel(false);
    let task = tokio::spawn(scheduler.run(stopped));
    (handle, stop, task)
}

async fn until(mut done: impl FnMut() -> bool) {
    for _ in 0..200 {
        if done() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("timed out waiting");
}

#[tokio::test]
async fn a_run_past_its_timeout_is_abandoned_and_writes_nothing() {
    for ts in TestStore::all().await {
        let store = ts.store.clone();
        let (handle, stop, task) = start(
            &store,
            job(Duration::from_secs(30), Duration::from_millis(500)),
        );
        handle.trigger("slow").expect("trigger");
        assert_eq!(
            handle.trigger("nope"),
            Err(TriggerRefusal::Unknown("nope".into()))
        );
        until(|| handle.connectors()[0].running).await;
        // One run running, one queued: a third is refused.
        handle.trigger("slow").expect("queued");
        assert_eq!(
            handle.trigger("slow"),
            Err(TriggerRefusal::Busy("slow".into()))
        );
        until(|| {
            handle.connectors()[0]
                .last_error
                .as_deref()
                .is_some_and(|e| e.contains("abandoned"))
        })
        .await;
        let entities = store
            .list_entities(&EntityFilter::default())
            .await
            .expect("list");
        assert!(
            entities.is_empty(),
            "{}: the open scope rolled back",
            ts.backend
        );
        let _ = stop.send(true);
        tokio::time::timeout(Duration::from_secs(10), task)
            .await
            .expect("the scheduler stops")
            .expect("join");
        ts.cleanup().await;
    }
}

#[tokio::test]
async fn a_triggered_run_that_finishes_is_recorded() {
    for ts in TestStore::all().await {
        let store = ts.store.clone();
        let (handle, stop, task) = start(&store, job(Duration::ZERO, Duration::from_secs(30)));
        handle.trigger("slow").expect("trigger");
        until(|| handle.connectors()[0].last_status.as_deref() == Some("succeeded")).await;
        let runs = store.list_runs(Some("slow"), 10).await.expect("runs");
        assert_eq!(runs.len(), 1, "{}", ts.backend);
        assert!(
            store
                .get_entity("component:default/stalled")
                .await
                .expect("get")
                .is_some()
        );
        let _ = stop.send(true);
        let _ = task.await;
        ts.cleanup().await;
    }
}
