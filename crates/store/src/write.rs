//! Writes, all inside a `StoreTx`: observations, entities, relations, changes, runs, refusals.
//! Rows go in multi-row statements so a 100k-entity load is a few hundred round trips.

use std::collections::HashSet;

use chrono::{DateTime, Utc};

use crate::identity::IDENTITY_KEYS;
use crate::query::{Built, Insert, RowRef, decode};
use crate::sql::sql;
use crate::sqlite_raw::{Param, Row};
use crate::{
    Backend, ChangeWrite, LiveObservationRow, ObservationWrite, RefusalRow, RelationRow, Result,
    Store, StoreTx,
};

/// An entity to insert or update in place (a rename updates `entity_ref` of the same uid).
#[derive(Debug, Clone)]
pub struct EntityWrite {
    pub uid: String,
    pub entity_ref: String,
    pub display_ref: String,
    pub kind: String,
    pub namespace: String,
    pub name: String,
    pub body: String,
    pub hash: String,
    pub sources: String,
    pub meta_hash: String,
}

const OBSERVATIONS: Insert<ObservationWrite> = Insert {
    head: "INSERT INTO observations (source, external_id, scope, entity_ref, kind, declared, \
           hash, body, first_run, changed_run) ",
    push: |b, r, _| {
        b.bind(r.source.clone())
            .bind(r.external_id.clone())
            .bind(r.scope.clone())
            .bind(r.entity_ref.clone())
            .bind(r.kind.clone())
            .bind(r.declared)
            .bind(r.hash.clone())
            .json(r.body.clone())
            .bind(r.run_id.clone())
            .bind(r.run_id.clone());
    },
    tail: " ON CONFLICT (source, external_id) DO UPDATE SET scope = excluded.scope, \
           entity_ref = excluded.entity_ref, kind = excluded.kind, declared = excluded.declared, \
           hash = excluded.hash, body = excluded.body, changed_run = excluded.changed_run, \
           deleted_at = NULL, deleted_run = NULL",
};

const ENTITIES: Insert<EntityWrite> = Insert {
    head: "INSERT INTO entities (uid, entity_ref, display_ref, kind, namespace, name, body, \
           hash, sources, meta_hash, created_at, updated_at) ",
    push: |b, r, now| {
        b.bind(r.uid.clone())
            .bind(r.entity_ref.clone())
            .bind(r.display_ref.clone())
            .bind(r.kind.clone())
            .bind(r.namespace.clone())
            .bind(r.name.clone())
            .json(r.body.clone())
            .bind(r.hash.clone())
            .json(r.sources.clone())
            .bind(r.meta_hash.clone())
            .bind(now)
            .bind(now);
    },
    tail: " ON CONFLICT (uid) DO UPDATE SET entity_ref = excluded.entity_ref, \
           display_ref = excluded.display_ref, kind = excluded.kind, \
           namespace = excluded.namespace, name = excluded.name, body = excluded.body, \
           hash = excluded.hash, sources = excluded.sources, meta_hash = excluded.meta_hash, \
           updated_at = excluded.updated_at, deleted_at = NULL, deleted_run = NULL",
};

const RELATIONS: Insert<RelationRow> = Insert {
    head: "INSERT INTO relations (origin_ref, source_ref, type, target_ref, target_display) ",
    push: |b, r, _| {
        b.bind(r.origin_ref.clone())
            .bind(r.source_ref.clone())
            .bind(r.kind.clone())
            .bind(r.target_ref.clone())
            .bind(r.target_display.clone());
    },
    tail: " ON CONFLICT DO NOTHING",
};

const CHANGES: Insert<ChangeWrite> = Insert {
    head: "INSERT INTO changes (at, run_id, source, entity_uid, entity_ref, previous_ref, op, \
           patch) ",
    push: |b, r, now| {
        b.bind(now)
            .bind(r.run_id.clone())
            .bind(r.source.clone())
            .bind(r.entity_uid.clone())
            .bind(r.entity_ref.clone())
            .bind(r.previous_ref.clone())
            .bind(r.op.as_str())
            .json(r.patch.clone());
    },
    tail: "",
};

/// Inserts built ahead of the transaction that runs them: the values are bound into their
/// statements wherever there is time, and the transaction only runs them ([`StoreTx::run`]).
/// A writer task that owns the transaction keeps the database busy this way while another
/// task builds the next batch.
pub struct Writes {
    backend: Backend,
    now: DateTime<Utc>,
    built: Vec<Built>,
}

impl Writes {
    /// Inserts for `store`'s database, written at `now`.
    pub fn new(store: &Store, now: DateTime<Utc>) -> Self {
        Self {
            backend: store.backend(),
            now,
            built: Vec::new(),
        }
    }

    /// As [`StoreTx::upsert_observations`].
    pub fn observations(&mut self, rows: &[ObservationWrite]) -> &mut Self {
        self.add(&OBSERVATIONS, rows)
    }

    /// As [`StoreTx::replace_identity_keys`] for observations that had no keys before.
    pub fn identity_keys(&mut self, rows: &[crate::IdentityKeyRow]) -> &mut Self {
        self.add(&IDENTITY_KEYS, rows)
    }

    /// As [`StoreTx::upsert_entities`].
    pub fn entities(&mut self, rows: &[EntityWrite]) -> &mut Self {
        self.add(&ENTITIES, rows)
    }

    /// As [`StoreTx::replace_relations`] for origins that had no rows before.
    pub fn relations(&mut self, rows: &[RelationRow]) -> &mut Self {
        self.add(&RELATIONS, rows)
    }

    /// As [`StoreTx::insert_changes`].
    pub fn changes(&mut self, rows: &[ChangeWrite]) -> &mut Self {
        self.add(&CHANGES, rows)
    }

    fn add<T>(&mut self, insert: &Insert<T>, rows: &[T]) -> &mut Self {
        self.built
            .extend(insert.build(self.backend, rows, self.now));
        self
    }
}

impl StoreTx {
    /// Inserts or revives observations.
    pub async fn upsert_observations(&mut self, rows: &[ObservationWrite]) -> Result<()> {
        self.insert(&OBSERVATIONS, rows, Utc::now()).await
    }

    /// Soft-deletes observations of one source.
    pub async fn delete_observations(
        &mut self,
        source: &str,
        external_ids: &[String],
        run_id: &str,
        now: DateTime<Utc>,
    ) -> Result<()> {
        self.execute_batched(
            "UPDATE observations SET deleted_at = $1, deleted_run = $2 \
             WHERE source = $3 AND external_id = ANY($4)",
            external_ids,
            |q| q.bind(now).bind(run_id).bind(source),
        )
        .await
    }

    /// Whether the catalog holds any row that observations make: observations (of any source,
    /// live or deleted), entities, identity keys or aliases. A run that finds none merges its
    /// first load in memory: nothing stored can take part.
    pub async fn holds_anything(&mut self) -> Result<bool> {
        let n: i32 = self
            .query(
                "SELECT CASE WHEN EXISTS (SELECT 1 FROM observations) \
                 OR EXISTS (SELECT 1 FROM entities) OR EXISTS (SELECT 1 FROM identity_keys) \
                 OR EXISTS (SELECT 1 FROM identity_aliases) THEN 1 ELSE 0 END",
            )
            .fetch_one(|r| r.get(0))
            .await?;
        Ok(n != 0)
    }

    /// Whether any source but `source` has observations (live or deleted).
    pub async fn others_observed(&mut self, source: &str) -> Result<bool> {
        // Two range probes of the primary key, not a scan of this source's rows.
        let text = sql(
            self.backend(),
            "SELECT CASE WHEN EXISTS (SELECT 1 FROM observations WHERE source < $1) \
             OR EXISTS (SELECT 1 FROM observations WHERE source > $1) THEN 1 ELSE 0 END",
        );
        let n: i32 = self
            .query(text)
            .bind(source)
            .fetch_one(|r| r.get(0))
            .await?;
        Ok(n != 0)
    }

    /// The newest change row's number (0 in an empty log): a writer that holds a catalog's
    /// state in memory between its transactions compares it to see whether anyone else wrote.
    pub async fn last_change_seq(&mut self) -> Result<i64> {
        self.query("SELECT COALESCE(MAX(seq), 0) FROM changes")
            .fetch_one(|r| r.get(0))
            .await
    }

    /// Live observations (of any source) describing any of `refs`.
    pub async fn live_observations(&mut self, refs: &[String]) -> Result<Vec<LiveObservationRow>> {
        const LIVE: &str = "SELECT source, external_id, entity_ref, declared, hash FROM observations \
             WHERE entity_ref = ANY($1) AND deleted_at IS NULL";
        const T: &str = "observations";
        let raw = |r: &Row<'_>| {
            Ok(LiveObservationRow {
                source: r.string(0, T)?,
                external_id: r.string(1, T)?,
                entity_ref: r.string(2, T)?,
                declared: r.int(3) != 0,
                hash: r.string(4, T)?,
            })
        };
        self.read_batched(LIVE, &[], refs, raw, decode).await
    }

    /// Bodies of some observations of one source, as (external_id, body).
    pub async fn observation_bodies(
        &mut self,
        source: &str,
        external_ids: &[String],
    ) -> Result<Vec<(String, String)>> {
        const BODIES: &str = "SELECT external_id, body::text AS body FROM observations \
             WHERE source = $1 AND external_id = ANY($2)";
        const T: &str = "observations";
        let first = [Param::Text(source.to_string())];
        let raw = |r: &Row<'_>| Ok((r.string(0, T)?, r.string(1, T)?));
        let decode = |r: RowRef<'_>| Ok((r.get("external_id")?, r.get("body")?));
        self.read_batched(BODIES, &first, external_ids, raw, decode)
            .await
    }

    /// Entity rows (live or tombstones) for the given keys.
    pub async fn entities_by_refs(&mut self, refs: &[String]) -> Result<Vec<crate::EntityRow>> {
        // The columns in `sqlite_raw::entity`'s order.
        const ENTITIES: &str = "SELECT uid, entity_ref, display_ref, kind, namespace, name, \
             body_text AS body, hash, sources::text AS sources, meta_hash, created_at, \
             updated_at, deleted_at, deleted_run FROM entities WHERE entity_ref = ANY($1)";
        self.read_batched(ENTITIES, &[], refs, crate::sqlite_raw::entity, decode)
            .await
    }

    /// Inserts entities, or updates them in place by uid (reviving tombstones).
    pub async fn upsert_entities(
        &mut self,
        rows: &[EntityWrite],
        now: DateTime<Utc>,
    ) -> Result<()> {
        self.insert(&ENTITIES, rows, now).await
    }

    /// Marks entities deleted (the rows stay as tombstones until purged).
    pub async fn tombstone_entities(
        &mut self,
        uids: &[String],
        run_id: &str,
        now: DateTime<Utc>,
    ) -> Result<()> {
        self.execute_batched(
            "UPDATE entities SET deleted_at = $1, deleted_run = $2, updated_at = $1 \
             WHERE uid = ANY($3)",
            uids,
            |q| q.bind(now).bind(run_id),
        )
        .await
    }

    /// Removes entity rows outright (tombstones that give their name to a renamed entity; their
    /// history stays in the change log under their uid).
    pub async fn delete_entity_rows(&mut self, uids: &[String]) -> Result<()> {
        if uids.is_empty() {
            return Ok(());
        }
        self.execute_batched("DELETE FROM entities WHERE uid = ANY($1)", uids, |q| q)
            .await
    }

    /// Replaces every relation row that `origins` produced with `rows`, writing what differs:
    /// rows stored and wanted again stay. An origin that lost a row (or whose row's display
    /// moved) has all its rows deleted and inserted again; one that only gains rows gets those.
    /// (Another source updating an entity mostly keeps its relations: deleting and inserting
    /// every one again was half of all the relation rows an org's sync wrote.)
    pub async fn replace_relations(
        &mut self,
        origins: &[String],
        rows: &[RelationRow],
    ) -> Result<()> {
        let stored: Vec<RelationRow> = if origins.is_empty() {
            Vec::new()
        } else {
            self.fetch_batched(
                "SELECT origin_ref, source_ref, type, target_ref, target_display \
                 FROM relations WHERE origin_ref = ANY($1)",
                origins,
                |q| q,
                decode,
            )
            .await?
        };
        let wanted: HashSet<&RelationRow> = rows.iter().collect();
        let redo: HashSet<&str> = stored
            .iter()
            .filter(|r| !wanted.contains(r))
            .map(|r| r.origin_ref.as_str())
            .collect();
        let kept: HashSet<&RelationRow> = stored
            .iter()
            .filter(|r| !redo.contains(r.origin_ref.as_str()))
            .collect();
        if !redo.is_empty() {
            let redo: Vec<String> = redo.into_iter().map(str::to_string).collect();
            self.execute_batched(
                "DELETE FROM relations WHERE origin_ref = ANY($1)",
                &redo,
                |q| q,
            )
            .await?;
        }
        if kept.is_empty() {
            return self.insert(&RELATIONS, rows, Utc::now()).await;
        }
        let new: Vec<RelationRow> = rows.iter().filter(|r| !kept.contains(r)).cloned().collect();
        self.insert(&RELATIONS, &new, Utc::now()).await
    }

    /// Appends to the change log, in the order given.
    pub async fn insert_changes(&mut self, rows: &[ChangeWrite], now: DateTime<Utc>) -> Result<()> {
        self.insert(&CHANGES, rows, now).await
    }

    /// Runs inserts built ahead (see [`Writes`]), in the order they were added.
    pub async fn run(&mut self, writes: Writes) -> Result<()> {
        for built in writes.built {
            self.run_built(built).await?;
        }
        Ok(())
    }

    /// Records a deletion the guard refused.
    pub async fn insert_refusal(&mut self, r: &RefusalRow, now: DateTime<Utc>) -> Result<()> {
        let q = sql(
            self.backend(),
            "INSERT INTO refusals (run_id, at, source, scope, kind, live, would_delete, max_ratio) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
        );
        self.query(q)
            .bind(&r.run_id)
            .bind(now)
            .bind(&r.source)
            .bind(&r.scope)
            .bind(&r.kind)
            .bind(r.live)
            .bind(r.would_delete)
            .bind(r.max_ratio)
            .execute()
            .await?;
        Ok(())
    }
}

impl Store {
    /// Records the start of a run.
    pub async fn insert_run(
        &self,
        id: &str,
        connector: &str,
        started_at: DateTime<Utc>,
    ) -> Result<()> {
        self.execute_alone(
            "INSERT INTO runs (id, connector, started_at, status) VALUES ($1, $2, $3, 'running')",
            |q| q.bind(id).bind(connector).bind(started_at),
        )
        .await?;
        Ok(())
    }

    /// Records the end of a run.
    pub async fn finish_run(
        &self,
        id: &str,
        status: &str,
        outcome: &serde_json::Value,
        counts: &serde_json::Value,
        error: Option<&str>,
        finished_at: DateTime<Utc>,
    ) -> Result<()> {
        self.execute_alone(
            "UPDATE runs SET finished_at = $1, status = $2, outcome = $3::jsonb, \
             counts = $4::jsonb, error = $5 WHERE id = $6",
            |q| {
                q.bind(finished_at)
                    .bind(status)
                    .bind(outcome.to_string())
                    .bind(counts.to_string())
                    .bind(error)
                    .bind(id)
            },
        )
        .await?;
        Ok(())
    }

    /// Marks runs of `connector` left `running` by a process that died as `abandoned`, unless
    /// someone holds the connector's lease: a live lease means its run may be going on (a
    /// leased run's predecessors were abandoned when the lease was taken, see
    /// [`Store::try_lease`]). Their writes were rolled back with their transactions; only the
    /// run rows remain.
    pub async fn abandon_stale_runs(&self, connector: &str, now: DateTime<Utc>) -> Result<u64> {
        self.execute_alone(
            "UPDATE runs SET status = 'abandoned', finished_at = $1, \
             error = 'the process running it stopped before it finished' \
             WHERE connector = $2 AND status = 'running' \
             AND NOT EXISTS (SELECT 1 FROM leases WHERE name = $2 AND expires_at > $1)",
            |q| q.bind(now).bind(connector),
        )
        .await
    }

    /// Refreshes the planner's statistics after a large change (an initial load, a big
    /// deletion). Without them SQLite plans `kind = ? AND owner = ?` by scanning the kind.
    pub async fn refresh_statistics(&self) -> Result<()> {
        let mut tx = self.begin().await?;
        let statements: &[&'static str] = match tx.backend() {
            Backend::Sqlite => &["ANALYZE"],
            Backend::Postgres => &[
                "ANALYZE entities",
                "ANALYZE relations",
                "ANALYZE observations",
            ],
        };
        for statement in statements {
            tx.query(*statement).execute().await?;
        }
        tx.commit().await
    }

    /// Removes tombstones (and deleted observations) older than `before`. History stays.
    pub async fn purge_tombstones(&self, before: DateTime<Utc>) -> Result<(u64, u64)> {
        let mut tx = self.begin().await?;
        let backend = tx.backend();
        let rel = sql(
            backend,
            "DELETE FROM relations WHERE origin_ref IN \
             (SELECT entity_ref FROM entities WHERE deleted_at IS NOT NULL AND deleted_at < $1)",
        );
        let ent = sql(
            backend,
            "DELETE FROM entities WHERE deleted_at IS NOT NULL AND deleted_at < $1",
        );
        let obs = sql(
            backend,
            "DELETE FROM observations WHERE deleted_at IS NOT NULL AND deleted_at < $1",
        );
        tx.query(rel).bind(before).execute().await?;
        let e = tx.query(ent).bind(before).execute().await?;
        let o = tx.query(obs).bind(before).execute().await?;
        tx.commit().await?;
        Ok((e, o))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn observation(source: &str, external_id: &str) -> ObservationWrite {
        ObservationWrite {
            source: source.into(),
            external_id: external_id.into(),
            scope: "org".into(),
            entity_ref: format!("component:default/{external_id}"),
            kind: "component".into(),
            declared: false,
            hash: "h".into(),
            body: "{}".into(),
            run_id: "r".into(),
        }
    }

    /// A SQLite catalog, and a Postgres one in a schema of its own when the test database is set.
    async fn stores() -> Vec<(Store, Option<String>, Option<tempfile::TempDir>)> {
        let dir = tempfile::tempdir().expect("dir");
        let url = format!("sqlite://{}", dir.path().join("c.db").display());
        let mut out = vec![(Store::connect(&url).await.expect("open"), None, Some(dir))];
        if let Ok(url) = std::env::var("SURVEYOR_TEST_DATABASE_URL") {
            let (store, schema) = crate::store_in_new_schema(&url, "t_writes").await;
            out.push((store, Some(schema), None));
        }
        out
    }

    #[tokio::test]
    async fn another_sources_rows_and_the_newest_change_are_seen() {
        for (store, schema, _dir) in stores().await {
            let mut tx = store.begin_write().await.expect("begin");
            assert!(!tx.holds_anything().await.expect("empty"));
            assert!(!tx.others_observed("a").await.expect("empty"));
            let mut writes = Writes::new(&store, Utc::now());
            writes.observations(&[observation("b", "x")]);
            tx.run(writes).await.expect("built inserts run");
            assert!(tx.holds_anything().await.expect("anything"));
            assert!(tx.others_observed("a").await.expect("b sorts after a"));
            assert!(tx.others_observed("c").await.expect("b sorts before c"));
            assert!(!tx.others_observed("b").await.expect("its own"));
            assert_eq!(tx.last_change_seq().await.expect("an empty log"), 0);
            let change = ChangeWrite {
                run_id: "r".into(),
                source: "b".into(),
                entity_uid: "u".into(),
                entity_ref: "component:default/x".into(),
                previous_ref: None,
                op: crate::ChangeOp::Created,
                patch: "[]".into(),
            };
            let mut writes = Writes::new(&store, Utc::now());
            writes.changes(&[change.clone(), change]);
            tx.run(writes).await.expect("changes");
            let seq = tx.last_change_seq().await.expect("two rows");
            assert!(seq >= 2, "{seq}");
            tx.rollback().await.expect("rollback");
            if let Some(schema) = schema {
                store.drop_schema(&schema).await.expect("drop");
            }
            store.close().await;
        }
    }

    fn relation(origin: &str, target: &str, display: &str) -> RelationRow {
        RelationRow {
            origin_ref: origin.into(),
            source_ref: origin.into(),
            kind: "dependsOn".into(),
            target_ref: target.into(),
            target_display: display.into(),
        }
    }

    /// Each stored relation row with the row version the database gave it (SQLite's rowid,
    /// Postgres's `xmin`): a row deleted and inserted again gets a new one.
    async fn versions(tx: &mut StoreTx) -> Vec<(RelationRow, String)> {
        let version = match tx.backend() {
            Backend::Sqlite => "CAST(rowid AS TEXT)",
            Backend::Postgres => "xmin::text",
        };
        let text = format!(
            "SELECT origin_ref, source_ref, type, target_ref, target_display, {version} AS v \
             FROM relations ORDER BY origin_ref, target_ref"
        );
        tx.query(text)
            .fetch_all(|r| Ok((decode(r)?, r.get("v")?)))
            .await
            .expect("relations")
    }

    #[tokio::test]
    async fn relations_are_replaced_by_what_differs() {
        for (store, schema, _dir) in stores().await {
            let mut tx = store.begin_write().await.expect("begin");
            let (a, b, c) = (
                "component:default/a",
                "component:default/b",
                "component:default/c",
            );
            let first = vec![
                relation(a, "x", "X"),
                relation(a, "y", "Y"),
                relation(b, "x", "X"),
                relation(c, "x", "X"),
            ];
            tx.replace_relations(&[], &first).await.expect("first");
            tx.commit().await.expect("commit");
            let before = {
                let mut tx = store.begin_write().await.expect("begin");
                versions(&mut tx).await
            };
            let mut tx = store.begin_write().await.expect("begin");
            // a gains z; b's x shows another display; c loses its row; d is new.
            let d = "component:default/d";
            let second = vec![
                relation(a, "x", "X"),
                relation(a, "y", "Y"),
                relation(a, "z", "Z"),
                relation(b, "x", "X2"),
                relation(d, "x", "X"),
            ];
            tx.replace_relations(&[a.into(), b.into(), c.into()], &second)
                .await
                .expect("second");
            let after = versions(&mut tx).await;
            let rows: Vec<RelationRow> = after.iter().map(|(r, _)| r.clone()).collect();
            let mut wanted = second.clone();
            wanted.sort_by(|l, r| {
                (&l.origin_ref, &l.target_ref).cmp(&(&r.origin_ref, &r.target_ref))
            });
            assert_eq!(rows, wanted, "exactly the wanted rows are stored");
            for (row, version) in &before {
                if row.origin_ref == a {
                    let now = after.iter().find(|(r, _)| r == row).map(|(_, v)| v);
                    assert_eq!(
                        now,
                        Some(version),
                        "{row:?} was kept as it was, not written again"
                    );
                }
            }
            tx.rollback().await.expect("rollback");
            if let Some(schema) = schema {
                store.drop_schema(&schema).await.expect("drop");
            }
            store.close().await;
        }
    }
}
