//! The reconciler's public vocabulary: the options a run takes, the counts and refusals it
//! reports, how it ended, and its errors.

use std::collections::BTreeMap;

use serde::Serialize;
use surveyor_model::{Problem, ScopeStatus};
use surveyor_store::{ChangeOp, StoreError};

/// Knobs for one reconcile.
#[derive(Debug, Clone)]
pub struct ReconcileOptions {
    /// Refuse a scope's deletions when they exceed this share of its live observations of a kind.
    pub max_delete_ratio: f64,
    /// Deleting at most this many of one kind in one scope never trips the guard: in a scope of
    /// three workloads, one going is a third, and that is no mass deletion.
    pub mass_delete_floor: u64,
    /// Override the guard for this run.
    pub allow_mass_delete: bool,
    /// Compute everything, write nothing.
    pub dry_run: bool,
    /// Source id -> position in the configuration; earlier sources win merges.
    pub source_priority: BTreeMap<String, usize>,
    /// `[[identity]]` rules applied to every observation before it is merged.
    pub identity: std::sync::Arc<crate::identity::Identity>,
    /// How each field of a merged entity is decided (`[merge]`).
    pub merge: std::sync::Arc<crate::merge::MergePolicy>,
}

impl Default for ReconcileOptions {
    fn default() -> Self {
        Self {
            max_delete_ratio: 0.2,
            mass_delete_floor: 2,
            allow_mass_delete: false,
            dry_run: false,
            source_priority: BTreeMap::new(),
            identity: Default::default(),
            merge: Default::default(),
        }
    }
}

/// Entity-level changes and observation counts of a run (or of one scope).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Counts {
    pub created: u64,
    pub updated: u64,
    pub renamed: u64,
    pub deleted: u64,
    pub restored: u64,
    /// Observations seen exactly as stored.
    pub unchanged: u64,
    /// Observations seen in this crawl.
    pub observed: u64,
}

impl Counts {
    pub(super) fn add(&mut self, other: &Counts) {
        self.created += other.created;
        self.updated += other.updated;
        self.renamed += other.renamed;
        self.deleted += other.deleted;
        self.restored += other.restored;
        self.unchanged += other.unchanged;
        self.observed += other.observed;
    }

    pub(super) fn count(&mut self, op: ChangeOp) {
        match op {
            ChangeOp::Created => self.created += 1,
            ChangeOp::Updated => self.updated += 1,
            ChangeOp::Renamed => self.renamed += 1,
            ChangeOp::Deleted => self.deleted += 1,
            ChangeOp::Restored => self.restored += 1,
        }
    }

    /// Entity-level changes in total.
    pub fn changes(&self) -> u64 {
        self.created + self.updated + self.renamed + self.deleted + self.restored
    }
}

/// A deletion the guard refused.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Refusal {
    pub kind: String,
    pub live: u64,
    pub would_delete: u64,
    pub max_ratio: f64,
}

/// What happened to one scope.
#[derive(Debug, Clone, Serialize)]
pub struct ScopeReport {
    pub scope: String,
    pub status: ScopeStatus,
    pub counts: Counts,
    /// Deletions the guard refused (empty when none were).
    pub refused: Vec<Refusal>,
}

/// How a run ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum RunStatus {
    /// Every scope complete, nothing refused.
    Succeeded,
    /// Some scope was not crawled completely; nothing was deleted there.
    Partial,
    /// The connector failed, or the deletion guard refused.
    Failed,
}

impl RunStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Succeeded => "succeeded",
            Self::Partial => "partial",
            Self::Failed => "failed",
        }
    }
}

/// The result of one connector run.
#[derive(Debug, Clone, Serialize)]
pub struct RunReport {
    pub run_id: String,
    pub connector: String,
    pub dry_run: bool,
    pub status: RunStatus,
    pub counts: Counts,
    pub scopes: Vec<ScopeReport>,
    pub problems: Vec<Problem>,
    /// Things worth a look that do not make a scope partial (entities of non-Backstage kinds).
    pub warnings: Vec<String>,
    pub error: Option<String>,
}

/// At most this many warnings are kept per run; the rest are counted.
pub(super) const MAX_WARNINGS: usize = 20;

impl RunReport {
    pub fn refused(&self) -> bool {
        self.scopes.iter().any(|s| !s.refused.is_empty())
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ReconcileError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("stored observation {source_id}/{external_id} is unreadable: {detail}")]
    CorruptObservation {
        source_id: String,
        external_id: String,
        detail: String,
    },
}
