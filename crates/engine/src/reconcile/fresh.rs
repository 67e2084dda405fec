//! A first load into a catalog that holds nothing but this run's own rows: each batch is merged
//! in memory and queued for the writer task, with nothing read back.
//!
//! Reading back could only find what the run itself wrote, so it holds while no two
//! observations of the run share a ref or an identity key, none carries an alias, and nothing
//! is deleted; the first batch that breaks it ends it, and the run reads from then on, as
//! every other run does. Anything another writer did between the run's scope transactions
//! (another source's observations, a change row the run did not write) ends it too.

use std::collections::{BTreeMap, HashSet};
use std::hash::{BuildHasher, RandomState};

use surveyor_store::{ChangeOp, Store, Writes};

use super::keys::key_rows;
use super::pipe::Job;
use super::report::Effects;
use super::scope::{ScopeJob, keep_name, record};
use super::staged::Pending;
use crate::merge::{Contribution, MergedEntity, combine};

/// What a fresh load has written so far, to tell whether the next batch meets any of it.
#[derive(Default)]
pub(super) struct FreshLoad {
    /// The change log's newest row when the run's last scope committed: another writer between
    /// two of the run's transactions moves it. `None` until the run first commits: until then
    /// the catalog must still be empty.
    pub(super) last_seq: Option<i64>,
    /// Two observations received in this run name the same ref.
    pub(super) repeated_ref: bool,
    /// Hashes of the identity keys written (a collision only costs the fresh path).
    keys: HashSet<u64>,
    hasher: RandomState,
}

impl FreshLoad {
    /// Whether `writes` can be merged without reading: all new, no alias, no ref met before,
    /// no identity key another observation of the run holds. Notes their keys when they can.
    pub(super) fn admits(&mut self, writes: &[Pending]) -> bool {
        if self.repeated_ref {
            return false;
        }
        let mut batch: HashSet<u64> = HashSet::new();
        for p in writes {
            if p.previous.is_some() || p.alias.is_some() {
                return false;
            }
            for k in &p.keys {
                let h = self.hasher.hash_one(k);
                if self.keys.contains(&h) || !batch.insert(h) {
                    return false;
                }
            }
        }
        self.keys.extend(batch);
        true
    }
}

impl ScopeJob<'_> {
    /// A fresh batch: its entities merged and its statements built here, to be run as one job.
    pub(super) fn fresh_batch(
        &self,
        store: &Store,
        scope: &str,
        writes: Vec<Pending>,
        effects: &mut Effects,
    ) -> Job {
        let observations: Vec<_> = writes
            .iter()
            .map(|p| self.observation_row(scope, p))
            .collect();
        let keys = key_rows(&self.source, &writes);
        // Refs in key order, as the reading path merges them.
        let mut by_ref: BTreeMap<String, Vec<Contribution>> = BTreeMap::new();
        for p in writes {
            by_ref
                .entry(p.observed.entity_ref.key())
                .or_default()
                .push(Contribution {
                    source: self.source.clone(),
                    external_id: p.external_id,
                    entity: p.observed,
                });
        }
        let mut entities = Vec::with_capacity(by_ref.len());
        let mut relations = Vec::new();
        let mut changes = Vec::with_capacity(by_ref.len());
        for (key, parts) in by_ref {
            let Some((merged, claims)) =
                combine(parts, &self.options.source_priority, &self.options.merge)
            else {
                continue;
            };
            let m = MergedEntity::new(keep_name(merged, &key), claims);
            let uid = uuid::Uuid::now_v7().to_string();
            entities.push(m.to_write(&uid));
            record(effects, &uid, &key, ChangeOp::Created);
            let patch = m.created_patch();
            changes.push(self.change(uid, &m, ChangeOp::Created, patch));
            relations.extend(m.relation_rows);
        }
        // The values are bound here, on the engine's side: the writer task only runs them.
        let mut built = Writes::new(store, self.now);
        built
            .observations(&observations)
            .identity_keys(&keys)
            .entities(&entities)
            .relations(&relations)
            .changes(&changes);
        Box::new(move |tx| Box::pin(tx.run(built)))
    }
}
