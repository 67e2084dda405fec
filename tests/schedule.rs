//! The scheduler: triggered runs, a run that outlives its timeout is abandoned without writing,
//! a second trigger while one waits is refused, shutdown ends the workers, and a replica that
//! dies mid-run is replaced once its short lease runs out.

use std::sync::Arc;
use std::time::Duration;

use surveyor_engine::reconcile::ReconcileOptions;
use surveyor_engine::schedule::{Job, Scheduler, SchedulerHandle, SchedulerOptions};
use surveyor_model::{Control, TriggerRefusal};
use surveyor_store::{EntityFilter, Store};
use surveyor_tests::{Scripted, TestStore, complete, component};
use tokio::sync::watch;
use tokio::task::JoinHandle;

fn job(stall: Duration, timeout: Duration) -> Job {
    // Sends one observation, then takes `stall` before finishing.
    let connector = Scripted::new(
        "slow",
        vec![component("org", "x1", "stalled", "team-a")],
        complete(&["org"]),
    )
    .stalling(stall);
    Job::on_demand(Arc::new(connector), timeout)
}

fn options() -> SchedulerOptions {
    replica("test:1", Duration::from_secs(30))
}

fn replica(holder: &str, lease_ttl: Duration) -> SchedulerOptions {
    SchedulerOptions {
        reconcile: ReconcileOptions::default(),
        holder: holder.into(),
        lease_ttl,
        grace: Duration::from_millis(200),
    }
}

/// Runs a scheduler with `job` alone on a task: its handle, the switch that stops it, the task.
fn start(store: &Store, job: Job) -> (SchedulerHandle, watch::Sender<bool>, JoinHandle<()>) {
    start_as(store, job, options())
}

fn start_as(
    store: &Store,
    job: Job,
    options: SchedulerOptions,
) -> (SchedulerHandle, watch::Sender<bool>, JoinHandle<()>) {
    let scheduler = Scheduler::new(store.clone(), vec![job], options);
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

/// kill -9 of the replica running a connector: its lease stops being renewed and runs out
/// after the short time to live — not after the job's timeout (an hour here) — and another
/// replica then runs the connector, marking the dead replica's run abandoned.
#[tokio::test]
async fn a_replica_killed_mid_run_is_replaced_once_its_lease_runs_out() {
    let ttl = Duration::from_secs(1);
    for ts in TestStore::all().await {
        // Replica A on its own runtime with its own connections: shutting the runtime down
        // drops everything it runs without a chance to clean up, as a killed process would.
        let doomed = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .expect("runtime");
        let a_store = ts.reopen().await;
        let (a, a_stop) = doomed
            .spawn(async move {
                let scheduler = Scheduler::new(
                    a_store,
                    vec![job(Duration::from_secs(600), Duration::from_secs(3600))],
                    replica("replica:a", ttl),
                );
                let handle = scheduler.handle();
                let (stop, stopped) = watch::channel(false);
                tokio::spawn(scheduler.run(stopped));
                (handle, stop)
            })
            .await
            .expect("replica a");
        a.trigger("slow").expect("trigger a");
        let store = ts.store.clone();
        for _ in 0..200 {
            let runs = store.list_runs(Some("slow"), 10).await.expect("runs");
            if runs.iter().any(|r| r.status == "running") {
                break;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        let held = store.leases().await.expect("leases");
        assert_eq!(held.len(), 1, "{}", ts.backend);
        assert_eq!(held[0].holder, "replica:a");
        assert!(
            held[0].expires_at < chrono::Utc::now() + chrono::Duration::seconds(5),
            "{}: a fresh lease lasts its short time to live, not the job's timeout: {:?}",
            ts.backend,
            held[0].expires_at
        );
        doomed.shutdown_background();
        drop(a_stop);

        // Replica B asks for a run until it gets the lease.
        let (b, b_stop, b_task) = start_as(
            &store,
            job(Duration::ZERO, Duration::from_secs(3600)),
            replica("replica:b", ttl),
        );
        let mut ran = false;
        for _ in 0..200 {
            let _ = b.trigger("slow");
            if b.connectors()[0].last_status.as_deref() == Some("succeeded") {
                ran = true;
                break;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        assert!(
            ran,
            "{}: the surviving replica never ran the connector: {:?}",
            ts.backend,
            b.connectors()
        );
        let _ = b_stop.send(true);
        let _ = b_task.await;
        // Newest first: A's run is the oldest; B's came after (a trigger still queued may have
        // started another).
        let runs = store.list_runs(Some("slow"), 10).await.expect("runs");
        let statuses: Vec<&str> = runs.iter().map(|r| r.status.as_str()).collect();
        assert_eq!(statuses.last(), Some(&"abandoned"), "{}", ts.backend);
        assert!(
            statuses.contains(&"succeeded"),
            "{}: {statuses:?}",
            ts.backend
        );
        let dead = runs.last().expect("a's run");
        assert!(
            dead.error
                .as_deref()
                .is_some_and(|e| e.contains("lease ran out")),
            "{}: {:?}",
            ts.backend,
            dead.error
        );
        ts.cleanup().await;
    }
}

/// A run whose lease is held is alive, whoever else starts: only once the lease has run out
/// may it be marked abandoned.
#[tokio::test]
async fn a_run_under_a_live_lease_is_never_marked_abandoned() {
    for ts in TestStore::all().await {
        let store = ts.store.clone();
        let now = chrono::Utc::now();
        let minute = chrono::Duration::seconds(60);
        assert!(
            store
                .try_lease("x", "replica:a", now, now + minute, now)
                .await
                .expect("lease")
        );
        store.insert_run("run-a", "x", now).await.expect("run");
        // Another process starting a run of "x" without the lease.
        assert_eq!(
            store.abandon_stale_runs("x", now).await.expect("abandon"),
            0,
            "{}",
            ts.backend
        );
        let status = |runs: Vec<surveyor_store::RunRow>| runs[0].status.clone();
        assert_eq!(
            status(store.list_runs(Some("x"), 1).await.expect("runs")),
            "running"
        );
        // Nor does another replica take the live lease.
        assert!(
            !store
                .try_lease("x", "replica:b", now + minute / 2, now + minute, now)
                .await
                .expect("lease")
        );
        assert_eq!(
            status(store.list_runs(Some("x"), 1).await.expect("runs")),
            "running"
        );
        // Once the lease has run out, the run is stale.
        let later = now + minute * 2;
        assert_eq!(
            store.abandon_stale_runs("x", later).await.expect("abandon"),
            1,
            "{}",
            ts.backend
        );
        assert_eq!(
            status(store.list_runs(Some("x"), 1).await.expect("runs")),
            "abandoned"
        );
        ts.cleanup().await;
    }
}
