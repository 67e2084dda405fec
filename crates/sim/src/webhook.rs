//! Webhooks the fakes send when the org changes: signing as each vendor does, and a sender that
//! drops, duplicates, delays or reorders deliveries on request and records what it planted.
//!
//! # Knobs
//!
//! A [`WebhookSink`] says where deliveries go and how they misbehave:
//!
//! - `url`, `secret`: the receiver, and the secret GitHub signs with (`X-Hub-Signature-256`,
//!   HMAC-SHA256 of the raw body), GitLab sends verbatim (`X-Gitlab-Token`), PagerDuty signs
//!   with (`X-PagerDuty-Signature: v1=<hex>`) or Jira signs with (`X-Hub-Signature: sha256=<hex>`).
//! - `drop` (0.0..=1.0): the share of events never sent. They are still recorded, as
//!   [`Fate::Dropped`], so a benchmark can check that a sweep repaired every one of them.
//! - `duplicate` (0.0..=1.0): the share of events sent twice with the same delivery id, as a
//!   vendor's redelivery does ([`Fate::Duplicated`]).
//! - `delay`: each delivery waits a time drawn from this range before it goes out. Deliveries
//!   still leave in their planned order, so a long delay holds back the ones behind it.
//! - `reorder`: the events of one change (one [`Webhooks::post`]) are shuffled before sending.
//! - `seed`: every decision (ids, drops, copies, delays, order) comes from it, so one seed and
//!   one sequence of changes plant the same deliveries; only the receiver's answers vary.
//!
//! [`Webhooks::planted`] lists every planned delivery in sending order with its fate and the
//! receiver's answers; [`Webhooks::settled`] waits until everything planned has been tried.

use std::collections::BTreeMap;
use std::ops::Range;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use serde_json::Value;
use surveyor_http::webhook::{hmac_sha256_hex, hmac_sha256_matches};
use tokio::sync::{Notify, mpsc};
use tokio::time::Instant;

use crate::rng::Rng;

/// Where deliveries go and how they misbehave (see the module docs).
#[derive(Debug, Clone, PartialEq)]
pub struct WebhookSink {
    pub url: String,
    pub secret: String,
    pub drop: f64,
    pub duplicate: f64,
    pub delay: Range<Duration>,
    pub reorder: bool,
    pub seed: u64,
}

impl WebhookSink {
    /// Every event, once, at once, in order.
    pub fn reliable(url: &str, secret: &str) -> Self {
        Self {
            url: url.to_string(),
            secret: secret.to_string(),
            drop: 0.0,
            duplicate: 0.0,
            delay: Duration::ZERO..Duration::ZERO,
            reorder: false,
            seed: 0,
        }
    }
}

/// Which vendor's conventions a sender follows (headers, how the secret travels).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Vendor {
    GitHub,
    GitLab,
    /// v3 webhook subscriptions: the event's `event.id` is the delivery id.
    PagerDuty,
    /// Admin webhooks registered with a secret.
    Jira,
}

/// What an event is about, so a benchmark can match what a sweep repaired to what was lost.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct Subject {
    /// `repository`, `team`, `user` (GitHub); `project`, `group`, `user` (GitLab); `service`
    /// (PagerDuty); `project`, `component` (Jira).
    pub kind: &'static str,
    /// The vendor's numeric id (for PagerDuty's letter ids, a number standing for the id).
    pub id: u64,
    /// The full name (`acme/payments-api-3`, `acme/payments`), slug or login.
    pub name: String,
}

/// One event before it is sent: the vendor's event name (`X-GitHub-Event`, `X-Gitlab-Event`,
/// PagerDuty's `event.event_type`, Jira's `webhookEvent`), its action, and the JSON body.
#[derive(Debug, Clone, PartialEq)]
pub struct Event {
    pub name: String,
    /// `created`, `renamed`, `member_added`, `project_create`, ... (`None` for pushes).
    pub action: Option<String>,
    pub subject: Subject,
    pub payload: Value,
}

/// What became of a planned delivery.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fate {
    Sent,
    /// Sent twice with the same delivery id.
    Duplicated,
    /// Never sent.
    Dropped,
}

/// One planned delivery and what the receiver answered to each copy sent.
#[derive(Debug, Clone, PartialEq)]
pub struct PlantedDelivery {
    /// `X-GitHub-Delivery`, `X-Gitlab-Event-UUID`, PagerDuty's `event.id` (also sent as
    /// `X-Webhook-Id`) or `X-Atlassian-Webhook-Identifier`.
    pub delivery_id: String,
    pub event: String,
    pub action: Option<String>,
    pub subject: Subject,
    pub fate: Fate,
    pub delay: Duration,
    /// Per copy sent: the status, or why the POST failed. Empty while not yet tried.
    pub answers: Vec<Result<u16, String>>,
}

impl PlantedDelivery {
    /// Every copy was tried and none was answered with a 2xx.
    pub fn failed(&self) -> bool {
        !self.answers.is_empty()
            && self
                .answers
                .iter()
                .all(|a| !matches!(a, Ok(s) if (200..300).contains(s)))
    }
}

/// Everything a sender planted, in sending order.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Planted {
    pub deliveries: Vec<PlantedDelivery>,
}

impl Planted {
    fn with(&self, fates: &[Fate]) -> Vec<&PlantedDelivery> {
        self.deliveries
            .iter()
            .filter(|d| fates.contains(&d.fate))
            .collect()
    }

    /// Deliveries sent at least once (duplicated ones included).
    pub fn sent(&self) -> Vec<&PlantedDelivery> {
        self.with(&[Fate::Sent, Fate::Duplicated])
    }

    pub fn dropped(&self) -> Vec<&PlantedDelivery> {
        self.with(&[Fate::Dropped])
    }

    pub fn duplicated(&self) -> Vec<&PlantedDelivery> {
        self.with(&[Fate::Duplicated])
    }

    /// Sent, but no copy was accepted (refused, or the POST failed).
    pub fn failed(&self) -> Vec<&PlantedDelivery> {
        self.deliveries.iter().filter(|d| d.failed()).collect()
    }
}

/// `sha256=<hex>`: GitHub's `X-Hub-Signature-256` of `body` under `secret`.
pub fn github_signature(secret: &str, body: &[u8]) -> String {
    format!("sha256={}", hmac_sha256_hex(secret.as_bytes(), body))
}

/// `v1=<hex>`: PagerDuty's `X-PagerDuty-Signature` of `body` under `secret` (one signature; a
/// subscription whose secret is being rotated sends several, comma-separated).
pub fn pagerduty_signature(secret: &str, body: &[u8]) -> String {
    format!("v1={}", hmac_sha256_hex(secret.as_bytes(), body))
}

/// Whether `header` is the `X-Hub-Signature-256` of `body` under `secret` (compared in
/// constant time, as a receiver must).
pub fn verify_github_signature(secret: &str, body: &[u8], header: &str) -> bool {
    header
        .strip_prefix("sha256=")
        .is_some_and(|hex| hmac_sha256_matches(secret.as_bytes(), body, hex))
}

/// One delivery ready to go out.
struct Outgoing {
    /// Index into the log.
    index: usize,
    copies: usize,
    due: Instant,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
}

struct Inner {
    vendor: Vendor,
    sink: WebhookSink,
    rng: Rng,
    /// Names this hook in `X-GitHub-Hook-ID` / `X-Gitlab-Webhook-UUID`.
    hook_id: String,
    log: Vec<PlantedDelivery>,
    /// Planned deliveries not yet tried.
    pending: usize,
}

struct Shared {
    inner: Mutex<Inner>,
    idle: Notify,
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// A sender of one vendor's webhooks to one sink. Clones share the sender; the sending task
/// stops when the last clone is dropped.
#[derive(Clone)]
pub struct Webhooks {
    shared: Arc<Shared>,
    queue: mpsc::UnboundedSender<Outgoing>,
}

impl std::fmt::Debug for Webhooks {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // The sink holds the secret.
        f.debug_struct("Webhooks").finish_non_exhaustive()
    }
}

impl Webhooks {
    /// A sender following `vendor`'s conventions; its sending task runs on the current Tokio
    /// runtime.
    pub async fn start(vendor: Vendor, sink: WebhookSink) -> Self {
        let mut rng = Rng::new(sink.seed);
        let hook_id = match vendor {
            Vendor::GitHub => (100_000_000 + rng.below(900_000_000)).to_string(),
            Vendor::GitLab | Vendor::Jira => uuid_from(&mut rng),
            // A webhook subscription's id (`PXXXXXX`).
            Vendor::PagerDuty => format!("P{:06X}", rng.below(0xFF_FFFF)),
        };
        let shared = Arc::new(Shared {
            inner: Mutex::new(Inner {
                vendor,
                sink: sink.clone(),
                rng,
                hook_id,
                log: Vec::new(),
                pending: 0,
            }),
            idle: Notify::new(),
        });
        let (queue, rx) = mpsc::unbounded_channel();
        tokio::spawn(deliver(Arc::clone(&shared), sink.url, rx));
        Self { shared, queue }
    }

    /// Plans the events of one change (drops, copies, delays, order) and queues what is sent.
    /// Returns at once; the deliveries go out in the background.
    pub fn post(&self, events: Vec<Event>) {
        let mut inner = self.shared.lock();
        let now = Instant::now();
        let mut planned: Vec<(PlantedDelivery, Outgoing)> = Vec::with_capacity(events.len());
        for mut event in events {
            let sink = &inner.sink;
            let (drop_p, dup_p, delay) = (sink.drop, sink.duplicate, sink.delay.clone());
            // Every event draws the same numbers whatever its fate, so one knob's setting
            // never shifts another's decisions.
            let id = uuid_from(&mut inner.rng);
            let dropped = unit(&mut inner.rng) < drop_p;
            let duplicated = unit(&mut inner.rng) < dup_p;
            let wait = between(&mut inner.rng, &delay);
            let fate = match (dropped, duplicated) {
                (true, _) => Fate::Dropped,
                (false, true) => Fate::Duplicated,
                (false, false) => Fate::Sent,
            };
            if inner.vendor == Vendor::PagerDuty && event.payload["event"].is_object() {
                // A v3 payload carries its own id: the one a redelivery repeats.
                event.payload["event"]["id"] = Value::String(id.clone());
            }
            let body = serde_json::to_vec(&event.payload).unwrap_or_default();
            let headers = inner.headers(&event, &id, &body);
            planned.push((
                PlantedDelivery {
                    delivery_id: id,
                    event: event.name,
                    action: event.action,
                    subject: event.subject,
                    fate,
                    delay: wait,
                    answers: Vec::new(),
                },
                Outgoing {
                    index: 0,
                    copies: if duplicated { 2 } else { 1 },
                    due: now + wait,
                    headers,
                    body,
                },
            ));
        }
        if inner.sink.reorder {
            // Fisher-Yates, from the sender's own stream.
            for i in (1..planned.len()).rev() {
                let j = inner.rng.below(i + 1);
                planned.swap(i, j);
            }
        }
        for (record, mut out) in planned {
            out.index = inner.log.len();
            let send = record.fate != Fate::Dropped;
            inner.log.push(record);
            if send {
                inner.pending += 1;
                if self.queue.send(out).is_err() {
                    // The sending task is gone (its runtime shut down): record, never panic.
                    inner.pending -= 1;
                    let index = inner.log.len() - 1;
                    inner.log[index]
                        .answers
                        .push(Err("the sending task has stopped".into()));
                }
            }
        }
    }

    /// Everything planted so far, in sending order.
    pub fn planted(&self) -> Planted {
        Planted {
            deliveries: self.shared.lock().log.clone(),
        }
    }

    /// Waits until every planned delivery has been tried (sent, refused or failed).
    pub async fn settled(&self) {
        loop {
            let notified = self.shared.idle.notified();
            if self.shared.lock().pending == 0 {
                return;
            }
            notified.await;
        }
    }
}

impl Inner {
    fn headers(&self, event: &Event, id: &str, body: &[u8]) -> Vec<(String, String)> {
        let mut h = vec![("content-type".to_string(), "application/json".to_string())];
        let mut add = |k: &str, v: String| h.push((k.to_string(), v));
        match self.vendor {
            Vendor::GitHub => {
                add("user-agent", "GitHub-Hookshot/sim".into());
                add("x-github-event", event.name.clone());
                add("x-github-delivery", id.to_string());
                add("x-github-hook-id", self.hook_id.clone());
                add(
                    "x-github-hook-installation-target-type",
                    "organization".into(),
                );
                add(
                    "x-hub-signature-256",
                    github_signature(&self.sink.secret, body),
                );
            }
            Vendor::GitLab => {
                add("user-agent", "GitLab/18.0.0".into());
                add("x-gitlab-event", event.name.clone());
                add("x-gitlab-event-uuid", id.to_string());
                add("x-gitlab-webhook-uuid", self.hook_id.clone());
                // GitLab keeps this across redeliveries of one event.
                add("idempotency-key", id.to_string());
                add("x-gitlab-token", self.sink.secret.clone());
            }
            Vendor::PagerDuty => {
                add("user-agent", "PagerDuty-Webhook/V3.0".into());
                add("x-webhook-id", id.to_string());
                add("x-webhook-subscription", self.hook_id.clone());
                add(
                    "x-pagerduty-signature",
                    pagerduty_signature(&self.sink.secret, body),
                );
            }
            Vendor::Jira => {
                add("user-agent", "Atlassian Webhook HTTP Client".into());
                add("x-atlassian-webhook-identifier", id.to_string());
                add("x-atlassian-webhook-flow", "Primary".into());
                // Admin webhooks with a secret: WebSub's `method=signature`.
                add("x-hub-signature", github_signature(&self.sink.secret, body));
            }
        }
        h
    }
}

/// The sending task: deliveries in planned order, each after its delay.
async fn deliver(shared: Arc<Shared>, url: String, mut rx: mpsc::UnboundedReceiver<Outgoing>) {
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(10))
        .build()
        .unwrap_or_default();
    while let Some(out) = rx.recv().await {
        tokio::time::sleep_until(out.due).await;
        for _ in 0..out.copies {
            let mut request = client.post(&url).body(out.body.clone());
            for (k, v) in &out.headers {
                request = request.header(k, v);
            }
            let answer = match request.send().await {
                Ok(response) => Ok(response.status().as_u16()),
                Err(e) => Err(e.to_string()),
            };
            if let Some(d) = shared.lock().log.get_mut(out.index) {
                d.answers.push(answer);
            }
        }
        let mut inner = shared.lock();
        inner.pending = inner.pending.saturating_sub(1);
        if inner.pending == 0 {
            shared.idle.notify_waiters();
        }
    }
}

/// A version-4 UUID from the sender's stream (GitHub's delivery GUIDs look the same).
fn uuid_from(rng: &mut Rng) -> String {
    let bytes = (u128::from(rng.next_u64()) << 64 | u128::from(rng.next_u64())).to_be_bytes();
    uuid::Builder::from_random_bytes(bytes)
        .into_uuid()
        .to_string()
}

/// Uniform in `[0, 1)`.
pub(crate) fn unit(rng: &mut Rng) -> f64 {
    (rng.next_u64() >> 11) as f64 / (1u64 << 53) as f64
}

pub(crate) fn between(rng: &mut Rng, range: &Range<Duration>) -> Duration {
    let span = range.end.saturating_sub(range.start);
    let nanos = u64::try_from(span.as_nanos()).unwrap_or(u64::MAX);
    // Draw even for an empty range, so the delay knob never shifts other decisions.
    let draw = rng.next_u64();
    range.start + Duration::from_nanos(if nanos == 0 { 0 } else { draw % nanos })
}

/// Changed, added and removed paths between two file maps.
pub(crate) fn file_changes(
    before: &BTreeMap<String, String>,
    after: &BTreeMap<String, String>,
) -> (Vec<String>, Vec<String>, Vec<String>) {
    let added = after
        .keys()
        .filter(|k| !before.contains_key(*k))
        .cloned()
        .collect();
    let modified = after
        .iter()
        .filter(|(k, v)| before.get(*k).is_some_and(|b| b != *v))
        .map(|(k, _)| k.clone())
        .collect();
    let removed = before
        .keys()
        .filter(|k| !after.contains_key(*k))
        .cloned()
        .collect();
    (added, modified, removed)
}

/// A 40-hex commit id standing for the files at one state (the same files give the same id).
pub(crate) fn commit_sha(repo_id: u64, files: &BTreeMap<String, String>) -> String {
    // FNV-1a, twice with different offsets, for 160 bits of stable hash.
    let mut parts = [
        0xcbf2_9ce4_8422_2325u64,
        0x8422_2325_cbf2_9ce4,
        0x1234_5678_9abc_def0,
    ];
    for (n, part) in parts.iter_mut().enumerate() {
        let mut feed = |b: u8| {
            *part ^= u64::from(b);
            *part = part.wrapping_mul(0x0000_0100_0000_01B3);
        };
        for b in repo_id.to_le_bytes().into_iter().chain([n as u8]) {
            feed(b);
        }
        for (k, v) in files {
            k.bytes()
                .chain([0])
                .chain(v.bytes())
                .chain([0])
                .for_each(&mut feed);
        }
    }
    format!("{:016x}{:016x}{:08x}", parts[0], parts[1], parts[2] >> 32)
}
