//! What connectors produce: observations of things seen at a source, streamed into a sink, and
//! an outcome saying which scopes were crawled completely. The `Connector` trait ties them.

use std::collections::BTreeMap;
use std::fmt;

use serde::{Deserialize, Serialize};
use tokio::sync::mpsc;

use crate::entity::{Entity, Relation};

/// One thing seen at a source during a crawl.
#[derive(Clone, Debug, PartialEq)]
pub struct Observation {
    /// The connector instance (its configured `id`); the sink stamps it.
    pub source: String,
    /// The part of the source this was crawled under (an org, a cluster, a folder of files).
    pub scope: String,
    /// The source's own stable identity for the thing (node id, uid, path) — never the name.
    pub external_id: String,
    pub entity: Entity,
    /// Relations the source knows beyond what `entity.spec` implies.
    pub relations: Vec<Relation>,
    /// Declared by people (a descriptor file) rather than discovered; declared wins a merge.
    pub declared: bool,
}

impl Observation {
    pub fn discovered(
        scope: impl Into<String>,
        external_id: impl Into<String>,
        entity: Entity,
    ) -> Self {
        Self {
            source: String::new(),
            scope: scope.into(),
            external_id: external_id.into(),
            entity,
            relations: Vec::new(),
            declared: false,
        }
    }

    pub fn declared(
        scope: impl Into<String>,
        external_id: impl Into<String>,
        entity: Entity,
    ) -> Self {
        Self {
            declared: true,
            ..Self::discovered(scope, external_id, entity)
        }
    }
}

/// How completely one scope was crawled. Only `Complete` scopes delete what they did not see;
/// any scope but a failed one deletes what the source confirmed gone ([`Outcome::gone`]).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "status", rename_all = "snake_case")]
pub enum ScopeStatus {
    Complete,
    /// Only the things a refresh was asked for ([`Target`]s) were re-read, each completely:
    /// what was seen is true, what was not proves nothing.
    Refreshed,
    /// Some of the scope was seen; what was seen is true, what was not proves nothing.
    Partial {
        reason: String,
    },
    /// Nothing reliable came back from the scope.
    Failed {
        reason: String,
    },
}

impl ScopeStatus {
    pub fn is_complete(&self) -> bool {
        matches!(self, Self::Complete)
    }

    pub fn reason(&self) -> Option<&str> {
        match self {
            Self::Complete | Self::Refreshed => None,
            Self::Partial { reason } | Self::Failed { reason } => Some(reason),
        }
    }

    /// Folds another report about the same scope in: the worse status wins.
    pub fn merge(self, other: Self) -> Self {
        match (self, other) {
            (Self::Failed { reason }, _) | (_, Self::Failed { reason }) => Self::Failed { reason },
            (Self::Partial { reason }, _) | (_, Self::Partial { reason }) => {
                Self::Partial { reason }
            }
            (Self::Refreshed, _) | (_, Self::Refreshed) => Self::Refreshed,
            _ => Self::Complete,
        }
    }
}

/// A problem with one item at the source that did not stop the crawl (a bad descriptor, say).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Problem {
    pub scope: String,
    /// Where at the source: `catalog/a.yaml#2` (document index), a repo, an API path.
    pub location: String,
    /// The entity field at fault, when there is one (`metadata.name`).
    pub field: Option<String>,
    pub message: String,
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.field {
            // Field-level messages usually name their field already.
            Some(field) if !self.message.starts_with(field.as_str()) => {
                write!(f, "{}: {}: {}", self.location, field, self.message)
            }
            _ => write!(f, "{}: {}", self.location, self.message),
        }
    }
}

/// The end of a crawl: each scope's status, and the problems met on the way.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Outcome {
    pub scopes: BTreeMap<String, ScopeStatus>,
    pub problems: Vec<Problem>,
    /// Scope prefixes the connector listed in full (`prod/` when every namespace of cluster
    /// `prod` was listed): a stored scope under one that is not in `scopes` no longer exists at
    /// the source, so it is complete and empty rather than unreported.
    #[serde(default, skip_serializing_if = "std::collections::BTreeSet::is_empty")]
    pub enumerated: std::collections::BTreeSet<String>,
    /// Per scope, the external ids the source itself said no longer exist (a 404 on a
    /// repository an event named, say): deleted even where the scope was not read whole.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub gone: BTreeMap<String, std::collections::BTreeSet<String>>,
}

impl Outcome {
    /// Declares that every scope starting with `prefix` that still exists was reported.
    pub fn enumerated(&mut self, prefix: impl Into<String>) {
        self.enumerated.insert(prefix.into());
    }

    /// Whether `scope` falls under a prefix listed in full (and so is gone if not reported).
    pub fn is_enumerated(&self, scope: &str) -> bool {
        self.enumerated
            .iter()
            .any(|p| scope.starts_with(p.as_str()))
    }

    pub fn complete(&mut self, scope: impl Into<String>) {
        self.report(scope, ScopeStatus::Complete);
    }

    /// The targets a refresh asked for in `scope` were each read completely.
    pub fn refreshed(&mut self, scope: impl Into<String>) {
        self.report(scope, ScopeStatus::Refreshed);
    }

    /// The source says `external_id` in `scope` no longer exists: it is deleted (a scope that
    /// failed deletes nothing, and the deletion guard still applies).
    pub fn confirm_gone(&mut self, scope: impl Into<String>, external_id: impl Into<String>) {
        self.gone
            .entry(scope.into())
            .or_default()
            .insert(external_id.into());
    }

    pub fn partial(&mut self, scope: impl Into<String>, reason: impl Into<String>) {
        self.report(
            scope,
            ScopeStatus::Partial {
                reason: reason.into(),
            },
        );
    }

    pub fn failed(&mut self, scope: impl Into<String>, reason: impl Into<String>) {
        self.report(
            scope,
            ScopeStatus::Failed {
                reason: reason.into(),
            },
        );
    }

    /// Records a status for a scope; a scope reported twice keeps the worse status.
    pub fn report(&mut self, scope: impl Into<String>, status: ScopeStatus) {
        let scope = scope.into();
        let merged = match self.scopes.remove(&scope) {
            Some(previous) => previous.merge(status),
            None => status,
        };
        self.scopes.insert(scope, merged);
    }

    /// A problem with one item; it makes its scope partial.
    pub fn problem(&mut self, problem: Problem) {
        let reason = format!("problem at {}", problem.location);
        self.partial(problem.scope.clone(), reason);
        self.problems.push(problem);
    }

    pub fn status(&self, scope: &str) -> Option<&ScopeStatus> {
        self.scopes.get(scope)
    }
}

/// Where a connector sends observations. Cloneable, so a connector can crawl scopes in parallel.
#[derive(Clone, Debug)]
pub struct ObservationSink {
    source: String,
    tx: mpsc::Sender<Observation>,
}

/// The receiving side went away (the run was cancelled); the connector should stop.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("the run was cancelled: nobody is receiving observations")]
pub struct SinkClosed;

impl ObservationSink {
    /// A sink for `source` and the receiver the engine reads from.
    pub fn channel(source: &str, capacity: usize) -> (Self, mpsc::Receiver<Observation>) {
        let (tx, rx) = mpsc::channel(capacity);
        (
            Self {
                source: source.to_string(),
                tx,
            },
            rx,
        )
    }

    pub async fn send(&self, mut observation: Observation) -> Result<(), SinkClosed> {
        observation.source.clone_from(&self.source);
        self.tx.send(observation).await.map_err(|_| SinkClosed)
    }
}

/// A crawl that failed as a whole (bad credentials, unreachable host, cancelled).
#[derive(Debug, thiserror::Error)]
pub enum ConnectorError {
    #[error("{0}")]
    Failed(String),
    #[error(transparent)]
    Cancelled(#[from] SinkClosed),
    /// This connector cannot do what was asked (refresh a subset); the caller crawls instead.
    #[error("{0}")]
    Unsupported(String),
}

/// One webhook delivery as it arrived: its headers (names lower-cased) and its raw body, for
/// [`Connector::receive`] to verify and read.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Delivery {
    pub headers: BTreeMap<String, String>,
    pub body: Vec<u8>,
}

impl Delivery {
    /// A header's value; `name` in any case.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .get(&name.to_ascii_lowercase())
            .map(String::as_str)
    }
}

/// What a delivery asks for: the things to read again, and the vendor's id for the delivery
/// (a replay carries the same id, so it is done once).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Received {
    pub delivery_id: Option<String>,
    pub targets: Vec<Target>,
}

/// Why a delivery was not taken. Messages never hold the secret or the body.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EventError {
    /// Unsigned, or not signed with this connector's secret: it changes nothing.
    #[error("the delivery is not signed with this connector's secret")]
    Unauthorized,
    /// Signed, but not a payload this vendor sends.
    #[error("malformed delivery: {0}")]
    Malformed(String),
    /// Signed and well formed, but about nothing this connector reads (another org, an event
    /// it does not use): acknowledged and dropped.
    #[error("ignored: {0}")]
    Ignored(String),
    /// This connector takes no webhooks (none of its kind, or no secret configured).
    #[error("{0}")]
    Unsupported(String),
}

/// One thing at a source that an event named, for [`Connector::refresh`]: the scope it lives
/// in (an org, a group, an account, a cluster) and what it is there, in the connector's own
/// words (`kind` "repository", `key` "payments-api"). An event is a hint, never the truth: the
/// connector reads the target from the source again, with the same mapping as a crawl.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct Target {
    pub scope: String,
    pub kind: String,
    pub key: String,
}

/// Where a watch ([`Connector::watch`]) sends what changed: the scheduler's queue of targets
/// to read again, coalesced with the webhooks'.
#[derive(Clone)]
pub struct HintSink {
    send: std::sync::Arc<dyn Fn(Vec<Target>) -> bool + Send + Sync>,
}

impl HintSink {
    /// A sink that hands each batch of targets to `send`, which answers false once nobody
    /// takes them any more.
    pub fn new(send: impl Fn(Vec<Target>) -> bool + Send + Sync + 'static) -> Self {
        Self {
            send: std::sync::Arc::new(send),
        }
    }

    pub fn send(&self, targets: Vec<Target>) -> Result<(), SinkClosed> {
        if targets.is_empty() || (self.send)(targets) {
            Ok(())
        } else {
            Err(SinkClosed)
        }
    }
}

impl fmt::Debug for HintSink {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("HintSink")
    }
}

/// A figure a connector keeps about its own work (requests sent, 304s, rate-limit headroom),
/// exported on `/metrics` as `surveyor_connector_<name>{connector="<id>"}`.
#[derive(Clone, Debug, PartialEq)]
pub struct ConnectorMetric {
    pub name: &'static str,
    pub help: &'static str,
    pub value: f64,
    /// Only ever grows (a Prometheus counter); otherwise a gauge.
    pub counter: bool,
}

/// A configured source of observations. Implementations live in `connectors/<kind>` and know
/// nothing of the store: they stream what they see and say how complete each scope was.
#[async_trait::async_trait]
pub trait Connector: Send + Sync {
    /// The instance id from configuration (`[[connectors]] id`).
    fn id(&self) -> &str;
    /// The connector kind (`file`, `github`, ...).
    fn kind(&self) -> &'static str;
    /// Crawls the source once. Observations go to `sink`; the outcome lists every scope crawled
    /// and its status. Scopes left out of the outcome are treated as failed.
    async fn crawl(&self, sink: ObservationSink) -> Result<Outcome, ConnectorError>;

    /// Verifies a webhook delivery (its signature, with the connector's secret, in constant
    /// time) and says what it names. Nothing is read from the source here: an event is a
    /// hint, and [`Connector::refresh`] reads the truth. By default connectors take no
    /// webhooks.
    fn receive(&self, delivery: &Delivery) -> Result<Received, EventError> {
        let _ = delivery;
        Err(EventError::Unsupported(format!(
            "the {} connector takes no webhooks",
            self.kind()
        )))
    }

    /// Whether [`Connector::refresh`] can read `targets` alone now (a connector may need a
    /// crawl first, for the account-wide context its mapping uses); a caller crawls whole a
    /// connector that cannot, without asking it to refresh.
    fn refreshes(&self, targets: &[Target]) -> bool {
        let _ = targets;
        false
    }

    /// Whether events are configured for this connector (a webhook secret, a watch): then a
    /// crawl is a sweep, and what it changes is what no event announced.
    fn listens(&self) -> bool {
        false
    }

    /// Follows the source's changes as they happen (a Kubernetes watch) and sends each as
    /// hints to `hints`, until that closes; it resumes after a dropped connection itself. By
    /// default connectors have nothing to watch: [`ConnectorError::Unsupported`] at once.
    async fn watch(&self, hints: HintSink) -> Result<(), ConnectorError> {
        let _ = hints;
        Err(ConnectorError::Unsupported(format!(
            "the {} connector has nothing to watch",
            self.kind()
        )))
    }

    /// Reads only `targets` from the source, mapped as a crawl maps them: observations to
    /// `sink`, each target's scope reported [`Outcome::refreshed`] (or partial, or failed), and
    /// what the source says no longer exists in [`Outcome::gone`]. A connector without events
    /// needs nothing here: the default answers [`ConnectorError::Unsupported`], and the caller
    /// runs a whole crawl instead.
    async fn refresh(
        &self,
        targets: &[Target],
        sink: ObservationSink,
    ) -> Result<Outcome, ConnectorError> {
        let _ = (targets, sink);
        Err(ConnectorError::Unsupported(format!(
            "the {} connector cannot refresh a part of its source",
            self.kind()
        )))
    }

    /// Figures about this connector's work since the process started; none by default.
    fn metrics(&self) -> Vec<ConnectorMetric> {
        Vec::new()
    }

    /// What `surveyor validate` should warn about without failing: a configuration that builds
    /// but will crawl badly (a file pattern that matches nothing, say). May read the source;
    /// nothing by default.
    fn check(&self) -> Vec<String> {
        Vec::new()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn worse_status_wins() {
        let mut o = Outcome::default();
        o.complete("a");
        o.partial("a", "page 3 failed");
        o.complete("a");
        assert_eq!(
            o.status("a"),
            Some(&ScopeStatus::Partial {
                reason: "page 3 failed".into()
            })
        );
        o.failed("a", "401");
        assert!(matches!(o.status("a"), Some(ScopeStatus::Failed { .. })));
    }

    #[tokio::test]
    async fn sink_stamps_the_source() {
        let (sink, mut rx) = ObservationSink::channel("files", 4);
        let e = Entity::new("Component", "default", "x");
        sink.send(Observation::discovered("s", "id1", e))
            .await
            .unwrap();
        assert_eq!(rx.recv().await.unwrap().source, "files");
        drop(rx);
        let e = Entity::new("Component", "default", "y");
        assert_eq!(
            sink.send(Observation::discovered("s", "id2", e)).await,
            Err(SinkClosed)
        );
    }
}
