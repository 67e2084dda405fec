//! The port between whatever runs the connectors (the scheduler in `surveyor serve`, the demo's
//! own loop) and the HTTP API that shows them and triggers runs. The API depends on this trait,
//! never on the engine; the engine implements it for its scheduler.

use chrono::{DateTime, Utc};
use serde::Serialize;

use crate::observation::ConnectorMetric;

/// A connector as `/api/v1/connectors` shows it.
#[derive(Debug, Clone, Serialize, Default, PartialEq)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase")]
pub struct ConnectorView {
    pub id: String,
    pub kind: String,
    pub schedule: Option<String>,
    pub next_run: Option<DateTime<Utc>>,
    pub running: bool,
    pub last_started: Option<DateTime<Utc>>,
    pub last_status: Option<String>,
    pub last_error: Option<String>,
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

/// What runs the connectors (the scheduler, in `surveyor serve`); absent for a read-only API.
pub trait Control: Send + Sync {
    fn connectors(&self) -> Vec<ConnectorView>;
    fn trigger(&self, id: &str) -> Result<(), TriggerRefusal>;
    /// Each connector's own figures, for `/metrics`.
    fn connector_metrics(&self) -> Vec<(String, Vec<ConnectorMetric>)> {
        Vec::new()
    }
}
