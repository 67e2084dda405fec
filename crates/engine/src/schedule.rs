//! The scheduler behind `surveyor serve`: each connector runs on its cron schedule (or when
//! triggered), never twice at once, once per tick across every replica sharing the database.
//!
//! A run first takes the connector's lease for its tick ([`Lease`]); a replica that loses the
//! race skips the tick. While running, the lease is renewed; a run that outlives its
//! `timeout` is dropped, which rolls back its open scope. Shutdown stops taking work and gives
//! a running crawl a grace period before dropping it the same way.
//!
//! Webhook deliveries ([`Control::deliver`]) are hints: the connector verifies one and names
//! what to read again; the targets wait, coalesced, for the connector's worker, which refreshes
//! them under the same lease as its crawls (never beside one), or crawls the connector whole
//! when it cannot refresh. A delivery id is taken once.

use std::collections::{BTreeMap, BTreeSet, HashSet, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use chrono::{DateTime, Local, Utc};
use croner::Cron;
use surveyor_model::{
    Accepted, Connector, ConnectorError, ConnectorMetric, ConnectorView, Control, Delivery,
    DeliveryRefusal, Target, TriggerRefusal,
};
use surveyor_store::Store;
use tokio::sync::{mpsc, watch};
use tracing::Instrument;

use crate::config::ScheduleZone;
use crate::lease::Lease;
use crate::reconcile::{ReconcileOptions, RunStatus, refresh_connector, run_connector};

/// One connector as the scheduler runs it.
pub struct Job {
    pub id: String,
    pub kind: String,
    /// The cron expression as written (for status), parsed below.
    pub schedule_text: Option<String>,
    pub schedule: Option<Cron>,
    pub timezone: ScheduleZone,
    pub timeout: Duration,
    pub jitter: Duration,
    pub run_on_start: bool,
    pub connector: Arc<dyn Connector>,
}

impl Job {
    /// A job with no schedule that does not run on start: it runs when triggered, and reads
    /// what events name (`surveyor demo`, tests and benchmarks that drive it themselves).
    pub fn on_demand(connector: Arc<dyn Connector>, timeout: Duration) -> Self {
        Self {
            id: connector.id().to_string(),
            kind: connector.kind().to_string(),
            schedule_text: None,
            schedule: None,
            timezone: ScheduleZone::Utc,
            timeout,
            jitter: Duration::ZERO,
            run_on_start: false,
            connector,
        }
    }
}

/// A cheap handle for the API: job status, manual triggers and webhook deliveries (through
/// [`Control`]).
#[derive(Clone)]
pub struct SchedulerHandle {
    status: Arc<Mutex<BTreeMap<String, ConnectorView>>>,
    triggers: BTreeMap<String, mpsc::Sender<()>>,
    connectors: Vec<(String, Arc<dyn Connector>)>,
    hints: BTreeMap<String, Arc<Hints>>,
}

/// Delivery ids remembered per connector, to take a retried or replayed delivery once.
const REMEMBERED_DELIVERIES: usize = 10_000;

/// What events named for one connector, waiting for its worker: a burst about one thing is one
/// target, and whatever waits is read in one refresh.
#[derive(Default)]
pub(crate) struct Hints {
    pending: Mutex<BTreeSet<Target>>,
    wake: tokio::sync::Notify,
    /// Recent delivery ids, oldest first.
    seen: Mutex<(VecDeque<String>, HashSet<String>)>,
}

impl Hints {
    /// Whether `delivery_id` is new (and now remembered).
    fn first_time(&self, delivery_id: &str) -> bool {
        let Ok(mut seen) = self.seen.lock() else {
            return true;
        };
        let (order, ids) = &mut *seen;
        if !ids.insert(delivery_id.to_string()) {
            return false;
        }
        order.push_back(delivery_id.to_string());
        if order.len() > REMEMBERED_DELIVERIES
            && let Some(old) = order.pop_front()
        {
            ids.remove(&old);
        }
        true
    }

    fn add(&self, targets: impl IntoIterator<Item = Target>) {
        if let Ok(mut p) = self.pending.lock() {
            p.extend(targets);
        }
        self.wake.notify_one();
    }

    fn take(&self) -> Vec<Target> {
        self.pending
            .lock()
            .map(|mut p| std::mem::take(&mut *p).into_iter().collect())
            .unwrap_or_default()
    }
}

/// The API's view of the scheduler: each job's status, its connector's figures, and manual
/// triggers.
impl Control for SchedulerHandle {
    fn connectors(&self) -> Vec<ConnectorView> {
        self.status
            .lock()
            .map(|s| s.values().cloned().collect())
            .unwrap_or_default()
    }

    /// Each connector's own figures (requests, 304s, rate-limit headroom).
    fn connector_metrics(&self) -> Vec<(String, Vec<ConnectorMetric>)> {
        self.connectors
            .iter()
            .map(|(id, c)| (id.clone(), c.metrics()))
            .collect()
    }

    /// Verifies a webhook delivery with its connector and queues what it names.
    fn deliver(&self, id: &str, delivery: Delivery) -> Result<Accepted, DeliveryRefusal> {
        let unknown = || DeliveryRefusal::Unknown(id.to_string());
        let connector = self
            .connectors
            .iter()
            .find(|(c, _)| c == id)
            .map(|(_, c)| c)
            .ok_or_else(unknown)?;
        let hints = self.hints.get(id).ok_or_else(unknown)?;
        let received = connector.receive(&delivery)?;
        if let Some(d) = &received.delivery_id
            && !hints.first_time(d)
        {
            return Ok(Accepted::Duplicate);
        }
        let targets = received.targets.len();
        tracing::debug!(connector = %id, targets, "webhook delivery queued");
        hints.add(received.targets);
        Ok(Accepted::Queued { targets })
    }

    /// Asks for a run of `id` now (at most one waits behind a running one).
    fn trigger(&self, id: &str) -> Result<(), TriggerRefusal> {
        let tx = self
            .triggers
            .get(id)
            .ok_or_else(|| TriggerRefusal::Unknown(id.to_string()))?;
        match tx.try_send(()) {
            Ok(()) => Ok(()),
            Err(mpsc::error::TrySendError::Full(())) => Err(TriggerRefusal::Busy(id.to_string())),
            Err(mpsc::error::TrySendError::Closed(())) => Err(TriggerRefusal::Stopped),
        }
    }
}

/// Settings shared by every job.
#[derive(Clone)]
pub struct SchedulerOptions {
    pub reconcile: ReconcileOptions,
    /// This process's name in leases (host and pid, say).
    pub holder: String,
    /// How long a lease lasts without renewal ([`crate::lease::default_ttl`]); it is renewed
    /// every third of it while a run goes on.
    pub lease_ttl: Duration,
    /// How long a running crawl may go on after shutdown was asked for.
    pub grace: Duration,
}

pub struct Scheduler {
    store: Store,
    jobs: Vec<Job>,
    options: SchedulerOptions,
    handle: SchedulerHandle,
    receivers: BTreeMap<String, mpsc::Receiver<()>>,
}

/// The next scheduled time after `after`, in the job's zone, as UTC.
pub fn next_tick(job: &Job, after: DateTime<Utc>) -> Option<DateTime<Utc>> {
    let cron = job.schedule.as_ref()?;
    match job.timezone {
        ScheduleZone::Utc => cron.find_next_occurrence(&after, false).ok(),
        ScheduleZone::Local => cron
            .find_next_occurrence(&after.with_timezone(&Local), false)
            .ok()
            .map(|t| t.with_timezone(&Utc)),
        ScheduleZone::Named(tz) => cron
            .find_next_occurrence(&after.with_timezone(&tz), false)
            .ok()
            .map(|t| t.with_timezone(&Utc)),
    }
}

/// A fixed offset in `0..=jitter` for one job and tick, the same on every replica (so they
/// still compete for the same tick) and different between jobs and ticks.
fn jitter_for(job: &str, tick: DateTime<Utc>, jitter: Duration) -> Duration {
    if jitter.is_zero() {
        return Duration::ZERO;
    }
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in job.bytes().chain(tick.timestamp().to_le_bytes()) {
        h = (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3);
    }
    Duration::from_millis(h % (jitter.as_millis() as u64 + 1))
}

impl Scheduler {
    pub fn new(store: Store, jobs: Vec<Job>, options: SchedulerOptions) -> Self {
        let mut triggers = BTreeMap::new();
        let mut receivers = BTreeMap::new();
        let mut status = BTreeMap::new();
        let now = Utc::now();
        let connectors = jobs
            .iter()
            .map(|j| (j.id.clone(), Arc::clone(&j.connector)))
            .collect();
        let mut hints = BTreeMap::new();
        for job in &jobs {
            let (tx, rx) = mpsc::channel(1);
            triggers.insert(job.id.clone(), tx);
            hints.insert(job.id.clone(), Arc::new(Hints::default()));
            receivers.insert(job.id.clone(), rx);
            status.insert(
                job.id.clone(),
                ConnectorView {
                    id: job.id.clone(),
                    kind: job.kind.clone(),
                    schedule: job.schedule_text.clone(),
                    next_run: next_tick(job, now),
                    ..ConnectorView::default()
                },
            );
        }
        Self {
            store,
            jobs,
            options,
            handle: SchedulerHandle {
                status: Arc::new(Mutex::new(status)),
                triggers,
                connectors,
                hints,
            },
            receivers,
        }
    }

    pub fn handle(&self) -> SchedulerHandle {
        self.handle.clone()
    }

    /// Runs every job until `shutdown` turns true; returns when each has stopped.
    pub async fn run(mut self, shutdown: watch::Receiver<bool>) {
        let mut tasks = Vec::new();
        let mut watches = Vec::new();
        for job in std::mem::take(&mut self.jobs) {
            let Some(triggers) = self.receivers.remove(&job.id) else {
                continue;
            };
            let hints = self.handle.hints.get(&job.id).cloned().unwrap_or_default();
            watches.push(tokio::spawn(follow_watch(
                job.id.clone(),
                Arc::clone(&job.connector),
                Arc::clone(&hints),
                shutdown.clone(),
            )));
            let worker = Worker {
                store: self.store.clone(),
                options: self.options.clone(),
                status: Arc::clone(&self.handle.status),
                hints,
                job,
            };
            tasks.push(tokio::spawn(worker.run(triggers, shutdown.clone())));
        }
        for t in tasks {
            let _ = t.await;
        }
        for w in watches {
            w.abort();
        }
    }
}

/// How long a watch that ended with an error waits before it starts again.
const REWATCH_AFTER: Duration = Duration::from_secs(5);

/// Runs `connector`'s watch, its hints queued like a webhook's, until shutdown; a watch that
/// ends with an error is started again. A connector with nothing to watch returns at once.
async fn follow_watch(
    id: String,
    connector: Arc<dyn Connector>,
    hints: Arc<Hints>,
    mut shutdown: watch::Receiver<bool>,
) {
    loop {
        let queue = Arc::clone(&hints);
        let sink = surveyor_model::HintSink::new(move |targets| {
            queue.add(targets);
            true
        });
        let ended = tokio::select! {
            r = connector.watch(sink) => r,
            _ = shutdown.changed() => return,
        };
        match ended {
            Ok(()) | Err(ConnectorError::Unsupported(_) | ConnectorError::Cancelled(_)) => return,
            Err(e) => {
                tracing::warn!(connector = %id, error = %e, "the watch stopped; starting it again");
            }
        }
        tokio::select! {
            () = tokio::time::sleep(REWATCH_AFTER) => {}
            _ = shutdown.changed() => return,
        }
    }
}

struct Worker {
    store: Store,
    options: SchedulerOptions,
    status: Arc<Mutex<BTreeMap<String, ConnectorView>>>,
    hints: Arc<Hints>,
    job: Job,
}

/// What woke a worker.
enum Wake {
    /// A scheduled tick or a trigger: a whole crawl.
    Tick(DateTime<Utc>),
    /// Events named things to read again.
    Hints,
}

impl Worker {
    fn update(&self, f: impl FnOnce(&mut ConnectorView)) {
        if let Ok(mut s) = self.status.lock()
            && let Some(st) = s.get_mut(&self.job.id)
        {
            f(st);
        }
    }

    async fn run(self, mut triggers: mpsc::Receiver<()>, mut shutdown: watch::Receiver<bool>) {
        let mut first = self.job.run_on_start;
        loop {
            if *shutdown.borrow() {
                return;
            }
            let now = Utc::now();
            let next = next_tick(&self.job, now);
            self.update(|s| s.next_run = next);
            let wake = if first {
                first = false;
                Wake::Tick(now)
            } else {
                let wait = next.map(|t| {
                    (t - now).to_std().unwrap_or_default()
                        + jitter_for(&self.job.id, t, self.job.jitter)
                });
                tokio::select! {
                    _ = sleep_or_forever(wait) => match next { Some(t) => Wake::Tick(t), None => continue },
                    Some(()) = triggers.recv() => Wake::Tick(Utc::now()),
                    () = self.hints.wake.notified() => Wake::Hints,
                    _ = shutdown.changed() => continue,
                }
            };
            match wake {
                Wake::Tick(tick) => {
                    self.run_tick(tick, &mut shutdown, None).await;
                }
                Wake::Hints => self.refresh(&mut shutdown).await,
            }
        }
    }

    /// Reads again what events named (everything waiting, in one run); a connector that
    /// cannot refresh is crawled whole. When another replica holds the lease, the targets wait
    /// and are tried again shortly: that replica may have read them before they changed.
    async fn refresh(&self, shutdown: &mut watch::Receiver<bool>) {
        // The events of one change come together (a new repository: its creation, then a
        // push): let them gather, so they are one read.
        tokio::time::sleep(HINTS_SETTLE).await;
        let targets = self.hints.take();
        if targets.is_empty() {
            return;
        }
        // A connector that cannot refresh is crawled whole: the same lease, the same retry.
        let narrow = self
            .job
            .connector
            .refreshes(&targets)
            .then(|| targets.clone());
        if let Ran::LeaseHeld = self.run_tick(Utc::now(), shutdown, narrow).await {
            let hints = Arc::clone(&self.hints);
            tokio::spawn(async move {
                tokio::time::sleep(RETRY_HINTS_AFTER).await;
                hints.add(targets);
            });
        }
    }

    async fn run_tick(
        &self,
        tick: DateTime<Utc>,
        shutdown: &mut watch::Receiver<bool>,
        targets: Option<Vec<Target>>,
    ) -> Ran {
        let id = &self.job.id;
        let holder = &self.options.holder;
        let mut lease = match Lease::take(&self.store, id, holder, tick, self.options.lease_ttl)
            .await
        {
            Ok(Some(lease)) => lease,
            Ok(None) => {
                tracing::debug!(connector = %id, %tick, "another process took this run");
                return Ran::LeaseHeld;
            }
            Err(e) => {
                tracing::warn!(connector = %id, error = %e, "cannot take the lease; skipping this run");
                self.update(|s| s.last_error = Some(format!("lease: {e}")));
                return Ran::LeaseHeld;
            }
        };
        self.update(|s| {
            s.running = true;
            s.last_started = Some(Utc::now());
        });
        let connector = self.job.connector.as_ref();
        let options = &self.options.reconcile;
        let refreshing = targets.is_some();
        let mut run = Box::pin(
            async move {
                match &targets {
                    Some(t) => refresh_connector(&self.store, connector, t, options).await,
                    None => run_connector(&self.store, connector, options).await,
                }
            }
            .instrument(tracing::info_span!("scheduled_run", connector = %id, %tick, refreshing)),
        );
        let deadline = tokio::time::sleep(self.job.timeout);
        tokio::pin!(deadline);
        let mut stopping: Option<std::pin::Pin<Box<tokio::time::Sleep>>> = None;
        let result: Result<String, String> = loop {
            tokio::select! {
                r = &mut run => break match r {
                    Ok(report) => match report.status {
                        RunStatus::Succeeded => Ok("succeeded".into()),
                        other => Err(format!("{}{}", other.as_str(), report.error.map(|e| format!(": {e}")).unwrap_or_default())),
                    },
                    Err(e) => Err(format!("failed: {e}")),
                },
                _ = &mut deadline => break Err(format!("abandoned: still running after {:?}", self.job.timeout)),
                _ = async { match &mut stopping { Some(s) => s.as_mut().await, None => std::future::pending().await } } => {
                    break Err("abandoned: shutting down".into());
                }
                _ = shutdown.changed(), if stopping.is_none() => {
                    tracing::info!(connector = %id, grace = ?self.options.grace, "shutting down: letting the run finish");
                    stopping = Some(Box::pin(tokio::time::sleep(self.options.grace)));
                }
                reason = lease.lost() => break Err(format!("abandoned: {reason}")),
            }
        };
        // Dropping the run (on timeout or shutdown) rolls back its open transaction — before
        // the lease is released, since on SQLite that transaction holds the only writer. Its run
        // row is marked abandoned by the next run of this connector, which holds the lease.
        drop(run);
        lease.release().await;
        match &result {
            Ok(_) => tracing::debug!(connector = %id, "scheduled run done"),
            Err(e) => tracing::warn!(connector = %id, error = %e, "run did not succeed"),
        }
        self.update(|s| {
            s.running = false;
            match &result {
                Ok(status) => {
                    s.last_status = Some(status.clone());
                    s.last_error = None;
                }
                Err(e) => {
                    s.last_status = Some(e.split(':').next().unwrap_or("failed").to_string());
                    s.last_error = Some(e.clone());
                }
            }
        });
        Ran::Done
    }
}

/// How a worker's run went, for what it does next.
enum Ran {
    /// It ran (a crawl, or a refresh), whatever its outcome.
    Done,
    /// Another process holds the lease.
    LeaseHeld,
}

/// How long a worker woken by an event waits for the rest of its burst before reading.
const HINTS_SETTLE: Duration = Duration::from_millis(200);

/// How long targets wait before another try when another process held the lease.
const RETRY_HINTS_AFTER: Duration = Duration::from_secs(2);

async fn sleep_or_forever(wait: Option<Duration>) {
    match wait {
        Some(d) => tokio::time::sleep(d).await,
        None => std::future::pending().await,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use surveyor_model::Outcome;
    use surveyor_model::testing::Scripted;

    fn job(schedule: &str, zone: ScheduleZone) -> Job {
        let parser = croner::parser::CronParser::builder()
            .seconds(croner::parser::Seconds::Optional)
            .build();
        Job {
            id: "x".into(),
            kind: "none".into(),
            schedule_text: Some(schedule.into()),
            schedule: parser.parse(schedule).ok(),
            timezone: zone,
            timeout: Duration::from_secs(60),
            jitter: Duration::ZERO,
            run_on_start: false,
            // A source that reports nothing.
            connector: Arc::new(Scripted::new("x", Vec::new(), Outcome::default())),
        }
    }

    #[test]
    fn ticks_follow_the_cron_expression() {
        let at = DateTime::parse_from_rfc3339("2026-11-23T10:07:30Z")
            .unwrap()
            .with_timezone(&Utc);
        let j = job("*/15 * * * *", ScheduleZone::Utc);
        assert_eq!(
            next_tick(&j, at).unwrap().to_rfc3339(),
            "2026-11-23T10:15:00+00:00"
        );
        let j = job("*/10 * * * * *", ScheduleZone::Utc);
        assert_eq!(
            next_tick(&j, at).unwrap().to_rfc3339(),
            "2026-11-23T10:07:40+00:00"
        );
        assert!(next_tick(&job("bad", ScheduleZone::Utc), at).is_none());
        // 09:00 in Berlin is 08:00 UTC in winter.
        let j = job("0 9 * * *", ScheduleZone::Named(chrono_tz::Europe::Berlin));
        assert_eq!(
            next_tick(&j, at).unwrap().to_rfc3339(),
            "2026-11-24T08:00:00+00:00"
        );
    }

    #[test]
    fn jitter_is_bounded_and_the_same_for_every_replica() {
        let t = Utc::now();
        let j = jitter_for("github", t, Duration::from_secs(30));
        assert!(j <= Duration::from_secs(30));
        assert_eq!(j, jitter_for("github", t, Duration::from_secs(30)));
        assert_eq!(jitter_for("github", t, Duration::ZERO), Duration::ZERO);
    }
}
