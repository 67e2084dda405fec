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

/// What a run (or one scope of it) did, as two sets that each add up: what the source sent
/// against what it sent before, and what that did to the catalog's entities.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Counts {
    pub observations: ObservationCounts,
    pub entities: EntityCounts,
    /// In a sweep (a crawl of a connector with events, after its first): what the sweep found
    /// new, changed or gone at the source, which no event announced — events lost, or changes
    /// the source sends no event for. `None` for refreshes and connectors without events.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub unannounced: Option<u64>,
}

impl Counts {
    /// Adds another's counts (a scope's to its run's).
    pub fn add(&mut self, other: &Counts) {
        self.observations.add(&other.observations);
        self.entities.add(&other.entities);
        if let Some(n) = other.unannounced {
            *self.unannounced.get_or_insert(0) += n;
        }
    }
}

/// The source's observations: `observed` = `new` + `changed` + `unchanged` + `rejected`;
/// `gone` were live before and were not sent (retracted only where the scope was complete).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct ObservationCounts {
    /// Sent by the source in this crawl.
    pub observed: u64,
    /// Not live before (first seen, or seen again after they went).
    pub new: u64,
    pub changed: u64,
    /// Exactly as stored.
    pub unchanged: u64,
    /// Not taken: a problem says why (an id sent twice, a name that is not valid).
    pub rejected: u64,
    /// Retracted: live before, not sent now, in a complete scope.
    pub gone: u64,
}

impl ObservationCounts {
    fn add(&mut self, o: &ObservationCounts) {
        self.observed += o.observed;
        self.new += o.new;
        self.changed += o.changed;
        self.unchanged += o.unchanged;
        self.rejected += o.rejected;
        self.gone += o.gone;
    }
}

/// The catalog's entities the observations touched, each once, by what happened to it:
/// `created` + `updated` + `renamed` + `deleted` + `restored` + `unchanged` = entities touched.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct EntityCounts {
    pub created: u64,
    pub updated: u64,
    pub renamed: u64,
    pub deleted: u64,
    pub restored: u64,
    /// Described by this run's observations, and not changed.
    pub unchanged: u64,
}

impl EntityCounts {
    fn add(&mut self, o: &EntityCounts) {
        self.created += o.created;
        self.updated += o.updated;
        self.renamed += o.renamed;
        self.deleted += o.deleted;
        self.restored += o.restored;
        self.unchanged += o.unchanged;
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

    /// Entities changed, in total.
    pub fn changes(&self) -> u64 {
        self.created + self.updated + self.renamed + self.deleted + self.restored
    }

    /// Entities touched: what the counts add up to.
    pub fn touched(&self) -> u64 {
        self.changes() + self.unchanged
    }

    /// The entity counts of a sync of several runs, each entity once by what the sync did to
    /// it: one created by the first run and merged into by the next is created, not updated.
    pub fn of_sync<'r>(reports: impl IntoIterator<Item = &'r RunReport>) -> Self {
        let mut effects: std::collections::HashMap<&str, Effect> = Default::default();
        let mut changed_refs: std::collections::HashSet<&str> = Default::default();
        let mut unchanged: std::collections::HashSet<&str> = Default::default();
        for r in reports {
            for (uid, entity_ref, effect) in &r.effects {
                changed_refs.insert(entity_ref.as_str());
                effects
                    .entry(uid.as_str())
                    .and_modify(|e| e.and_then(effect))
                    .or_insert(*effect);
            }
            unchanged.extend(r.unchanged_refs.iter().map(String::as_str));
        }
        let mut out = EntityCounts::default();
        for op in effects.values().filter_map(Effect::net) {
            out.count(op);
        }
        out.unchanged = unchanged.difference(&changed_refs).count() as u64;
        out
    }
}

/// Each entity a scope changed, by uid: its ref and what happened to it.
pub(super) type Effects = std::collections::HashMap<String, (String, Effect)>;

/// What happened to one entity across several changes (in a run, or a sync of runs).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Effect {
    first: ChangeOp,
    last: ChangeOp,
    renamed: bool,
}

impl Effect {
    pub fn new(op: ChangeOp) -> Self {
        Self {
            first: op,
            last: op,
            renamed: op == ChangeOp::Renamed,
        }
    }

    pub fn then(&mut self, op: ChangeOp) {
        self.last = op;
        self.renamed |= op == ChangeOp::Renamed;
    }

    /// Follows this effect with a later one (of a later run).
    pub fn and_then(&mut self, later: &Effect) {
        self.last = later.last;
        self.renamed |= later.renamed;
    }

    /// The one change it counts as, comparing the catalog before and after: none if it was
    /// not live before and is not after; made live (created, restored) if it was; gone if it
    /// ended deleted; else renamed if it was; else updated.
    pub fn net(&self) -> Option<ChangeOp> {
        Some(match (self.first, self.last) {
            (ChangeOp::Created | ChangeOp::Restored, ChangeOp::Deleted) => return None,
            (ChangeOp::Created | ChangeOp::Restored, _) => self.first,
            (_, ChangeOp::Deleted) => ChangeOp::Deleted,
            _ if self.renamed => ChangeOp::Renamed,
            _ => ChangeOp::Updated,
        })
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
    /// Each entity this run changed (uid, ref) and what happened to it, for a sync's totals
    /// ([`EntityCounts::of_sync`]).
    #[serde(skip)]
    pub effects: Vec<(String, String, Effect)>,
    /// Entities this run's observations describe that it did not change (refs).
    #[serde(skip)]
    pub unchanged_refs: Vec<String>,
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
    /// The task writing a scope's transaction ended without finishing (it panicked).
    #[error("the catalog writer stopped: {0}")]
    Writer(String),
}
