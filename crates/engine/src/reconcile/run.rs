//! A run while its crawl streams in: receive, classify against the index, stage changed
//! observations (writing the open scope's in batches), and finish every scope with its
//! deletions, guards and commit.

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};

use surveyor_model::{Observation, Outcome, Problem, ScopeStatus};
use surveyor_store::{ObservationIndexRow, Store};
use tokio::sync::mpsc;
use tracing::Instrument;

use super::fresh::FreshLoad;
use super::guard::{emptied, guard, over_ratio, run_guard};
use super::pipe::TxSlot;
use super::report::{
    Counts, Effect, Effects, EntityCounts, MAX_WARNINGS, ObservationCounts, ReconcileError,
    Refusal, ScopeReport,
};
use super::scope::ScopeJob;
use super::staged::{Known, Pending, Prepared, Previous};

/// Observations changed since the last crawl are written in batches of this many.
const WRITE_BATCH: usize = 1000;

/// The state of one run while the crawl streams in.
///
/// The first scope with a change gets its transaction at once and its changes are written in
/// batches while the crawl goes on (so memory stays flat and the disk works while the source
/// is read). Changes to other scopes wait in memory: each scope has exactly one transaction,
/// and SQLite has one writer. At the end each scope decides its deletions and commits.
pub(super) struct RunState<'a> {
    pub(super) store: &'a Store,
    pub(super) job: ScopeJob<'a>,
    pub(super) known: HashMap<String, Known>,
    /// External ids seen in this crawl that the index did not know.
    pub(super) seen_now: HashSet<String>,
    /// Entity refs this crawl's observations describe (changed or not).
    pub(super) claimed_refs: HashSet<String>,
    pub(super) problems: Vec<Problem>,
    pub(super) warnings: Vec<String>,
    pub(super) unknown_kinds: u64,
    /// What the source sent, per scope (these stay when a refused scope rolls back).
    pub(super) seen: BTreeMap<String, ObservationCounts>,
    /// Each entity a scope changed, by uid: its ref now and what happened (a refused scope's
    /// rollback clears them).
    pub(super) per_scope: BTreeMap<String, Effects>,
    /// Refs of entities each scope's unchanged observations describe.
    pub(super) unchanged_refs: BTreeMap<String, HashSet<String>>,
    /// Every entity a scope of this run changed: (uid, ref, net change), for the run report.
    pub(super) effects: Vec<(String, String, Effect)>,
    /// Every ref a scope of this run left unchanged, for the run report.
    pub(super) unchanged_kept: Vec<String>,
    /// A refresh: only the scopes it reports were read, and the others are left as they are.
    pub(super) narrow: bool,
    /// Entities deleted per scope and kind so far, for the guard at the end of the scope.
    pub(super) deleted_kinds: BTreeMap<String, BTreeMap<String, u64>>,
    /// The open transaction (in a dry run, the one transaction of the whole run).
    pub(super) tx: TxSlot,
    /// A first load that has met nothing stored yet: it merges without reading back.
    pub(super) fresh: Option<FreshLoad>,
    pub(super) open_scope: Option<String>,
    pub(super) batch: Vec<Pending>,
    pub(super) buffered: BTreeMap<String, Vec<Pending>>,
}

impl<'a> RunState<'a> {
    pub(super) fn new(store: &'a Store, job: ScopeJob<'a>, known: HashMap<String, Known>) -> Self {
        Self {
            store,
            job,
            known,
            seen_now: HashSet::new(),
            claimed_refs: HashSet::new(),
            problems: Vec::new(),
            warnings: Vec::new(),
            unknown_kinds: 0,
            seen: BTreeMap::new(),
            per_scope: BTreeMap::new(),
            unchanged_refs: BTreeMap::new(),
            effects: Vec::new(),
            unchanged_kept: Vec::new(),
            narrow: false,
            deleted_kinds: BTreeMap::new(),
            tx: TxSlot::default(),
            fresh: None,
            open_scope: None,
            batch: Vec::new(),
            buffered: BTreeMap::new(),
        }
    }

    /// Rolls back the open transaction, if any: the run failed and writes nothing more.
    pub(super) async fn abort(&mut self) {
        self.tx.discard().await;
    }

    /// Opens a scope's transaction; a fresh load checks that nothing else wrote meanwhile.
    async fn open(&mut self) -> Result<(), ReconcileError> {
        let mut tx = self.store.begin_write().await?;
        if let Some(fresh) = &mut self.fresh {
            // Until the run first commits it finds the catalog empty; after, as the run left it.
            let others = match fresh.last_seq {
                None => tx.holds_anything().await?,
                Some(seq) => {
                    tx.last_change_seq().await? != seq
                        || tx.others_observed(&self.job.source).await?
                }
            };
            if others {
                self.fresh = None;
            }
        }
        self.tx = TxSlot::new(tx);
        Ok(())
    }

    pub(super) async fn receive_all(
        &mut self,
        mut rx: mpsc::Receiver<Observation>,
    ) -> Result<(), ReconcileError> {
        // Serialising and hashing happen on another task, so on a multi-threaded runtime they
        // run while this one waits for the database.
        let (prepared_tx, mut prepared_rx) = mpsc::channel::<Prepared>(2048);
        let identity = std::sync::Arc::clone(&self.job.options.identity);
        let source = self.job.source.clone();
        let preparer = tokio::spawn(async move {
            while let Some(obs) = rx.recv().await {
                if prepared_tx
                    .send(Prepared::new(obs, &identity, &source))
                    .await
                    .is_err()
                {
                    break;
                }
            }
        });
        let result = async {
            while let Some(p) = prepared_rx.recv().await {
                if let Some(p) = self.classify(p) {
                    self.stage(p).await?;
                }
            }
            Ok(())
        }
        .await;
        drop(prepared_rx);
        let _ = preparer.await;
        result
    }

    /// Marks an observation seen; returns it when it differs from what is stored.
    fn classify(&mut self, p: Prepared) -> Option<Pending> {
        seen_in(&mut self.seen, &p.scope).observed += 1;
        let first_time = match self.known.get_mut(&p.external_id) {
            Some(k) => !std::mem::replace(&mut k.seen, true),
            None => self.seen_now.insert(p.external_id.clone()),
        };
        let problem = |field: Option<&str>, message: String| Problem {
            scope: p.scope.clone(),
            location: p.external_id.clone(),
            field: field.map(str::to_string),
            message,
        };
        let rejected = |seen: &mut BTreeMap<String, ObservationCounts>| {
            seen_in(seen, &p.scope).rejected += 1;
        };
        if !first_time {
            rejected(&mut self.seen);
            self.problems.push(problem(
                None,
                "the source reported this external id twice in one crawl; the first was kept"
                    .into(),
            ));
            return None;
        }
        let (observed, body, obs_hash) = match p.content {
            Ok(c) => c,
            Err(message) => {
                rejected(&mut self.seen);
                self.problems.push(problem(Some("metadata.name"), message));
                return None;
            }
        };
        if let Some(kind) = &p.unknown_kind {
            self.unknown_kinds += 1;
            if self.warnings.len() < MAX_WARNINGS {
                self.warnings.push(format!(
                    "{} ({}): kind {kind:?} is not one of Backstage's kinds; kept as data",
                    observed.entity_ref, p.external_id
                ));
            }
        }
        if body.contains("\\u0000") {
            // Postgres cannot store NUL in JSON text, and no real catalog value contains one.
            rejected(&mut self.seen);
            self.problems.push(problem(
                None,
                format!("{}: a value contains a NUL character", observed.entity_ref),
            ));
            return None;
        }
        let key = observed.entity_ref.key();
        if !self.claimed_refs.contains(&key) {
            self.claimed_refs.insert(key);
        } else if let Some(fresh) = &mut self.fresh {
            fresh.repeated_ref = true;
        }
        let known = self.known.get(&p.external_id);
        if let Some(k) = known
            && k.row.live
            && k.row.hash == obs_hash
            && k.row.scope == p.scope
        {
            seen_in(&mut self.seen, &p.scope).unchanged += 1;
            let refs = match self.unchanged_refs.get_mut(p.scope.as_str()) {
                Some(refs) => refs,
                None => self.unchanged_refs.entry(p.scope.clone()).or_default(),
            };
            refs.insert(k.row.entity_ref.clone());
            return None;
        }
        let previous = known.map(|k| Previous {
            entity_ref: k.row.entity_ref.clone(),
            live: k.row.live,
        });
        let counts = seen_in(&mut self.seen, &p.scope);
        if previous.as_ref().is_some_and(|p| p.live) {
            counts.changed += 1;
        } else {
            counts.new += 1;
        }
        Some(Pending {
            scope: p.scope,
            external_id: p.external_id,
            observed,
            body,
            obs_hash,
            previous,
            keys: p.keys,
            alias: p.alias,
        })
    }

    /// Writes a changed observation now (its scope's transaction is open) or keeps it for later.
    async fn stage(&mut self, p: Pending) -> Result<(), ReconcileError> {
        if self.open_scope.is_none() {
            self.open_scope = Some(p.scope.clone());
            if self.tx.is_empty() {
                self.open().await?;
            }
        }
        if self.open_scope.as_deref() == Some(p.scope.as_str()) {
            self.batch.push(p);
            if self.batch.len() >= WRITE_BATCH {
                let batch = std::mem::take(&mut self.batch);
                self.write(batch, Vec::new()).await?;
            }
        } else {
            self.buffered.entry(p.scope.clone()).or_default().push(p);
        }
        Ok(())
    }

    /// Applies writes and deletions of the open scope inside its transaction.
    async fn write(
        &mut self,
        writes: Vec<Pending>,
        deletions: Vec<ObservationIndexRow>,
    ) -> Result<(), ReconcileError> {
        let Some(scope) = self.open_scope.clone() else {
            return Ok(());
        };
        if writes.is_empty() && deletions.is_empty() {
            return Ok(());
        }
        let effects = self.per_scope.entry(scope.clone()).or_default();
        if let Some(fresh) = &mut self.fresh
            && deletions.is_empty()
            && fresh.admits(&writes)
        {
            let job = self.job.fresh_batch(self.store, &scope, writes, effects);
            return self.tx.queue(job).await;
        }
        // Read from here on: what this batch writes is read back by the next.
        self.fresh = None;
        let deleted_kinds = self.deleted_kinds.entry(scope.clone()).or_default();
        self.job
            .apply(
                &mut self.tx,
                &scope,
                writes,
                deletions,
                effects,
                deleted_kinds,
            )
            .await
    }

    /// Ends every scope: writes what waited, deletes where the crawl was complete (and the
    /// guard allows), records refusals, commits each scope's transaction.
    pub(super) async fn finish(
        &mut self,
        outcome: &Outcome,
        error: Option<&str>,
    ) -> Result<Vec<ScopeReport>, ReconcileError> {
        let mut scopes: Vec<String> = Vec::new();
        scopes.extend(self.open_scope.clone());
        let mut rest: BTreeSet<String> = outcome.scopes.keys().cloned().collect();
        rest.extend(self.seen.keys().cloned());
        rest.extend(self.buffered.keys().cloned());
        rest.extend(outcome.gone.keys().cloned());
        // Scopes with live data that a crawl never mentioned are failed, and say so; a refresh
        // reads only the scopes of its targets.
        if !self.narrow {
            rest.extend(
                self.known
                    .values()
                    .filter(|k| k.row.live)
                    .map(|k| k.row.scope.clone()),
            );
        }
        scopes.extend(
            rest.into_iter()
                .filter(|s| Some(s) != self.open_scope.as_ref()),
        );

        let status_of = |scope: &str| match (outcome.status(scope), error) {
            (Some(s), None) => s.clone(),
            (_, Some(e)) => ScopeStatus::Failed {
                reason: e.to_string(),
            },
            // Gone at the source (a deleted namespace): complete, and empty.
            (None, None) if outcome.is_enumerated(scope) => ScopeStatus::Complete,
            (None, None) => ScopeStatus::Failed {
                reason: "the connector did not report this scope".into(),
            },
        };
        // The run as a whole: many small scopes, each under the floor, can add up to a mass
        // deletion (an empty cluster-wide list against a cluster of small namespaces).
        let complete: HashSet<&str> = scopes
            .iter()
            .filter(|s| status_of(s).is_complete())
            .map(String::as_str)
            .collect();
        let run_refusals = run_guard(&self.known, &complete, &self.claimed_refs, self.job.options);

        let mut reports = Vec::new();
        for scope in scopes {
            let status = status_of(&scope);
            // A complete scope deletes what it did not see; any scope but a failed one deletes
            // what the source itself said is gone (and was not seen after all).
            let confirmed = outcome.gone.get(&scope);
            let deletes = |k: &Known| {
                k.row.live
                    && !k.seen
                    && k.row.scope == scope
                    && (status.is_complete()
                        || (!matches!(status, ScopeStatus::Failed { .. })
                            && confirmed.is_some_and(|g| g.contains(&k.row.external_id))))
            };
            let mut deletions: Vec<ObservationIndexRow> = self
                .known
                .values()
                .filter(|k| deletes(k))
                .map(|k| k.row.clone())
                .collect();
            deletions.sort_by(|a, b| a.external_id.cmp(&b.external_id));
            let mut refused = guard(
                &self.known,
                &scope,
                &deletions,
                &self.claimed_refs,
                self.job.options,
            );
            if refused.is_empty() {
                refused.extend(
                    run_refusals
                        .iter()
                        .filter(|r| deletions.iter().any(|d| d.kind == r.kind))
                        .cloned(),
                );
            }
            // Seeing nothing proves a whole crawl broken, not a refresh: an event about one
            // deleted repository sees nothing by right.
            if refused.is_empty() && status.is_complete() && !self.seen.contains_key(&scope) {
                refused = emptied(
                    &self.known,
                    &scope,
                    &deletions,
                    &self.claimed_refs,
                    self.job.options,
                );
            }
            if !refused.is_empty() {
                deletions.clear();
            }
            let span = tracing::info_span!(
                "scope",
                scope = %scope,
                complete = status.is_complete(),
                deletions = deletions.len()
            );
            let refused = async {
                let waiting = self.buffered.remove(&scope).unwrap_or_default();
                let is_open = self.open_scope.as_deref() == Some(scope.as_str());
                if is_open || !waiting.is_empty() || !deletions.is_empty() || !refused.is_empty() {
                    if !is_open {
                        self.open_scope = Some(scope.clone());
                        if self.tx.is_empty() {
                            self.open().await?;
                        }
                    }
                    let mut writes = std::mem::take(&mut self.batch);
                    writes.extend(waiting);
                    while !writes.is_empty() {
                        let rest = writes.split_off(writes.len().min(WRITE_BATCH));
                        self.write(writes, Vec::new()).await?;
                        writes = rest;
                    }
                    let retracting = deletions.len() as u64;
                    self.write(Vec::new(), deletions).await?;
                    seen_in(&mut self.seen, &scope).gone += retracting;
                    // Entities also disappear when their observations move to other names (a
                    // mass rename collision): the guard counts what is actually deleted, too.
                    let entity_refusals = self.entity_guard(&scope);
                    if !entity_refusals.is_empty() {
                        if !self.job.options.dry_run
                            && let Some(tx) = self.tx.take().await?
                        {
                            tx.rollback().await?;
                            self.open().await?;
                            self.per_scope.remove(&scope);
                            seen_in(&mut self.seen, &scope).gone = 0;
                        }
                        refused.extend(entity_refusals);
                    }
                    if !refused.is_empty()
                        && let Some(tx) = self.tx.here().await?
                    {
                        self.job.record_refusals(tx, &scope, &refused).await?;
                    }
                    if !self.job.options.dry_run
                        && let Some(mut tx) = self.tx.take().await?
                    {
                        if let Some(fresh) = &mut self.fresh {
                            fresh.last_seq = Some(tx.last_change_seq().await?);
                        }
                        tx.commit().await?;
                    }
                    self.open_scope = None;
                }
                Ok::<_, ReconcileError>(refused)
            }
            .instrument(span)
            .await?;
            reports.push(ScopeReport {
                counts: self.scope_counts(&scope),
                scope,
                status,
                refused,
            });
        }
        if let Some(tx) = self.tx.take().await? {
            // Only a dry run gets here with a transaction: it writes nothing.
            tx.rollback().await?;
        }
        Ok(reports)
    }
}

/// The counts of `scope`, made on first use (the scope is cloned once, not per observation).
fn seen_in<'s>(
    seen: &'s mut BTreeMap<String, ObservationCounts>,
    scope: &str,
) -> &'s mut ObservationCounts {
    if !seen.contains_key(scope) {
        seen.insert(scope.to_string(), ObservationCounts::default());
    }
    seen.get_mut(scope).expect("inserted above")
}

impl RunState<'_> {
    /// The scope's two sets of counts, once it is done: each entity it changed once, by its
    /// net change, and the entities its unchanged observations describe that nothing changed.
    fn scope_counts(&mut self, scope: &str) -> Counts {
        let mut entities = EntityCounts::default();
        let effects = self.per_scope.remove(scope).unwrap_or_default();
        let mut changed_refs: HashSet<&str> = HashSet::with_capacity(effects.len());
        for (uid, (entity_ref, effect)) in &effects {
            changed_refs.insert(entity_ref.as_str());
            if let Some(op) = effect.net() {
                entities.count(op);
            }
            self.effects
                .push((uid.clone(), entity_ref.clone(), *effect));
        }
        let unchanged = self.unchanged_refs.remove(scope).unwrap_or_default();
        entities.unchanged = unchanged
            .iter()
            .filter(|r| !changed_refs.contains(r.as_str()))
            .count() as u64;
        self.unchanged_kept.extend(unchanged);
        Counts {
            observations: self.seen.remove(scope).unwrap_or_default(),
            entities,
            unannounced: None,
        }
    }

    /// Entity deletions made in `scope` so far that exceed the guard, per kind.
    fn entity_guard(&self, scope: &str) -> Vec<Refusal> {
        let Some(deleted) = self.deleted_kinds.get(scope) else {
            return Vec::new();
        };
        let gone = deleted.iter().map(|(k, n)| (k.as_str(), *n)).collect();
        over_ratio(&self.known, scope, gone, self.job.options)
    }
}
