//! Writes, all inside a `StoreTx`: observations, entities, relations, changes, runs, refusals.
//! Rows go in multi-row statements so a 100k-entity load is a few hundred round trips.

use chrono::{DateTime, Utc};
use sqlx::{QueryBuilder, Row};

use crate::sql::{StrList, sql};
use crate::{
    Backend, ChangeWrite, LiveObservationRow, ObservationWrite, RefusalRow, RelationRow, Result,
    Store, StoreTx, on_tx,
};

/// Rows per multi-row statement: well under both backends' bind-parameter limits.
const BATCH: usize = 500;

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

fn json_cast(backend: Backend) -> &'static str {
    match backend {
        Backend::Postgres => "::jsonb",
        Backend::Sqlite => "",
    }
}

impl StoreTx {
    /// Inserts or revives observations.
    pub async fn upsert_observations(&mut self, rows: &[ObservationWrite]) -> Result<()> {
        let cast = json_cast(self.backend());
        for chunk in rows.chunks(BATCH) {
            on_tx!(self, conn => {
                let mut qb = QueryBuilder::new(
                    "INSERT INTO observations (source, external_id, scope, entity_ref, kind, declared, hash, body, first_run, changed_run) ",
                );
                qb.push_values(chunk, |mut b, r| {
                    b.push_bind(r.source.clone())
                        .push_bind(r.external_id.clone())
                        .push_bind(r.scope.clone())
                        .push_bind(r.entity_ref.clone())
                        .push_bind(r.kind.clone())
                        .push_bind(r.declared)
                        .push_bind(r.hash.clone())
                        .push_bind(r.body.clone())
                        .push_unseparated(cast)
                        .push_bind(r.run_id.clone())
                        .push_bind(r.run_id.clone());
                });
                qb.push(
                    " ON CONFLICT (source, external_id) DO UPDATE SET scope = excluded.scope, \
                     entity_ref = excluded.entity_ref, kind = excluded.kind, declared = excluded.declared, \
                     hash = excluded.hash, body = excluded.body, changed_run = excluded.changed_run, \
                     deleted_at = NULL, deleted_run = NULL",
                );
                qb.build().execute(conn).await?;
            });
        }
        Ok(())
    }

    /// Soft-deletes observations of one source.
    pub async fn delete_observations(
        &mut self,
        source: &str,
        external_ids: &[String],
        run_id: &str,
        now: DateTime<Utc>,
    ) -> Result<()> {
        let q = sql(
            self.backend(),
            "UPDATE observations SET deleted_at = $1, deleted_run = $2 WHERE source = $3 AND external_id = ANY($4)",
        );
        for chunk in external_ids.chunks(BATCH * 4) {
            on_tx!(self, conn => {
                            sqlx::query(sqlx::AssertSqlSafe(q.0.clone()))
            .persistent(false)
                                .bind(now)
                                .bind(run_id)
                                .bind(source)
                                .bind(StrList(chunk.to_vec()))
                                .execute(conn)
                                .await?;
                        });
        }
        Ok(())
    }

    /// Live observations (of any source) describing any of `refs`.
    pub async fn live_observations(&mut self, refs: &[String]) -> Result<Vec<LiveObservationRow>> {
        let q = sql(
            self.backend(),
            "SELECT source, external_id, entity_ref, declared, hash FROM observations \
             WHERE entity_ref = ANY($1) AND deleted_at IS NULL",
        );
        let mut out = Vec::new();
        for chunk in refs.chunks(BATCH * 4) {
            on_tx!(self, conn => {
                            let rows = sqlx::query(sqlx::AssertSqlSafe(q.0.clone()))
            .persistent(false)
                                .bind(StrList(chunk.to_vec()))
                                .fetch_all(conn)
                                .await?;
                            for r in rows {
                                out.push(LiveObservationRow {
                                    source: r.try_get("source")?,
                                    external_id: r.try_get("external_id")?,
                                    entity_ref: r.try_get("entity_ref")?,
                                    declared: r.try_get("declared")?,
                                    hash: r.try_get("hash")?,
                                });
                            }
                        });
        }
        Ok(out)
    }

    /// Bodies of some observations of one source, as (external_id, body).
    pub async fn observation_bodies(
        &mut self,
        source: &str,
        external_ids: &[String],
    ) -> Result<Vec<(String, String)>> {
        let q = sql(
            self.backend(),
            "SELECT external_id, body::text AS body FROM observations WHERE source = $1 AND external_id = ANY($2)",
        );
        let mut out = Vec::new();
        for chunk in external_ids.chunks(BATCH * 4) {
            on_tx!(self, conn => {
                            let rows = sqlx::query(sqlx::AssertSqlSafe(q.0.clone()))
            .persistent(false)
                                .bind(source)
                                .bind(StrList(chunk.to_vec()))
                                .fetch_all(conn)
                                .await?;
                            for r in rows {
                                out.push((r.try_get("external_id")?, r.try_get("body")?));
                            }
                        });
        }
        Ok(out)
    }

    /// Entity rows (live or tombstones) for the given keys.
    pub async fn entities_by_refs(&mut self, refs: &[String]) -> Result<Vec<crate::EntityRow>> {
        let q = sql(
            self.backend(),
            "SELECT uid, entity_ref, display_ref, kind, namespace, name, body::text AS body, hash, \
             sources::text AS sources, meta_hash, created_at, updated_at, deleted_at, deleted_run \
             FROM entities WHERE entity_ref = ANY($1)",
        );
        let mut out = Vec::new();
        for chunk in refs.chunks(BATCH * 4) {
            on_tx!(self, conn => {
                            let rows = sqlx::query(sqlx::AssertSqlSafe(q.0.clone()))
            .persistent(false)
                                .bind(StrList(chunk.to_vec()))
                                .fetch_all(conn)
                                .await?;
                            for r in rows {
                                out.push(crate::read::entity_from_row(&r)?);
                            }
                        });
        }
        Ok(out)
    }

    /// Inserts entities, or updates them in place by uid (reviving tombstones).
    pub async fn upsert_entities(
        &mut self,
        rows: &[EntityWrite],
        now: DateTime<Utc>,
    ) -> Result<()> {
        let cast = json_cast(self.backend());
        for chunk in rows.chunks(BATCH) {
            on_tx!(self, conn => {
                let mut qb = QueryBuilder::new(
                    "INSERT INTO entities (uid, entity_ref, display_ref, kind, namespace, name, body, hash, sources, meta_hash, created_at, updated_at) ",
                );
                qb.push_values(chunk, |mut b, r| {
                    b.push_bind(r.uid.clone())
                        .push_bind(r.entity_ref.clone())
                        .push_bind(r.display_ref.clone())
                        .push_bind(r.kind.clone())
                        .push_bind(r.namespace.clone())
                        .push_bind(r.name.clone())
                        .push_bind(r.body.clone())
                        .push_unseparated(cast)
                        .push_bind(r.hash.clone())
                        .push_bind(r.sources.clone())
                        .push_unseparated(cast)
                        .push_bind(r.meta_hash.clone())
                        .push_bind(now)
                        .push_bind(now);
                });
                qb.push(
                    " ON CONFLICT (uid) DO UPDATE SET entity_ref = excluded.entity_ref, \
                     display_ref = excluded.display_ref, kind = excluded.kind, namespace = excluded.namespace, \
                     name = excluded.name, body = excluded.body, hash = excluded.hash, sources = excluded.sources, \
                     meta_hash = excluded.meta_hash, updated_at = excluded.updated_at, deleted_at = NULL, deleted_run = NULL",
                );
                qb.build().execute(conn).await?;
            });
        }
        Ok(())
    }

    /// Marks entities deleted (the rows stay as tombstones until purged).
    pub async fn tombstone_entities(
        &mut self,
        uids: &[String],
        run_id: &str,
        now: DateTime<Utc>,
    ) -> Result<()> {
        let q = sql(
            self.backend(),
            "UPDATE entities SET deleted_at = $1, deleted_run = $2, updated_at = $1 WHERE uid = ANY($3)",
        );
        for chunk in uids.chunks(BATCH * 4) {
            on_tx!(self, conn => {
                            sqlx::query(sqlx::AssertSqlSafe(q.0.clone()))
            .persistent(false)
                                .bind(now)
                                .bind(run_id)
                                .bind(StrList(chunk.to_vec()))
                                .execute(conn)
                                .await?;
                        });
        }
        Ok(())
    }

    /// Removes entity rows outright (tombstones that give their name to a renamed entity; their
    /// history stays in the change log under their uid).
    pub async fn delete_entity_rows(&mut self, uids: &[String]) -> Result<()> {
        if uids.is_empty() {
            return Ok(());
        }
        let q = sql(self.backend(), "DELETE FROM entities WHERE uid = ANY($1)");
        for chunk in uids.chunks(BATCH * 4) {
            on_tx!(self, conn => {
                            sqlx::query(sqlx::AssertSqlSafe(q.0.clone()))
            .persistent(false)
                                .bind(StrList(chunk.to_vec()))
                                .execute(conn)
                                .await?;
                        });
        }
        Ok(())
    }

    /// Replaces every relation row that `origins` produced with `rows`.
    pub async fn replace_relations(
        &mut self,
        origins: &[String],
        rows: &[RelationRow],
    ) -> Result<()> {
        let q = sql(
            self.backend(),
            "DELETE FROM relations WHERE origin_ref = ANY($1)",
        );
        for chunk in origins.chunks(BATCH * 4) {
            on_tx!(self, conn => {
                            sqlx::query(sqlx::AssertSqlSafe(q.0.clone()))
            .persistent(false)
                                .bind(StrList(chunk.to_vec()))
                                .execute(conn)
                                .await?;
                        });
        }
        for chunk in rows.chunks(BATCH) {
            on_tx!(self, conn => {
                let mut qb = QueryBuilder::new(
                    "INSERT INTO relations (origin_ref, source_ref, type, target_ref, target_display) ",
                );
                qb.push_values(chunk, |mut b, r| {
                    b.push_bind(r.origin_ref.clone())
                        .push_bind(r.source_ref.clone())
                        .push_bind(r.kind.clone())
                        .push_bind(r.target_ref.clone())
                        .push_bind(r.target_display.clone());
                });
                qb.push(" ON CONFLICT DO NOTHING");
                qb.build().execute(conn).await?;
            });
        }
        Ok(())
    }

    /// Appends to the change log, in the order given.
    pub async fn insert_changes(&mut self, rows: &[ChangeWrite], now: DateTime<Utc>) -> Result<()> {
        let cast = json_cast(self.backend());
        for chunk in rows.chunks(BATCH) {
            on_tx!(self, conn => {
                let mut qb = QueryBuilder::new(
                    "INSERT INTO changes (at, run_id, source, entity_uid, entity_ref, previous_ref, op, patch) ",
                );
                qb.push_values(chunk, |mut b, r| {
                    b.push_bind(now)
                        .push_bind(r.run_id.clone())
                        .push_bind(r.source.clone())
                        .push_bind(r.entity_uid.clone())
                        .push_bind(r.entity_ref.clone())
                        .push_bind(r.previous_ref.clone())
                        .push_bind(r.op.as_str())
                        .push_bind(r.patch.clone())
                        .push_unseparated(cast);
                });
                qb.build().execute(conn).await?;
            });
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
        on_tx!(self, conn => {
            sqlx::query(q)
                .bind(&r.run_id)
                .bind(now)
                .bind(&r.source)
                .bind(&r.scope)
                .bind(&r.kind)
                .bind(r.live)
                .bind(r.would_delete)
                .bind(r.max_ratio)
                .execute(conn)
                .await?;
        });
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
        let mut tx = self.begin().await?;
        let q = sql(
            tx.backend(),
            "INSERT INTO runs (id, connector, started_at, status) VALUES ($1, $2, $3, 'running')",
        );
        on_tx!(&mut tx, conn => {
            sqlx::query(q).bind(id).bind(connector).bind(started_at).execute(conn).await?;
        });
        tx.commit().await
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
        let mut tx = self.begin().await?;
        let q = sql(
            tx.backend(),
            "UPDATE runs SET finished_at = $1, status = $2, outcome = $3::jsonb, counts = $4::jsonb, error = $5 WHERE id = $6",
        );
        on_tx!(&mut tx, conn => {
            sqlx::query(q)
                .bind(finished_at)
                .bind(status)
                .bind(outcome.to_string())
                .bind(counts.to_string())
                .bind(error)
                .bind(id)
                .execute(conn)
                .await?;
        });
        tx.commit().await
    }

    /// Marks runs of `connector` left `running` by a process that died as `abandoned`.
    /// Their writes were rolled back with their transactions; only the run rows remain.
    pub async fn abandon_stale_runs(&self, connector: &str, now: DateTime<Utc>) -> Result<u64> {
        let mut tx = self.begin().await?;
        let q = sql(
            tx.backend(),
            "UPDATE runs SET status = 'abandoned', finished_at = $1, \
             error = 'the process running it stopped before it finished' \
             WHERE connector = $2 AND status = 'running'",
        );
        let n = on_tx!(&mut tx, conn => {
            sqlx::query(q).bind(now).bind(connector).execute(conn).await?.rows_affected()
        });
        tx.commit().await?;
        Ok(n)
    }

    /// Refreshes the planner's statistics after a large change (an initial load, a big
    /// deletion). Without them SQLite plans `kind = ? AND owner = ?` by scanning the kind.
    pub async fn refresh_statistics(&self) -> Result<()> {
        let mut tx = self.begin().await?;
        match tx.backend() {
            crate::Backend::Sqlite => on_tx!(&mut tx, conn => {
                sqlx::query("ANALYZE").execute(&mut *conn).await?;
            }),
            crate::Backend::Postgres => on_tx!(&mut tx, conn => {
                for table in ["ANALYZE entities", "ANALYZE relations", "ANALYZE observations"] {
                    sqlx::query(table).execute(&mut *conn).await?;
                }
            }),
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
        let (e, o) = on_tx!(&mut tx, conn => {
            sqlx::query(rel).bind(before).execute(&mut *conn).await?;
            let e = sqlx::query(ent).bind(before).execute(&mut *conn).await?.rows_affected();
            let o = sqlx::query(obs).bind(before).execute(&mut *conn).await?.rows_affected();
            (e, o)
        });
        tx.commit().await?;
        Ok((e, o))
    }
}
