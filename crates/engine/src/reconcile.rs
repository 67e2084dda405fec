//! The reconciler: diffs one connector's crawl against what that source said before, and writes
//! the difference (observations, entities, relations, history) one transaction per scope.
//!
//! Safety rules, all enforced here: only completely crawled scopes delete; a scope that would
//! lose more than `max_delete_ratio` of any kind deletes nothing; identity is the external id, so
//! a new name is a rename; a crawl that changed nothing writes nothing but its run row.

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};

use chrono::{DateTime, Utc};
use serde::Serialize;
use serde_json::Value;
use surveyor_model::{
    Connector, ConnectorError, Observation, ObservationSink, Outcome, Problem, ScopeStatus,
};
use surveyor_store::{
    ChangeOp, ChangeWrite, EntityRow, EntityWrite, IdentityKeyRow, ObservationIndexRow,
    ObservationWrite, RefusalRow, Store, StoreError, StoreTx,
};
use tokio::sync::mpsc;
use tracing::Instrument;

use crate::merge::{Contribution, MergedEntity, ObservedEntity, SourceClaim, combine};

/// Entity refs processed per read-compute-write round inside a scope transaction.
const REF_BATCH: usize = 1000;

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
    fn add(&mut self, other: &Counts) {
        self.created += other.created;
        self.updated += other.updated;
        self.renamed += other.renamed;
        self.deleted += other.deleted;
        self.restored += other.restored;
        self.unchanged += other.unchanged;
        self.observed += other.observed;
    }

    fn count(&mut self, op: ChangeOp) {
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
const MAX_WARNINGS: usize = 20;

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

/// An observation with its CPU-heavy parts computed: the canonical body and its hash.
struct Prepared {
    scope: String,
    external_id: String,
    /// The entity's kind when it is not one of Backstage's.
    unknown_kind: Option<String>,
    /// The parsed content, body and hash; or why the entity has no valid ref.
    content: Result<(ObservedEntity, String, String), String>,
    /// Identity annotations and verified emails: keys shared with other observations.
    keys: Vec<String>,
    /// Another name a declared component answers to.
    alias: Option<String>,
}

impl Prepared {
    fn new(mut obs: Observation, identity: &crate::identity::Identity, source: &str) -> Self {
        identity.apply(source, &mut obs.entity);
        let keys = crate::identity::identity_keys(&obs.entity);
        let alias = obs
            .declared
            .then(|| crate::identity::alias_of(&obs.entity))
            .flatten();
        let content = ObservedEntity::new(&obs.entity, &obs.relations, obs.declared)
            .map(|observed| {
                let body = observed.observation_body();
                let hash = surveyor_model::hash::sha256_hex(body.as_bytes());
                (observed, body, hash)
            })
            .map_err(|e| e.to_string());
        Self {
            unknown_kind: (!obs.entity.is_known_kind()).then(|| obs.entity.kind.clone()),
            scope: obs.scope,
            external_id: obs.external_id,
            content,
            keys,
            alias,
        }
    }
}

/// Where an external id pointed before this run.
struct Previous {
    entity_ref: String,
    live: bool,
}

/// An observation that differs from what is stored and must be written.
struct Pending {
    scope: String,
    external_id: String,
    previous: Option<Previous>,
    observed: ObservedEntity,
    /// The observation as stored (canonical JSON) and its hash.
    body: String,
    obs_hash: String,
    keys: Vec<String>,
    alias: Option<String>,
}

/// What the index knew about an external id before this run, plus whether the crawl saw it.
struct Known {
    row: ObservationIndexRow,
    seen: bool,
}

/// Runs `connector` once and reconciles its crawl into `store`.
pub async fn run_connector(
    store: &Store,
    connector: &dyn Connector,
    options: &ReconcileOptions,
) -> Result<RunReport, ReconcileError> {
    let source = connector.id().to_string();
    let run_id = uuid::Uuid::now_v7().to_string();
    let started = Utc::now();
    if !options.dry_run {
        store.abandon_stale_runs(&source, started).await?;
        store.insert_run(&run_id, &source, started).await?;
    }
    let result = reconcile_crawl(store, connector, options, &run_id)
        .instrument(tracing::info_span!("run", connector = %source, run_id = %run_id))
        .await;
    match result {
        Ok(report) => {
            tracing::info!(
                connector = %source,
                run_id = %run_id,
                status = report.status.as_str(),
                created = report.counts.created,
                updated = report.counts.updated,
                renamed = report.counts.renamed,
                deleted = report.counts.deleted,
                restored = report.counts.restored,
                unchanged = report.counts.unchanged,
                "run finished"
            );
            // Big changes move the planner's statistics; refreshing costs ~0.1 s per 100k
            // entities, far less than the queries planned on stale ones.
            if !options.dry_run
                && report.counts.changes() >= 1000
                && let Err(e) = store.refresh_statistics().await
            {
                tracing::warn!(error = %e, "could not refresh the planner's statistics");
            }
            if !options.dry_run {
                let outcome =
                    serde_json::json!({ "scopes": report.scopes, "problems": report.problems });
                let counts = serde_json::to_value(&report.counts).unwrap_or(Value::Null);
                store
                    .finish_run(
                        &run_id,
                        report.status.as_str(),
                        &outcome,
                        &counts,
                        report.error.as_deref(),
                        Utc::now(),
                    )
                    .await?;
            }
            Ok(report)
        }
        Err(e) => {
            if !options.dry_run {
                // Best effort: the store may be what failed.
                let _ = store
                    .finish_run(
                        &run_id,
                        "failed",
                        &Value::Null,
                        &Value::Null,
                        Some(&e.to_string()),
                        Utc::now(),
                    )
                    .await;
            }
            Err(e)
        }
    }
}

async fn reconcile_crawl(
    store: &Store,
    connector: &dyn Connector,
    options: &ReconcileOptions,
    run_id: &str,
) -> Result<RunReport, ReconcileError> {
    let source = connector.id().to_string();
    let known: HashMap<String, Known> = store
        .observation_index(&source)
        .await?
        .into_iter()
        .map(|row| (row.external_id.clone(), Known { row, seen: false }))
        .collect();
    let mut run = RunState {
        store,
        job: ScopeJob {
            source: source.clone(),
            run_id: run_id.to_string(),
            now: Utc::now(),
            options,
        },
        known,
        seen_now: HashSet::new(),
        claimed_refs: HashSet::new(),
        observed_scopes: BTreeSet::new(),
        problems: Vec::new(),
        warnings: Vec::new(),
        unknown_kinds: 0,
        counts: Counts::default(),
        per_scope: BTreeMap::new(),
        deleted_kinds: BTreeMap::new(),
        tx: None,
        open_scope: None,
        batch: Vec::new(),
        buffered: BTreeMap::new(),
    };

    let (sink, rx) = ObservationSink::channel(&source, 1024);
    let (crawl, received) = tokio::join!(connector.crawl(sink), run.receive_all(rx));
    if let Err(e) = received {
        if let Some(tx) = run.tx.take() {
            let _ = tx.rollback().await;
        }
        return Err(e);
    }
    let (mut outcome, error) = match crawl {
        Ok(outcome) => (outcome, None),
        Err(e) => (Outcome::default(), Some(connector_error(&e))),
    };
    run.problems.append(&mut outcome.problems);
    for p in &run.problems {
        outcome.partial(p.scope.clone(), format!("problem at {}", p.location));
    }
    let reports = match run.finish(&outcome, error.as_deref()).await {
        Ok(r) => r,
        Err(e) => {
            if let Some(tx) = run.tx.take() {
                let _ = tx.rollback().await;
            }
            return Err(e);
        }
    };

    let mut counts = run.counts.clone();
    for r in &reports {
        counts.add(&r.counts);
    }
    let refused = reports.iter().any(|r| !r.refused.is_empty());
    let status = if error.is_some() || refused {
        RunStatus::Failed
    } else if reports.iter().all(|r| r.status.is_complete()) {
        RunStatus::Succeeded
    } else {
        RunStatus::Partial
    };
    let error = error.or_else(|| {
        refused.then(|| {
            let parts: Vec<String> = reports
                .iter()
                .flat_map(|r| {
                    r.refused.iter().map(move |f| {
                        format!(
                            "scope {:?} would delete {} of {} live {} (more than {:.0}%)",
                            r.scope,
                            f.would_delete,
                            f.live,
                            f.kind,
                            f.max_ratio * 100.0
                        )
                    })
                })
                .collect();
            format!("deletion guard refused: {}", parts.join("; "))
        })
    });
    Ok(RunReport {
        run_id: run_id.to_string(),
        connector: source,
        dry_run: options.dry_run,
        status,
        counts,
        scopes: reports,
        problems: run.problems,
        warnings: {
            let mut w = run.warnings;
            if run.unknown_kinds as usize > w.len() {
                w.push(format!(
                    "... {} entities of unknown kinds in all",
                    run.unknown_kinds
                ));
            }
            w
        },
        error,
    })
}

fn connector_error(e: &ConnectorError) -> String {
    format!("connector failed: {e}")
}

/// Observations changed since the last crawl are written in batches of this many.
const WRITE_BATCH: usize = 1000;

/// The state of one run while the crawl streams in.
///
/// The first scope with a change gets its transaction at once and its changes are written in
/// batches while the crawl goes on (so memory stays flat and the disk works while the source
/// is read). Changes to other scopes wait in memory: each scope has exactly one transaction,
/// and SQLite has one writer. At the end each scope decides its deletions and commits.
struct RunState<'a> {
    store: &'a Store,
    job: ScopeJob<'a>,
    known: HashMap<String, Known>,
    /// External ids seen in this crawl that the index did not know.
    seen_now: HashSet<String>,
    /// Entity refs this crawl's observations describe (changed or not).
    claimed_refs: HashSet<String>,
    observed_scopes: BTreeSet<String>,
    problems: Vec<Problem>,
    warnings: Vec<String>,
    unknown_kinds: u64,
    /// Run-level counts (observed, unchanged).
    counts: Counts,
    per_scope: BTreeMap<String, Counts>,
    /// Entities deleted per scope and kind so far, for the guard at the end of the scope.
    deleted_kinds: BTreeMap<String, BTreeMap<String, u64>>,
    /// The open transaction (in a dry run, the one transaction of the whole run).
    tx: Option<StoreTx>,
    open_scope: Option<String>,
    batch: Vec<Pending>,
    buffered: BTreeMap<String, Vec<Pending>>,
}

impl RunState<'_> {
    async fn receive_all(
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
        self.counts.observed += 1;
        if !self.observed_scopes.contains(&p.scope) {
            self.observed_scopes.insert(p.scope.clone());
        }
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
        if !first_time {
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
            self.problems.push(problem(
                None,
                format!("{}: a value contains a NUL character", observed.entity_ref),
            ));
            return None;
        }
        let key = observed.entity_ref.key();
        if !self.claimed_refs.contains(&key) {
            self.claimed_refs.insert(key);
        }
        let known = self.known.get(&p.external_id);
        if let Some(k) = known
            && k.row.live
            && k.row.hash == obs_hash
            && k.row.scope == p.scope
        {
            self.counts.unchanged += 1;
            return None;
        }
        let previous = known.map(|k| Previous {
            entity_ref: k.row.entity_ref.clone(),
            live: k.row.live,
        });
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
            if self.tx.is_none() {
                self.tx = Some(self.store.begin_write().await?);
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
        let Some(tx) = self.tx.as_mut() else {
            return Ok(());
        };
        let counts = self.per_scope.entry(scope.clone()).or_default();
        let deleted_kinds = self.deleted_kinds.entry(scope.clone()).or_default();
        self.job
            .apply(tx, &scope, writes, deletions, counts, deleted_kinds)
            .await
    }

    /// Ends every scope: writes what waited, deletes where the crawl was complete (and the
    /// guard allows), records refusals, commits each scope's transaction.
    async fn finish(
        &mut self,
        outcome: &Outcome,
        error: Option<&str>,
    ) -> Result<Vec<ScopeReport>, ReconcileError> {
        let mut scopes: Vec<String> = Vec::new();
        scopes.extend(self.open_scope.clone());
        let mut rest: BTreeSet<String> = outcome.scopes.keys().cloned().collect();
        rest.extend(self.observed_scopes.iter().cloned());
        rest.extend(self.buffered.keys().cloned());
        // Scopes with live data that this crawl never mentioned are failed, and say so.
        rest.extend(
            self.known
                .values()
                .filter(|k| k.row.live)
                .map(|k| k.row.scope.clone()),
        );
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
            let mut deletions: Vec<ObservationIndexRow> = Vec::new();
            if status.is_complete() {
                deletions = self
                    .known
                    .values()
                    .filter(|k| k.row.live && !k.seen && k.row.scope == scope)
                    .map(|k| k.row.clone())
                    .collect();
                deletions.sort_by(|a, b| a.external_id.cmp(&b.external_id));
            }
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
                        if self.tx.is_none() {
                            self.tx = Some(self.store.begin_write().await?);
                        }
                    }
                    let mut writes = std::mem::take(&mut self.batch);
                    writes.extend(waiting);
                    while !writes.is_empty() {
                        let rest = writes.split_off(writes.len().min(WRITE_BATCH));
                        self.write(writes, Vec::new()).await?;
                        writes = rest;
                    }
                    self.write(Vec::new(), deletions).await?;
                    // Entities also disappear when their observations move to other names (a
                    // mass rename collision): the guard counts what is actually deleted, too.
                    let entity_refusals = self.entity_guard(&scope);
                    if !entity_refusals.is_empty() {
                        if !self.job.options.dry_run
                            && let Some(tx) = self.tx.take()
                        {
                            tx.rollback().await?;
                            self.tx = Some(self.store.begin_write().await?);
                            self.per_scope.remove(&scope);
                        }
                        refused.extend(entity_refusals);
                    }
                    if let Some(tx) = self.tx.as_mut() {
                        self.job.record_refusals(tx, &scope, &refused).await?;
                    }
                    if !self.job.options.dry_run
                        && let Some(tx) = self.tx.take()
                    {
                        tx.commit().await?;
                    }
                    self.open_scope = None;
                }
                Ok::<_, ReconcileError>(refused)
            }
            .instrument(span)
            .await?;
            reports.push(ScopeReport {
                counts: self.per_scope.remove(&scope).unwrap_or_default(),
                scope,
                status,
                refused,
            });
        }
        if let Some(tx) = self.tx.take() {
            // Only a dry run gets here with a transaction: it writes nothing.
            tx.rollback().await?;
        }
        Ok(reports)
    }
}

impl RunState<'_> {
    /// Entity deletions made in `scope` so far that exceed the guard, per kind.
    fn entity_guard(&self, scope: &str) -> Vec<Refusal> {
        let Some(deleted) = self.deleted_kinds.get(scope) else {
            return Vec::new();
        };
        let gone = deleted.iter().map(|(k, n)| (k.as_str(), *n)).collect();
        over_ratio(&self.known, scope, gone, self.job.options)
    }
}

/// The guard: per kind, deletions over `max_delete_ratio` of the scope's live observations.
///
/// A deleted observation whose entity this source still describes under another external id
/// (a descriptor moved to another file, a workload recreated with a new uid) loses nothing and
/// is not counted.
fn guard(
    known: &HashMap<String, Known>,
    scope: &str,
    deletions: &[ObservationIndexRow],
    claimed_refs: &HashSet<String>,
    options: &ReconcileOptions,
) -> Vec<Refusal> {
    let mut gone: BTreeMap<&str, u64> = BTreeMap::new();
    for d in deletions
        .iter()
        .filter(|d| !claimed_refs.contains(&d.entity_ref))
    {
        *gone.entry(d.kind.as_str()).or_default() += 1;
    }
    over_ratio(known, scope, gone, options)
}

/// The guard over the whole run: per kind, the deletions of every complete scope against the
/// source's live observations of that kind.
fn run_guard(
    known: &HashMap<String, Known>,
    complete: &HashSet<&str>,
    claimed_refs: &HashSet<String>,
    options: &ReconcileOptions,
) -> Vec<Refusal> {
    if options.allow_mass_delete {
        return Vec::new();
    }
    let mut live: BTreeMap<&str, u64> = BTreeMap::new();
    let mut gone: BTreeMap<&str, u64> = BTreeMap::new();
    for k in known.values().filter(|k| k.row.live) {
        *live.entry(k.row.kind.as_str()).or_default() += 1;
        if !k.seen
            && complete.contains(k.row.scope.as_str())
            && !claimed_refs.contains(&k.row.entity_ref)
        {
            *gone.entry(k.row.kind.as_str()).or_default() += 1;
        }
    }
    refusals(&live, gone, options)
}

/// The kinds whose deletions (`gone`) exceed `max_delete_ratio` of the scope's live
/// observations of that kind before this run.
fn over_ratio(
    known: &HashMap<String, Known>,
    scope: &str,
    gone: BTreeMap<&str, u64>,
    options: &ReconcileOptions,
) -> Vec<Refusal> {
    if gone.is_empty() || options.allow_mass_delete {
        return Vec::new();
    }
    let mut live: BTreeMap<&str, u64> = BTreeMap::new();
    for k in known
        .values()
        .filter(|k| k.row.live && k.row.scope == scope)
    {
        *live.entry(k.row.kind.as_str()).or_default() += 1;
    }
    refusals(&live, gone, options)
}

/// The kinds whose deletions (`gone`) are past the guard's floor and over `max_delete_ratio`
/// of their `live` observations.
fn refusals(
    live: &BTreeMap<&str, u64>,
    gone: BTreeMap<&str, u64>,
    options: &ReconcileOptions,
) -> Vec<Refusal> {
    gone.into_iter()
        .filter_map(|(kind, n)| {
            let total = live.get(kind).copied().unwrap_or(n).max(1);
            let mass =
                n > options.mass_delete_floor && n as f64 / total as f64 > options.max_delete_ratio;
            mass.then(|| Refusal {
                kind: kind.to_string(),
                live: total,
                would_delete: n,
                max_ratio: options.max_delete_ratio,
            })
        })
        .collect()
}

/// Writes one batch of a scope's changes inside its transaction.
struct ScopeJob<'a> {
    source: String,
    run_id: String,
    now: DateTime<Utc>,
    options: &'a ReconcileOptions,
}

/// An external id that now names a different ref than before.
struct RenamePair {
    old: String,
    new: String,
    source: String,
    external_id: String,
}

/// An observation that identity resolution files under another ref.
struct Refiling {
    source: String,
    external_id: String,
    own_ref: String,
    from: String,
    to: String,
}

/// What the catalog should hold for a ref after this batch's writes.
enum Desired {
    Absent,
    Present(Box<MergedEntity>),
}

impl ScopeJob<'_> {
    async fn record_refusals(
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
    async fn apply(
        &self,
        tx: &mut StoreTx,
        scope: &str,
        writes: Vec<Pending>,
        deletions: Vec<ObservationIndexRow>,
        counts: &mut Counts,
        deleted_kinds: &mut BTreeMap<String, u64>,
    ) -> Result<(), ReconcileError> {
        if writes.is_empty() && deletions.is_empty() {
            return Ok(());
        }
        // 1. Observations.
        for chunk in writes.chunks(500) {
            let rows: Vec<ObservationWrite> = chunk
                .iter()
                .map(|p| ObservationWrite {
                    source: self.source.clone(),
                    external_id: p.external_id.clone(),
                    scope: scope.to_string(),
                    entity_ref: p.observed.entity_ref.key(),
                    kind: p.observed.kind.clone(),
                    declared: p.observed.declared,
                    hash: p.obs_hash.clone(),
                    body: p.body.clone(),
                    run_id: self.run_id.clone(),
                })
                .collect();
            tx.upsert_observations(&rows).await?;
        }
        let deleted_ids: Vec<String> = deletions.iter().map(|d| d.external_id.clone()).collect();
        if !deleted_ids.is_empty() {
            tx.delete_observations(&self.source, &deleted_ids, &self.run_id, self.now)
                .await?;
        }
        let (refilings, alias_names) = self.resolve_identity(tx, &writes, &deleted_ids).await?;

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
            affected.extend(tx.relation_origins_targeting(&names).await?);
        }
        for d in &deletions {
            affected.insert(d.entity_ref.clone());
        }
        // Each written observation is needed at most once, as its ref's winner: move, not clone.
        let mut in_memory: HashMap<String, ObservedEntity> = writes
            .into_iter()
            .map(|p| (p.external_id, p.observed))
            .collect();

        // 3. Rename candidates first, every pair whole inside one batch (a chain of renames
        //    stays together when it fits); then the rest.
        let mut changes: Vec<ChangeWrite> = Vec::new();
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
        for batch in batches {
            self.apply_batch(
                tx,
                &batch,
                &rename_pairs,
                &absorbed,
                &mut in_memory,
                counts,
                deleted_kinds,
                &mut changes,
            )
            .await?;
            tx.insert_changes(&changes, self.now).await?;
            changes.clear();
        }
        Ok(())
    }

    #[allow(clippy::too_many_arguments)]
    async fn apply_batch(
        &self,
        tx: &mut StoreTx,
        refs: &[String],
        rename_pairs: &[RenamePair],
        absorbed: &HashSet<String>,
        in_memory: &mut HashMap<String, ObservedEntity>,
        counts: &mut Counts,
        deleted_kinds: &mut BTreeMap<String, u64>,
        changes: &mut Vec<ChangeWrite>,
    ) -> Result<(), ReconcileError> {
        let desired = self.desired(tx, refs, in_memory).await?;
        let current: HashMap<String, EntityRow> = tx
            .entities_by_refs(refs)
            .await?
            .into_iter()
            .map(|e| (e.entity_ref.clone(), e))
            .collect();
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
        // the old ref's row must have been won by that id, and the new ref must be free, or
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
                if vacated.contains(old)
                    || claimed.contains(new)
                    || !won_by(old_row, &pair.source, &pair.external_id)
                {
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
                counts.count(ChangeOp::Renamed);
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

        for key in refs {
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
                    counts.count(ChangeOp::Deleted);
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
            counts.count(op);
            changes.push(ChangeWrite {
                run_id: self.run_id.clone(),
                source: self.source.clone(),
                entity_uid: uid,
                entity_ref: m.winner.entity_ref.to_string(),
                previous_ref: None,
                op,
                patch,
            });
        }

        tx.delete_entity_rows(&purged_tombstones).await?;
        tx.tombstone_entities(&tombstones, &self.run_id, self.now)
            .await?;
        tx.upsert_entities(&moves, self.now).await?;
        tx.upsert_entities(&entity_writes, self.now).await?;
        if !relation_origins.is_empty() || !relation_rows.is_empty() {
            tx.replace_relations(&relation_origins, &relation_rows)
                .await?;
        }
        Ok(())
    }

    /// Keeps the identity-key index in step with this batch and files every observation that
    /// shares a key under the ref it resolves to (see [`resolve_keys`]). Returns the moves and
    /// the alias names that appeared or went.
    async fn resolve_identity(
        &self,
        tx: &mut StoreTx,
        writes: &[Pending],
        deleted_ids: &[String],
    ) -> Result<(Vec<Refiling>, Vec<String>), ReconcileError> {
        // Keys and aliases are stored with observations, so only ids this source stored before
        // can hold any: an initial load asks for nothing and deletes nothing here.
        let stored: BTreeSet<String> = writes
            .iter()
            .filter(|p| p.previous.is_some())
            .map(|p| p.external_id.clone())
            .chain(deleted_ids.iter().cloned())
            .collect();
        let ids: Vec<String> = stored.iter().cloned().collect();
        let (old, old_aliases) = if ids.is_empty() {
            (Vec::new(), Vec::new())
        } else {
            (
                tx.identity_keys_of(&self.source, &ids).await?,
                tx.identity_aliases_of(&self.source, &ids).await?,
            )
        };
        let new: Vec<IdentityKeyRow> = writes
            .iter()
            .flat_map(|p| {
                p.keys.iter().map(|k| IdentityKeyRow {
                    key: k.clone(),
                    source: self.source.clone(),
                    external_id: p.external_id.clone(),
                    own_ref: p.observed.entity_ref.key(),
                    declared: p.observed.declared,
                })
            })
            .collect();
        let aliases: Vec<(String, String, String, String)> = writes
            .iter()
            .filter_map(|p| {
                Some((
                    self.source.clone(),
                    p.external_id.clone(),
                    p.alias.clone()?,
                    p.observed.entity_ref.key(),
                ))
            })
            .collect();
        if old.is_empty() && new.is_empty() && aliases.is_empty() && old_aliases.is_empty() {
            return Ok((Vec::new(), Vec::new()));
        }
        let touched: BTreeSet<String> = old
            .iter()
            .chain(&new)
            .map(|r| r.external_id.clone())
            .chain(aliases.iter().map(|a| a.1.clone()))
            .chain(old_aliases.iter().map(|a| a.0.clone()))
            .collect();
        // Aliases that appeared or went (or now mean another entity): what points at either
        // name must be merged again.
        let before: BTreeSet<(String, String, String)> = old_aliases.into_iter().collect();
        let after: BTreeSet<(String, String, String)> = aliases
            .iter()
            .map(|(_, ext, alias, to)| (ext.clone(), alias.clone(), to.clone()))
            .collect();
        let alias_names: BTreeSet<String> = before
            .symmetric_difference(&after)
            .flat_map(|(_, alias, to)| [alias.clone(), to.clone()])
            .collect();
        let cleared: Vec<String> = touched
            .into_iter()
            .filter(|id| stored.contains(id))
            .collect();
        tx.replace_identity_keys(&self.source, &cleared, &new)
            .await?;
        tx.add_identity_aliases(&aliases).await?;

        // Every holder of an affected key, and every key those holders hold, a few hops out.
        let mut seen_keys: BTreeSet<String> =
            old.iter().chain(&new).map(|r| r.key.clone()).collect();
        let mut frontier: Vec<String> = seen_keys.iter().cloned().collect();
        let mut holders: HashMap<(String, String), KeyHolder> = HashMap::new();
        let mut key_holders: HashMap<String, Vec<(String, String)>> = HashMap::new();
        for _ in 0..IDENTITY_HOPS {
            if frontier.is_empty() {
                break;
            }
            let mut fresh: BTreeMap<String, Vec<String>> = BTreeMap::new();
            for h in tx.identity_holders(&frontier).await? {
                let id = (h.key.source.clone(), h.key.external_id.clone());
                key_holders
                    .entry(h.key.key.clone())
                    .or_default()
                    .push(id.clone());
                holders.entry(id).or_insert_with(|| {
                    fresh
                        .entry(h.key.source.clone())
                        .or_default()
                        .push(h.key.external_id.clone());
                    KeyHolder {
                        own_ref: h.key.own_ref.clone(),
                        declared: h.key.declared,
                        filed_under: h.filed_under.clone(),
                        keys: Vec::new(),
                    }
                });
            }
            frontier = Vec::new();
            for (source, exts) in fresh {
                for row in tx.identity_keys_of(&source, &exts).await? {
                    if let Some(h) = holders.get_mut(&(source.clone(), row.external_id.clone())) {
                        h.keys.push(row.key.clone());
                    }
                    if seen_keys.insert(row.key.clone()) {
                        frontier.push(row.key);
                    }
                }
            }
        }
        let resolved = resolve_keys(&holders, &key_holders, &self.options.source_priority);
        let mut moves: Vec<Refiling> = Vec::new();
        for ((source, external_id), to) in resolved {
            let Some(h) = holders.get(&(source.clone(), external_id.clone())) else {
                continue;
            };
            if h.filed_under != to {
                moves.push(Refiling {
                    source,
                    external_id,
                    own_ref: h.own_ref.clone(),
                    from: h.filed_under.clone(),
                    to,
                });
            }
        }
        moves.sort_by(|a, b| (&a.source, &a.external_id).cmp(&(&b.source, &b.external_id)));
        let mut by_source: BTreeMap<&str, Vec<(String, String, String)>> = BTreeMap::new();
        for m in &moves {
            by_source.entry(m.source.as_str()).or_default().push((
                m.external_id.clone(),
                m.own_ref.clone(),
                m.to.clone(),
            ));
        }
        for (source, list) in by_source {
            tx.refile_observations(source, &list).await?;
        }
        Ok((moves, alias_names.into_iter().collect()))
    }

    /// The merged entity each ref should have, from the live observations of every source.
    async fn desired(
        &self,
        tx: &mut StoreTx,
        refs: &[String],
        in_memory: &mut HashMap<String, ObservedEntity>,
    ) -> Result<HashMap<String, Desired>, ReconcileError> {
        let mut by_ref: HashMap<String, Vec<(String, String, bool)>> = HashMap::new();
        for o in tx.live_observations(refs).await? {
            by_ref
                .entry(o.entity_ref)
                .or_default()
                .push((o.source, o.external_id, o.declared));
        }
        // Observations not in memory are read back, grouped by source. A ref with one source
        // (most of them) costs what it did; a ref several sources describe reads them all.
        let mut to_fetch: BTreeMap<String, Vec<String>> = BTreeMap::new();
        for candidates in by_ref.values() {
            for (source, ext, _) in candidates {
                if *source != self.source || !in_memory.contains_key(ext.as_str()) {
                    to_fetch
                        .entry(source.clone())
                        .or_default()
                        .push(ext.clone());
                }
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
                fetched.insert((source.clone(), ext), parsed);
            }
        }
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
            match combine(parts, &self.options.source_priority) {
                Some((merged, claims)) => merged_all.push((key.clone(), merged, claims)),
                None => {
                    out.insert(key.clone(), Desired::Absent);
                }
            }
        }
        // A relation to the own name of an observation that joined another entity points at
        // that entity.
        let targets: BTreeSet<String> = merged_all
            .iter()
            .flat_map(|(_, m, _)| m.relations.iter().map(|r| r.target.key()))
            .collect();
        let aliases: HashMap<String, String> = if targets.is_empty() {
            HashMap::new()
        } else {
            let targets: Vec<String> = targets.into_iter().collect();
            tx.identity_aliases(&targets).await?.into_iter().collect()
        };
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

/// Whether `source`'s `external_id` supplied the entity row's fields.
fn won_by(row: &EntityRow, source: &str, external_id: &str) -> bool {
    serde_json::from_str::<Vec<SourceClaim>>(&row.sources).is_ok_and(|claims| {
        claims
            .iter()
            .any(|c| c.winner && c.source == source && c.external_id == external_id)
    })
}

/// How far identity keys are followed from the keys a batch touched.
const IDENTITY_HOPS: usize = 3;

/// A live observation holding identity keys.
#[derive(Debug, Clone)]
struct KeyHolder {
    own_ref: String,
    declared: bool,
    filed_under: String,
    keys: Vec<String>,
}

/// Where each holder belongs: a declared observation stays at its own ref; any other follows
/// the highest-precedence holder (declared, then configured source order, then source and
/// external id) of the keys it holds, and that one's place in turn. A key that two declared
/// observations with different refs both hold is ambiguous and joins nothing.
fn resolve_keys(
    holders: &HashMap<(String, String), KeyHolder>,
    key_holders: &HashMap<String, Vec<(String, String)>>,
    priority: &BTreeMap<String, usize>,
) -> HashMap<(String, String), String> {
    type Id = (String, String);
    let rank = |id: &Id, h: &KeyHolder| {
        (
            !h.declared,
            priority.get(&id.0).copied().unwrap_or(usize::MAX),
            id.0.clone(),
            id.1.clone(),
        )
    };
    let ambiguous: HashSet<&str> = key_holders
        .iter()
        .filter(|(_, ids)| {
            let refs: BTreeSet<&str> = ids
                .iter()
                .filter_map(|id| holders.get(id))
                .filter(|h| h.declared)
                .map(|h| h.own_ref.as_str())
                .collect();
            refs.len() > 1
        })
        .map(|(k, _)| k.as_str())
        .collect();
    let target = |id: &Id| -> Id {
        let Some(h) = holders.get(id) else {
            return id.clone();
        };
        if h.declared {
            return id.clone();
        }
        let mut best = (rank(id, h), id.clone());
        for key in h.keys.iter().filter(|k| !ambiguous.contains(k.as_str())) {
            for other in key_holders.get(key).into_iter().flatten() {
                if let Some(oh) = holders.get(other) {
                    let r = rank(other, oh);
                    if r < best.0 {
                        best = (r, other.clone());
                    }
                }
            }
        }
        best.1
    };
    let mut out = HashMap::with_capacity(holders.len());
    for (id, h) in holders {
        // Precedence rises at every step, so the walk ends; the bound is for safety only.
        let mut at = id.clone();
        for _ in 0..16 {
            let next = target(&at);
            if next == at {
                break;
            }
            at = next;
        }
        let place = holders.get(&at).map_or(&h.own_ref, |t| &t.own_ref);
        out.insert(id.clone(), place.clone());
    }
    out
}

/// RFC 6902 patch from the stored body to the new one, as JSON text.
fn diff_patch(old: &str, new: &str) -> String {
    let old: Value = serde_json::from_str(old).unwrap_or(Value::Null);
    let new: Value = serde_json::from_str(new).unwrap_or(Value::Null);
    serde_json::to_string(&json_patch::diff(&old, &new)).unwrap_or_else(|_| "[]".into())
}
