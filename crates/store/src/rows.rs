//! Plain row types the store reads and writes. JSON columns travel as canonical JSON text.

use chrono::{DateTime, Utc};
use serde::Serialize;

/// What the reconciler needs to know about one stored observation to diff a crawl against it.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct ObservationIndexRow {
    pub external_id: String,
    pub scope: String,
    pub entity_ref: String,
    pub kind: String,
    pub hash: String,
    pub live: bool,
}

/// An observation to insert or update (it becomes live again if it was deleted).
#[derive(Debug, Clone)]
pub struct ObservationWrite {
    pub source: String,
    pub external_id: String,
    pub scope: String,
    pub entity_ref: String,
    pub kind: String,
    pub declared: bool,
    pub hash: String,
    pub body: String,
    pub run_id: String,
}

/// A live observation of some entity ref, as the merge step sees it.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct LiveObservationRow {
    pub source: String,
    pub external_id: String,
    pub entity_ref: String,
    pub declared: bool,
    pub hash: String,
}

/// An entity row (live or tombstone).
#[derive(Debug, Clone, Serialize, sqlx::FromRow)]
pub struct EntityRow {
    pub uid: String,
    /// Lower-cased `kind:namespace/name`: the catalog key.
    pub entity_ref: String,
    /// The ref as displayed (`component:default/Payments-API`).
    pub display_ref: String,
    pub kind: String,
    pub namespace: String,
    pub name: String,
    pub body: String,
    pub hash: String,
    pub sources: String,
    pub meta_hash: String,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    pub deleted_at: Option<DateTime<Utc>>,
    pub deleted_run: Option<String>,
}

impl EntityRow {
    pub fn is_live(&self) -> bool {
        self.deleted_at.is_none()
    }
}

/// A relation row; every relation is stored from both ends.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, sqlx::FromRow)]
pub struct RelationRow {
    pub origin_ref: String,
    pub source_ref: String,
    #[serde(rename = "type")]
    #[sqlx(rename = "type")]
    pub kind: String,
    pub target_ref: String,
    pub target_display: String,
}

/// The kind of a change in the catalog's history.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum ChangeOp {
    Created,
    Updated,
    Renamed,
    Deleted,
    Restored,
}

impl ChangeOp {
    pub const ALL: [ChangeOp; 5] = [
        Self::Created,
        Self::Updated,
        Self::Renamed,
        Self::Deleted,
        Self::Restored,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Created => "created",
            Self::Updated => "updated",
            Self::Renamed => "renamed",
            Self::Deleted => "deleted",
            Self::Restored => "restored",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|op| op.as_str() == s)
    }
}

impl std::fmt::Display for ChangeOp {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A change to write.
#[derive(Debug, Clone)]
pub struct ChangeWrite {
    pub run_id: String,
    pub source: String,
    pub entity_uid: String,
    pub entity_ref: String,
    pub previous_ref: Option<String>,
    pub op: ChangeOp,
    /// RFC 6902 patch from the previous body to the new one, as JSON text.
    pub patch: String,
}

/// A change as read back from the history.
#[derive(Debug, Clone, Serialize)]
pub struct ChangeRow {
    pub seq: i64,
    pub at: DateTime<Utc>,
    pub run_id: String,
    pub source: String,
    pub entity_uid: String,
    pub entity_ref: String,
    pub previous_ref: Option<String>,
    pub op: ChangeOp,
    pub patch: serde_json::Value,
}

/// A crawl as recorded.
#[derive(Debug, Clone, Serialize)]
pub struct RunRow {
    pub id: String,
    pub connector: String,
    pub started_at: DateTime<Utc>,
    pub finished_at: Option<DateTime<Utc>>,
    pub status: String,
    pub outcome: Option<serde_json::Value>,
    pub counts: Option<serde_json::Value>,
    pub error: Option<String>,
}

/// Who holds (or last held) a connector's lease.
#[derive(Debug, Clone, Serialize)]
pub struct LeaseRow {
    /// The connector's id.
    pub name: String,
    /// The process that took it (host and pid).
    pub holder: String,
    /// The scheduled time of the run it was taken for (the current time for a manual run).
    pub tick: DateTime<Utc>,
    /// When the holder took it; `None` for a lease taken before this was recorded.
    pub taken_at: Option<DateTime<Utc>>,
    /// Renewed while the run goes on; past it, another process may take the lease.
    pub expires_at: DateTime<Utc>,
}

/// A deletion the guard refused.
#[derive(Debug, Clone, Serialize)]
pub struct RefusalRow {
    pub run_id: String,
    pub source: String,
    pub scope: String,
    pub kind: String,
    pub live: i64,
    pub would_delete: i64,
    pub max_ratio: f64,
}
