//! The port between whatever runs the connectors (the scheduler in `surveyor serve`, the demo's
//! own loop) and the HTTP API that shows them and triggers runs. The API depends on this trait,
//! never on the engine; the engine implements it for its scheduler.

use chrono::{DateTime, Utc};
use serde::Serialize;

use crate::observation::{ConnectorMetric, Delivery, EventError};

/// A connector as `/api/v1/connectors` shows it. The `last*` fields describe its latest run by
/// any process (this one's scheduler, another replica, a `surveyor sync`), from the runs table
/// when that has a newer run than this process saw.
#[derive(Debug, Clone, Serialize, Default, PartialEq)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase")]
pub struct ConnectorView {
    pub id: String,
    pub kind: String,
    #[cfg_attr(feature = "openapi", schema(example = "0 * * * *"))]
    pub schedule: Option<String>,
    pub next_run: Option<DateTime<Utc>>,
    pub running: bool,
    pub last_started: Option<DateTime<Utc>>,
    /// When the latest run ended (`null` while it runs, or when it never recorded an end).
    pub last_finished: Option<DateTime<Utc>>,
    /// `succeeded`, `partial`, `failed`, `running`, `abandoned`.
    #[cfg_attr(feature = "openapi", schema(example = "succeeded"))]
    pub last_status: Option<String>,
    pub last_error: Option<String>,
    /// The connector's lease as the database records it: who runs it (on any replica) and
    /// since when. Absent when it has never run under a lease.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub lease: Option<LeaseView>,
}

/// Who holds a connector's lease, read from the database (so every replica shows the same).
#[derive(Debug, Clone, Serialize, PartialEq)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase")]
pub struct LeaseView {
    /// The process (host:pid) that took it last.
    pub holder: String,
    /// When it took it.
    pub since: Option<DateTime<Utc>>,
    /// Renewed every third of its time to live while the run goes on; past it, another
    /// replica may take over.
    pub expires_at: DateTime<Utc>,
    /// Whether it is held now (`expiresAt` is in the future).
    pub held: bool,
}

/// Why a trigger was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TriggerRefusal {
    #[error("no connector {0:?}")]
    Unknown(String),
    #[error("connector {0:?} is running now")]
    Busy(String),
    #[error("the scheduler is shutting down")]
    Stopped,
}

/// What a webhook delivery led to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Accepted {
    /// Its targets are queued for a refresh (coalesced with others waiting).
    Queued { targets: usize },
    /// The same delivery was taken before (a vendor's retry or a replay): nothing more to do.
    Duplicate,
}

/// Why a webhook delivery was not taken.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DeliveryRefusal {
    #[error("no connector {0:?}")]
    Unknown(String),
    #[error(transparent)]
    Event(#[from] EventError),
    #[error("the scheduler is shutting down")]
    Stopped,
}

/// What runs the connectors (the scheduler, in `surveyor serve`); absent for a read-only API.
pub trait Control: Send + Sync {
    fn connectors(&self) -> Vec<ConnectorView>;
    fn trigger(&self, id: &str) -> Result<(), TriggerRefusal>;
    /// Hands a webhook delivery to connector `id`, which verifies it and names what to read
    /// again. None are taken by default.
    fn deliver(&self, id: &str, delivery: Delivery) -> Result<Accepted, DeliveryRefusal> {
        let _ = delivery;
        Err(DeliveryRefusal::Unknown(id.to_string()))
    }
    /// Each connector's own figures, for `/metrics`.
    fn connector_metrics(&self) -> Vec<(String, Vec<ConnectorMetric>)> {
        Vec::new()
    }
}
