//! A scope's transaction: writes a batch of changed observations, deletes what a complete
//! crawl no longer saw, and recomputes every entity they touch (merge, renames, tombstones,
//! relations, change rows).

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};

use chrono::{DateTime, Utc};
use serde_json::Value;
use surveyor_store::{
    ChangeOp, ChangeWrite, EntityRow, EntityWrite, ObservationIndexRow, ObservationWrite,
    RefusalRow, StoreTx,
};

use super::keys::resolve_identity;
use super::pipe::{Job, TxSlot};
use super::report::{Effect, Effects, ReconcileError, ReconcileOptions, Refusal};
use super::staged::Pending;
use crate::merge::{Contribution, MergedEntity, ObservedEntity, SourceClaim, combine};

/// Entity refs processed per read-compute-write round inside a scope transaction.
const REF_BATCH: usize = 1000;

/// Observation rows per insert statement.
const OBSERVATION_ROWS: usize = 500;

/// Writes one batch of a scope's changes inside its transaction.
pub(super) struct ScopeJob<'a> {
    pub(super) source: String,
    pub(super) run_id: String,
    pub(super) now: DateTime<Utc>,
    pub(super) options: &'a ReconcileOptions,
}

/// An external id that now names a different ref than before.
struct RenamePair {
    old: String,
    new: String,
    source: String,
    external_id: String,
}

/// One batch's reading (the renames and absorbed refs of the write it belongs to, the written
/// observations not yet merged) and its tally (each entity's effect, deleted kinds).
struct Batch<'b> {
    rename_pairs: &'b [RenamePair],
    absorbed: &'b HashSet<String>,
    in_memory: HashMap<String, ObservedEntity>,
    effects: &'b mut Effects,
    deleted_kinds: &'b mut BTreeMap<String, u64>,
}

/// What a round read for its merge: live observations by ref as (source, external id,
/// declared), the bodies read back, and aliases.
struct Parts {
    by_ref: HashMap<String, Vec<(String, String, bool)>>,
    fetched: HashMap<(String, String), ObservedEntity>,
    aliases: Aliases,
}

/// The aliases of the refs `asked` (a ref missing from `to` has none).
struct Aliases {
    asked: HashSet<String>,
    to: HashMap<String, String>,
}

/// What the catalog should hold for a ref after this batch's writes.
enum Desired {
    Absent,
    Present(Box<MergedEntity>),
}

impl ScopeJob<'_> {
    /// The row that stores `p`.
    pub(super) fn observation_row(&self, scope: &str, p: &Pending) -> ObservationWrite {
        ObservationWrite {
            source: self.source.clone(),
            external_id: p.external_id.clone(),
            scope: scope.to_string(),
            entity_ref: p.observed.entity_ref.key(),
            kind: p.observed.kind.clone(),
            declared: p.observed.declared,
            hash: p.obs_hash.clone(),
            body: p.body.clone(),
            run_id: self.run_id.clone(),
        }
    }

    /// The change row of an entity that is now `m`.
    pub(super) fn change(
        &self,
        uid: String,
        m: &MergedEntity,
        op: ChangeOp,
        patch: String,
    ) -> ChangeWrite {
        ChangeWrite {
            run_id: self.run_id.clone(),
            source: self.source.clone(),
            entity_uid: uid,
            entity_ref: m.winner.entity_ref.to_string(),
            previous_ref: None,
            op,
            patch,
        }
    }

    pub(super) async fn record_refusals(
        &self,
        tx: &mut StoreTx,
        scope: &str,
        refused: &[Refusal],
    ) -> Result<(), ReconcileError> {
        for r in refused {
            tx.insert_refusal(
                &RefusalRow {
                    run_id: self.run_id.clone(),
                    source: self.source.clone(),
                    scope: scope.to_string(),
                    kind: r.kind.clone(),
                    live: r.live as i64,
                    would_delete: r.would_delete as i64,
                    max_ratio: r.max_ratio,
                },
                self.now,
            )
            .await?;
        }
        Ok(())
    }

    /// Writes observations, then recomputes every entity they (or the deletions) touch.
    pub(super) async fn apply(
        &self,
        slot: &mut TxSlot,
        scope: &str,
        writes: Vec<Pending>,
        deletions: Vec<ObservationIndexRow>,
        effects: &mut Effects,
        deleted_kinds: &mut BTreeMap<String, u64>,
    ) -> Result<(), ReconcileError> {
        if writes.is_empty() && deletions.is_empty() {
            return Ok(());
        }
        // Observations and identity keys: the writes a batch may still hold back do not touch
        // them.
        let Some(tx) = slot.ahead().await? else {
            return Ok(());
        };
        // 1. Observations.
        for chunk in writes.chunks(OBSERVATION_ROWS) {
            let rows: Vec<ObservationWrite> = chunk
                .iter()
                .map(|p| self.observation_row(scope, p))
                .collect();
            tx.upsert_observations(&rows).await?;
        }
        let deleted_ids: Vec<String> = deletions.iter().map(|d| d.external_id.clone()).collect();
        if !deleted_ids.is_empty() {
            tx.delete_observations(&self.source, &deleted_ids, &self.run_id, self.now)
                .await?;
        }
        let (refilings, alias_names) = resolve_identity(
            tx,
            &self.source,
            &self.options.source_priority,
            &writes,
            &deleted_ids,
        )
        .await?;

        // 2. Which entity refs may have changed, and which pairs may be renames.
        let mut affected: BTreeSet<String> = BTreeSet::new();
        let mut rename_pairs: Vec<RenamePair> = Vec::new();
        // Refs emptied because their observations joined another entity: not a loss the guard
        // should count.
        let mut absorbed: HashSet<String> = HashSet::new();
        let mut filed_now: HashMap<&str, &str> = HashMap::new();
        for r in &refilings {
            if r.source == self.source {
                filed_now.insert(r.external_id.as_str(), r.to.as_str());
            }
        }
        for p in &writes {
            let own_ref = p.observed.entity_ref.key();
            let new_ref = filed_now
                .get(p.external_id.as_str())
                .map_or(own_ref.clone(), |r| r.to_string());
            if let Some(prev) = &p.previous {
                if prev.live && prev.entity_ref != new_ref {
                    rename_pairs.push(RenamePair {
                        old: prev.entity_ref.clone(),
                        new: new_ref.clone(),
                        source: self.source.clone(),
                        external_id: p.external_id.clone(),
                    });
                    if new_ref != own_ref {
                        absorbed.insert(prev.entity_ref.clone());
                    }
                }
                affected.insert(prev.entity_ref.clone());
            }
            affected.insert(own_ref);
            affected.insert(new_ref);
        }
        let written: HashSet<&str> = writes.iter().map(|p| p.external_id.as_str()).collect();
        for r in &refilings {
            if r.source == self.source && written.contains(r.external_id.as_str()) {
                continue;
            }
            rename_pairs.push(RenamePair {
                old: r.from.clone(),
                new: r.to.clone(),
                source: r.source.clone(),
                external_id: r.external_id.clone(),
            });
            absorbed.insert(r.from.clone());
            affected.insert(r.from.clone());
            affected.insert(r.to.clone());
        }
        if !refilings.is_empty() || !alias_names.is_empty() {
            // Entities that point at a name which just became (or stopped being) an alias.
            let names: BTreeSet<String> = refilings
                .iter()
                .flat_map(|r| [r.own_ref.clone(), r.from.clone(), r.to.clone()])
                .chain(alias_names)
                .collect();
            let names: Vec<String> = names.into_iter().collect();
            // Relations are what held writes replace: they run first.
            if let Some(tx) = slot.here().await? {
                affected.extend(tx.relation_origins_targeting(&names).await?);
            }
        }
        for d in &deletions {
            affected.insert(d.entity_ref.clone());
        }
        // Each written observation is needed at most once, as its ref's winner: move, not clone.
        let in_memory: HashMap<String, ObservedEntity> = writes
            .into_iter()
            .map(|p| (p.external_id, p.observed))
            .collect();

        // 3. Rename candidates first, every pair whole inside one batch (a chain of renames
        //    stays together when it fits); then the rest.
        let mut batches: Vec<Vec<String>> = Vec::new();
        let mut batch: Vec<String> = Vec::new();
        for pair in &rename_pairs {
            if batch.len() + 2 > REF_BATCH {
                batches.push(std::mem::take(&mut batch));
            }
            for r in [&pair.old, &pair.new] {
                if affected.remove(r) {
                    batch.push(r.clone());
                }
            }
        }
        if !batch.is_empty() {
            batches.push(batch);
        }
        let rest: Vec<String> = affected.into_iter().collect();
        batches.extend(rest.chunks(REF_BATCH).map(<[String]>::to_vec));
        let mut state = Batch {
            rename_pairs: &rename_pairs,
            absorbed: &absorbed,
            in_memory,
            effects,
            deleted_kinds,
        };
        for refs in batches {
            self.apply_batch(slot, refs, &mut state).await?;
        }
        Ok(())
    }

    /// One round: reads what the batch's refs need (while the previous batch's writes are
    /// held back, unless they touch these refs), lets the writer run those, then merges and
    /// holds this batch's writes back in turn.
    async fn apply_batch(
        &self,
        slot: &mut TxSlot,
        refs: Vec<String>,
        batch: &mut Batch<'_>,
    ) -> Result<(), ReconcileError> {
        let Some(tx) = slot.reading(&refs).await? else {
            return Ok(());
        };
        let (parts, current) = self.read(tx, &refs, &batch.in_memory).await?;
        slot.release().await?;
        let desired = self
            .desired(slot, &refs, parts, &mut batch.in_memory)
            .await?;
        let Batch {
            rename_pairs,
            absorbed,
            effects,
            deleted_kinds,
            ..
        } = batch;
        let mut changes: Vec<ChangeWrite> = Vec::new();
        let in_batch: HashSet<&str> = refs.iter().map(String::as_str).collect();

        // Moves (renames) are written first, in the order found, so a ref is vacated before
        // another entity takes it.
        let mut moves: Vec<EntityWrite> = Vec::new();
        let mut entity_writes: Vec<EntityWrite> = Vec::new();
        let mut tombstones: Vec<String> = Vec::new();
        let mut purged_tombstones: Vec<String> = Vec::new();
        let mut relation_origins: Vec<String> = Vec::new();
        let mut relation_rows = Vec::new();
        // Refs whose live row moved away, and refs that received a moved row.
        let mut vacated: HashSet<&str> = HashSet::new();
        let mut claimed: HashSet<&str> = HashSet::new();

        // A rename moves the entity (its uid, so its history) with the external id that made it:
        // the old ref's row must have been won by that id (or be left with nothing), and the
        // new ref must be free, or
        // freed by another rename in this batch. Passes repeat so chains resolve; cycles
        // (a swap of two names) stay updates.
        let mut pending: Vec<&RenamePair> = rename_pairs
            .iter()
            .filter(|p| in_batch.contains(p.old.as_str()) && in_batch.contains(p.new.as_str()))
            .collect();
        loop {
            let before = pending.len();
            let mut still = Vec::new();
            for pair in pending {
                let (old, new) = (pair.old.as_str(), pair.new.as_str());
                let Some(old_row) = current.get(old).filter(|r| r.is_live()) else {
                    continue;
                };
                // The observation that named the entity carries it; so does any that leaves a
                // name nothing else holds now (a person gone from the source that named them
                // lives on under the name another source gives them).
                let carries = won_by(old_row, &pair.source, &pair.external_id)
                    || matches!(desired.get(old), Some(Desired::Absent));
                if vacated.contains(old) || claimed.contains(new) || !carries {
                    continue;
                }
                let Some(Desired::Present(merged)) = desired.get(new) else {
                    continue;
                };
                let target = current.get(new);
                let free = target.is_none_or(|t| !t.is_live() || vacated.contains(new));
                if !free {
                    still.push(pair);
                    continue;
                }
                if let Some(t) = target.filter(|t| !t.is_live()) {
                    // A tombstone holds the name: it gives way (its history stays in the log).
                    purged_tombstones.push(t.uid.clone());
                }
                vacated.insert(old);
                claimed.insert(new);
                moves.push(merged.to_write(&old_row.uid));
                relation_origins.push(old.to_string());
                relation_rows.extend(merged.relation_rows.iter().cloned());
                record(
                    effects,
                    &old_row.uid,
                    &merged.winner.entity_ref.key(),
                    ChangeOp::Renamed,
                );
                changes.push(ChangeWrite {
                    run_id: self.run_id.clone(),
                    source: self.source.clone(),
                    entity_uid: old_row.uid.clone(),
                    entity_ref: merged.winner.entity_ref.to_string(),
                    previous_ref: Some(old_row.display_ref.clone()),
                    op: ChangeOp::Renamed,
                    patch: diff_patch(&old_row.body, &merged.winner.entity_json),
                });
            }
            if still.len() == before || still.is_empty() {
                break;
            }
            pending = still;
        }

        for key in &refs {
            if claimed.contains(key.as_str()) {
                continue;
            }
            let Some(want) = desired.get(key) else {
                continue;
            };
            // A vacated ref starts afresh: its old row moved with the rename.
            let row = current.get(key).filter(|_| !vacated.contains(key.as_str()));
            let (op, uid, patch) = match (row, want) {
                (None, Desired::Present(m)) => (
                    ChangeOp::Created,
                    uuid::Uuid::now_v7().to_string(),
                    m.created_patch(),
                ),
                (Some(r), Desired::Present(m)) if !r.is_live() => (
                    ChangeOp::Restored,
                    r.uid.clone(),
                    diff_patch(&r.body, &m.winner.entity_json),
                ),
                (Some(r), Desired::Present(m)) => {
                    if r.hash == m.winner.entity_hash {
                        if r.meta_hash != m.meta_hash {
                            // Provenance or relations moved without the entity changing.
                            entity_writes.push(m.to_write(&r.uid));
                            relation_origins.push(key.clone());
                            relation_rows.extend(m.relation_rows.iter().cloned());
                        }
                        continue;
                    }
                    (
                        ChangeOp::Updated,
                        r.uid.clone(),
                        diff_patch(&r.body, &m.winner.entity_json),
                    )
                }
                (Some(r), Desired::Absent) if r.is_live() => {
                    tombstones.push(r.uid.clone());
                    relation_origins.push(key.clone());
                    record(effects, &r.uid, key, ChangeOp::Deleted);
                    if !absorbed.contains(key) {
                        *deleted_kinds.entry(r.kind.clone()).or_default() += 1;
                    }
                    changes.push(ChangeWrite {
                        run_id: self.run_id.clone(),
                        source: self.source.clone(),
                        entity_uid: r.uid.clone(),
                        entity_ref: r.display_ref.clone(),
                        previous_ref: None,
                        op: ChangeOp::Deleted,
                        patch: "[]".into(),
                    });
                    continue;
                }
                (_, Desired::Absent) => continue,
            };
            let Desired::Present(m) = want else { continue };
            entity_writes.push(m.to_write(&uid));
            if row.is_some() {
                // Rows this entity made before; a new entity has none to remove.
                relation_origins.push(key.clone());
            }
            relation_rows.extend(m.relation_rows.iter().cloned());
            record(effects, &uid, key, op);
            changes.push(self.change(uid, m, op, patch));
        }

        let (run_id, now) = (self.run_id.clone(), self.now);
        let job: Job = Box::new(move |tx| {
            Box::pin(async move {
                tx.delete_entity_rows(&purged_tombstones).await?;
                tx.tombstone_entities(&tombstones, &run_id, now).await?;
                tx.upsert_entities(&moves, now).await?;
                tx.upsert_entities(&entity_writes, now).await?;
                if !relation_origins.is_empty() || !relation_rows.is_empty() {
                    tx.replace_relations(&relation_origins, &relation_rows)
                        .await?;
                }
                tx.insert_changes(&changes, now).await
            })
        });
        slot.hold(refs.into_iter().collect(), job).await
    }

    /// What a round reads before it merges: the live observations of its refs (those not in
    /// memory parsed), the aliases their relations may point at, and the refs' entity rows
    /// (live or tombstones).
    async fn read(
        &self,
        tx: &mut StoreTx,
        refs: &[String],
        in_memory: &HashMap<String, ObservedEntity>,
    ) -> Result<(Parts, HashMap<String, EntityRow>), ReconcileError> {
        let mut by_ref: HashMap<String, Vec<(String, String, bool)>> = HashMap::new();
        for o in tx.live_observations(refs).await? {
            by_ref
                .entry(o.entity_ref)
                .or_default()
                .push((o.source, o.external_id, o.declared));
        }
        // Every relation target of every part: the merge's relations come from these (the
        // few that do not are asked for after the merge).
        let mut targets: BTreeSet<String> = BTreeSet::new();
        let mut target_all = |e: &ObservedEntity| {
            targets.extend(e.relations.iter().map(|r| r.target.key()));
        };
        // Observations not in memory are read back, grouped by source. A ref with one source
        // (most of them) costs what it did; a ref several sources describe reads them all.
        let mut to_fetch: BTreeMap<String, Vec<String>> = BTreeMap::new();
        for (source, ext, _) in by_ref.values().flatten() {
            match in_memory.get(ext.as_str()) {
                Some(e) if *source == self.source => target_all(e),
                _ => to_fetch
                    .entry(source.clone())
                    .or_default()
                    .push(ext.clone()),
            }
        }
        let mut fetched: HashMap<(String, String), ObservedEntity> = HashMap::new();
        for (source, ids) in to_fetch {
            for (ext, body) in tx.observation_bodies(&source, &ids).await? {
                let parsed = ObservedEntity::from_body(&body).map_err(|detail| {
                    ReconcileError::CorruptObservation {
                        source_id: source.clone(),
                        external_id: ext.clone(),
                        detail,
                    }
                })?;
                target_all(&parsed);
                fetched.insert((source.clone(), ext), parsed);
            }
        }
        let targets: Vec<String> = targets.into_iter().collect();
        let aliases = if targets.is_empty() {
            HashMap::new()
        } else {
            tx.identity_aliases(&targets).await?.into_iter().collect()
        };
        let current: HashMap<String, EntityRow> = tx
            .entities_by_refs(refs)
            .await?
            .into_iter()
            .map(|e| (e.entity_ref.clone(), e))
            .collect();
        let parts = Parts {
            by_ref,
            fetched,
            aliases: Aliases {
                asked: targets.into_iter().collect(),
                to: aliases,
            },
        };
        Ok((parts, current))
    }

    /// The merged entity each ref should have, from the live observations of every source.
    async fn desired(
        &self,
        slot: &mut TxSlot,
        refs: &[String],
        parts: Parts,
        in_memory: &mut HashMap<String, ObservedEntity>,
    ) -> Result<HashMap<String, Desired>, ReconcileError> {
        let Parts {
            by_ref,
            mut fetched,
            mut aliases,
        } = parts;
        let mut out = HashMap::with_capacity(refs.len());
        let mut merged_all: Vec<(String, ObservedEntity, Vec<SourceClaim>)> = Vec::new();
        for key in refs {
            let Some(candidates) = by_ref.get(key) else {
                out.insert(key.clone(), Desired::Absent);
                continue;
            };
            let parts: Vec<Contribution> = candidates
                .iter()
                .filter_map(|(source, ext, _)| {
                    let entity = if *source == self.source {
                        in_memory.remove(ext.as_str())
                    } else {
                        None
                    }
                    .or_else(|| fetched.remove(&(source.clone(), ext.clone())))?;
                    Some(Contribution {
                        source: source.clone(),
                        external_id: ext.clone(),
                        entity,
                    })
                })
                .collect();
            match combine(parts, &self.options.source_priority, &self.options.merge) {
                Some((merged, claims)) => {
                    let merged = keep_name(merged, key);
                    merged_all.push((key.clone(), merged, claims))
                }
                None => {
                    out.insert(key.clone(), Desired::Absent);
                }
            }
        }
        // A relation to the own name of an observation that joined another entity points at
        // that entity. Targets no part named (a merge can make one) are asked for now.
        let unasked: BTreeSet<String> = merged_all
            .iter()
            .flat_map(|(_, m, _)| m.relations.iter().map(|r| r.target.key()))
            .filter(|t| !aliases.asked.contains(t))
            .collect();
        if !unasked.is_empty()
            && let Some(tx) = slot.ahead().await?
        {
            let unasked: Vec<String> = unasked.into_iter().collect();
            aliases.to.extend(tx.identity_aliases(&unasked).await?);
        }
        let aliases = aliases.to;
        for (key, mut merged, claims) in merged_all {
            if !aliases.is_empty() {
                let mut moved = false;
                for rel in &mut merged.relations {
                    if let Some(to) = aliases.get(&rel.target.key())
                        && let Ok(target) = to.parse::<surveyor_model::EntityRef>()
                    {
                        rel.target = target;
                        moved = true;
                    }
                }
                if moved {
                    merged.relations.sort();
                    merged.relations.dedup();
                }
            }
            out.insert(
                key,
                Desired::Present(Box::new(MergedEntity::new(merged, claims))),
            );
        }
        Ok(out)
    }
}

/// Notes a change to the entity `uid`, now at `entity_ref`.
pub(super) fn record(effects: &mut Effects, uid: &str, entity_ref: &str, op: ChangeOp) {
    match effects.get_mut(uid) {
        Some((at, effect)) => {
            effect.then(op);
            if at != entity_ref {
                *at = entity_ref.to_string();
            }
        }
        None => {
            effects.insert(uid.to_string(), (entity_ref.to_string(), Effect::new(op)));
        }
    }
}

/// The merged entity under the name it is filed as: observations stay filed under an entity's
/// name after the one that gave it is gone (see `resolve_keys`), and the entity keeps it.
pub(super) fn keep_name(merged: ObservedEntity, key: &str) -> ObservedEntity {
    if merged.entity_ref.key() == key {
        return merged;
    }
    let Ok(place) = key.parse::<surveyor_model::EntityRef>() else {
        return merged;
    };
    let Ok(mut entity) = serde_json::from_str::<surveyor_model::Entity>(&merged.entity_json) else {
        return merged;
    };
    entity.metadata.name = place.name().to_string();
    entity.metadata.namespace = Some(place.namespace().to_string());
    ObservedEntity::new(&entity, &merged.relations, merged.declared).unwrap_or(merged)
}

/// Whether `source`'s `external_id` supplied the entity row's fields.
fn won_by(row: &EntityRow, source: &str, external_id: &str) -> bool {
    serde_json::from_str::<Vec<SourceClaim>>(&row.sources).is_ok_and(|claims| {
        claims
            .iter()
            .any(|c| c.winner && c.source == source && c.external_id == external_id)
    })
}

/// RFC 6902 patch from the stored body to the new one, as JSON text.
fn diff_patch(old: &str, new: &str) -> String {
    let old: Value = serde_json::from_str(old).unwrap_or(Value::Null);
    let new: Value = serde_json::from_str(new).unwrap_or(Value::Null);
    serde_json::to_string(&json_patch::diff(&old, &new)).unwrap_or_else(|_| "[]".into())
}
