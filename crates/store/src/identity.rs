//! The identity-key index: which live observations carry which identity annotation or verified
//! email, so the engine can find every holder of a key across sources in one query.

use sqlx::{QueryBuilder, Row};

use crate::sql::{StrList, sql};
use crate::{Result, StoreTx, on_tx};

/// Rows per multi-row statement.
const BATCH: usize = 500;

/// One identity key held by one observation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IdentityKeyRow {
    pub key: String,
    pub source: String,
    pub external_id: String,
    /// The ref the observation names itself (before identity resolution).
    pub own_ref: String,
    pub declared: bool,
}

/// A holder of a key, with the ref its observation is filed under now.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IdentityHolder {
    pub key: IdentityKeyRow,
    /// The observation's current `entity_ref` (its resolved ref).
    pub filed_under: String,
}

impl StoreTx {
    /// Clears the keys and aliases of some observations of one source, then stores `rows`: the
    /// keys of those observations and of ones that never had any.
    pub async fn replace_identity_keys(
        &mut self,
        source: &str,
        external_ids: &[String],
        rows: &[IdentityKeyRow],
    ) -> Result<()> {
        for text in [
            "DELETE FROM identity_keys WHERE source = $1 AND external_id = ANY($2)",
            "DELETE FROM identity_aliases WHERE source = $1 AND external_id = ANY($2)",
        ] {
            let q = sql(self.backend(), text);
            for chunk in external_ids.chunks(BATCH * 4) {
                on_tx!(self, conn => {
                                    sqlx::query(sqlx::AssertSqlSafe(q.0.clone()))
                .persistent(false)
                                        .bind(source)
                                        .bind(StrList(chunk.to_vec()))
                                        .execute(conn)
                                        .await?;
                                });
            }
        }
        for chunk in rows.chunks(BATCH) {
            on_tx!(self, conn => {
                let mut qb = QueryBuilder::new(
                    "INSERT INTO identity_keys (source, external_id, key, own_ref, declared) ",
                );
                qb.push_values(chunk, |mut b, r| {
                    b.push_bind(r.source.clone())
                        .push_bind(r.external_id.clone())
                        .push_bind(r.key.clone())
                        .push_bind(r.own_ref.clone())
                        .push_bind(r.declared);
                });
                qb.push(" ON CONFLICT (source, external_id, key) DO NOTHING");
                qb.build().execute(conn).await?;
            });
        }
        Ok(())
    }

    /// The keys some observations of one source hold now.
    pub async fn identity_keys_of(
        &mut self,
        source: &str,
        external_ids: &[String],
    ) -> Result<Vec<IdentityKeyRow>> {
        let q = sql(
            self.backend(),
            "SELECT key, source, external_id, own_ref, declared FROM identity_keys \
             WHERE source = $1 AND external_id = ANY($2)",
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
                                out.push(IdentityKeyRow {
                                    key: r.try_get("key")?,
                                    source: r.try_get("source")?,
                                    external_id: r.try_get("external_id")?,
                                    own_ref: r.try_get("own_ref")?,
                                    declared: r.try_get("declared")?,
                                });
                            }
                        });
        }
        Ok(out)
    }

    /// The aliases some observations of one source hold now: (external id, alias, entity).
    pub async fn identity_aliases_of(
        &mut self,
        source: &str,
        external_ids: &[String],
    ) -> Result<Vec<(String, String, String)>> {
        let q = sql(
            self.backend(),
            "SELECT external_id, alias_ref, entity_ref FROM identity_aliases \
             WHERE source = $1 AND external_id = ANY($2)",
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
                                out.push((
                                    r.try_get("external_id")?,
                                    r.try_get("alias_ref")?,
                                    r.try_get("entity_ref")?,
                                ));
                            }
                        });
        }
        Ok(out)
    }

    /// Every live observation holding any of `keys`, with the ref it is filed under.
    pub async fn identity_holders(&mut self, keys: &[String]) -> Result<Vec<IdentityHolder>> {
        let q = sql(
            self.backend(),
            "SELECT k.key, k.source, k.external_id, k.own_ref, k.declared, o.entity_ref \
             FROM identity_keys k JOIN observations o \
               ON o.source = k.source AND o.external_id = k.external_id \
             WHERE k.key = ANY($1) AND o.deleted_at IS NULL",
        );
        let mut out = Vec::new();
        for chunk in keys.chunks(BATCH * 4) {
            on_tx!(self, conn => {
                            let rows = sqlx::query(sqlx::AssertSqlSafe(q.0.clone()))
            .persistent(false)
                                .bind(StrList(chunk.to_vec()))
                                .fetch_all(conn)
                                .await?;
                            for r in rows {
                                out.push(IdentityHolder {
                                    key: IdentityKeyRow {
                                        key: r.try_get("key")?,
                                        source: r.try_get("source")?,
                                        external_id: r.try_get("external_id")?,
                                        own_ref: r.try_get("own_ref")?,
                                        declared: r.try_get("declared")?,
                                    },
                                    filed_under: r.try_get("entity_ref")?,
                                });
                            }
                        });
        }
        Ok(out)
    }

    /// Files some observations of one source under other refs (identity resolution moved
    /// them), given as (external id, own ref, new ref), and records which own names are now
    /// aliases of another entity.
    pub async fn refile_observations(
        &mut self,
        source: &str,
        moves: &[(String, String, String)],
    ) -> Result<()> {
        let update = sql(
            self.backend(),
            "UPDATE observations SET entity_ref = $1 WHERE source = $2 AND external_id = $3",
        );
        let unalias = sql(
            self.backend(),
            "DELETE FROM identity_aliases WHERE source = $1 AND external_id = $2",
        );
        let alias = sql(
            self.backend(),
            "INSERT INTO identity_aliases (source, external_id, alias_ref, entity_ref) \
             VALUES ($1, $2, $3, $4) ON CONFLICT DO NOTHING",
        );
        for (external_id, own_ref, entity_ref) in moves {
            on_tx!(self, conn => {
                sqlx::query(sqlx::AssertSqlSafe(update.0.clone()))
                    .bind(entity_ref)
                    .bind(source)
                    .bind(external_id)
                    .execute(&mut *conn)
                    .await?;
                sqlx::query(sqlx::AssertSqlSafe(unalias.0.clone()))
                    .bind(source)
                    .bind(external_id)
                    .execute(&mut *conn)
                    .await?;
                if own_ref != entity_ref {
                    sqlx::query(sqlx::AssertSqlSafe(alias.0.clone()))
                        .bind(source)
                        .bind(external_id)
                        .bind(own_ref)
                        .bind(entity_ref)
                        .execute(&mut *conn)
                        .await?;
                }
            });
        }
        Ok(())
    }

    /// Records names that mean another entity, as (source, external id, alias ref, entity
    /// ref); they go with the observation's keys in [`Self::replace_identity_keys`].
    pub async fn add_identity_aliases(
        &mut self,
        rows: &[(String, String, String, String)],
    ) -> Result<()> {
        for chunk in rows.chunks(BATCH) {
            on_tx!(self, conn => {
                let mut qb = QueryBuilder::new(
                    "INSERT INTO identity_aliases (source, external_id, alias_ref, entity_ref) ",
                );
                qb.push_values(chunk, |mut b, r| {
                    b.push_bind(r.0.clone())
                        .push_bind(r.1.clone())
                        .push_bind(r.2.clone())
                        .push_bind(r.3.clone());
                });
                qb.push(" ON CONFLICT DO NOTHING");
                qb.build().execute(conn).await?;
            });
        }
        Ok(())
    }

    /// For refs among `refs` that name no live observation of their own but are an alias of
    /// another entity: (alias, the entity's ref).
    pub async fn identity_aliases(&mut self, refs: &[String]) -> Result<Vec<(String, String)>> {
        let q = sql(
            self.backend(),
            "SELECT DISTINCT a.alias_ref, a.entity_ref FROM identity_aliases a \
             WHERE a.alias_ref = ANY($1) AND NOT EXISTS (SELECT 1 FROM observations o \
               WHERE o.entity_ref = a.alias_ref AND o.deleted_at IS NULL)",
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
                                out.push((r.try_get("alias_ref")?, r.try_get("entity_ref")?));
                            }
                        });
        }
        Ok(out)
    }

    /// Entities with a relation to any of `refs` (their origin rows).
    pub async fn relation_origins_targeting(&mut self, refs: &[String]) -> Result<Vec<String>> {
        let q = sql(
            self.backend(),
            "SELECT DISTINCT origin_ref FROM relations WHERE target_ref = ANY($1)",
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
                                out.push(r.try_get("origin_ref")?);
                            }
                        });
        }
        Ok(out)
    }
}
