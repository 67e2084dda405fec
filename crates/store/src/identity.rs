//! The identity-key index: which live observations carry which identity annotation or verified
//! email, so the engine can find every holder of a key across sources in one query.

use crate::query::{Insert, decode};
use crate::{Result, StoreTx};

/// One identity key held by one observation.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct IdentityKeyRow {
    pub key: String,
    pub source: String,
    pub external_id: String,
    /// The ref the observation names itself (before identity resolution).
    pub own_ref: String,
    pub declared: bool,
}

/// A holder of a key, with the ref its observation is filed under now.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct IdentityHolder {
    #[sqlx(flatten)]
    pub key: IdentityKeyRow,
    /// The observation's current `entity_ref` (its resolved ref).
    #[sqlx(rename = "entity_ref")]
    pub filed_under: String,
}

pub(crate) const IDENTITY_KEYS: Insert<IdentityKeyRow> = Insert {
    head: "INSERT INTO identity_keys (source, external_id, key, own_ref, declared) ",
    push: |b, r, _| {
        b.bind(r.source.clone())
            .bind(r.external_id.clone())
            .bind(r.key.clone())
            .bind(r.own_ref.clone())
            .bind(r.declared);
    },
    tail: " ON CONFLICT (source, external_id, key) DO NOTHING",
};

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
            self.execute_batched(text, external_ids, |q| q.bind(source))
                .await?;
        }
        self.insert(&IDENTITY_KEYS, rows, chrono::Utc::now()).await
    }

    /// The keys some observations of one source hold now.
    pub async fn identity_keys_of(
        &mut self,
        source: &str,
        external_ids: &[String],
    ) -> Result<Vec<IdentityKeyRow>> {
        self.fetch_batched(
            "SELECT key, source, external_id, own_ref, declared FROM identity_keys \
             WHERE source = $1 AND external_id = ANY($2)",
            external_ids,
            |q| q.bind(source),
            decode,
        )
        .await
    }

    /// The aliases some observations of one source hold now: (external id, alias, entity).
    pub async fn identity_aliases_of(
        &mut self,
        source: &str,
        external_ids: &[String],
    ) -> Result<Vec<(String, String, String)>> {
        self.fetch_batched(
            "SELECT external_id, alias_ref, entity_ref FROM identity_aliases \
             WHERE source = $1 AND external_id = ANY($2)",
            external_ids,
            |q| q.bind(source),
            |r| {
                Ok((
                    r.get("external_id")?,
                    r.get("alias_ref")?,
                    r.get("entity_ref")?,
                ))
            },
        )
        .await
    }

    /// Every live observation holding any of `keys`, with the ref it is filed under.
    pub async fn identity_holders(&mut self, keys: &[String]) -> Result<Vec<IdentityHolder>> {
        self.fetch_batched(
            "SELECT k.key, k.source, k.external_id, k.own_ref, k.declared, o.entity_ref \
             FROM identity_keys k JOIN observations o \
               ON o.source = k.source AND o.external_id = k.external_id \
             WHERE k.key = ANY($1) AND o.deleted_at IS NULL",
            keys,
            |q| q,
            decode,
        )
        .await
    }

    /// Files some observations of one source under other refs (identity resolution moved
    /// them), given as (external id, own ref, new ref), and records which own names are now
    /// aliases of another entity.
    pub async fn refile_observations(
        &mut self,
        source: &str,
        moves: &[(String, String, String)],
    ) -> Result<()> {
        // Three statements per batch, not three per move: a sync that files a few thousand
        // people under the entity another source names them by waited for each in turn.
        self.insert_values(
            "UPDATE observations SET entity_ref = v.column3 FROM (",
            moves,
            |b, (external_id, _, entity_ref)| {
                b.bind(source.to_string())
                    .bind(external_id.clone())
                    .bind(entity_ref.clone());
            },
            ") AS v WHERE observations.source = v.column1 \
             AND observations.external_id = v.column2",
        )
        .await?;
        let ids: Vec<String> = moves.iter().map(|m| m.0.clone()).collect();
        self.execute_batched(
            "DELETE FROM identity_aliases WHERE source = $1 AND external_id = ANY($2)",
            &ids,
            |q| q.bind(source),
        )
        .await?;
        let aliases: Vec<(String, String, String, String)> = moves
            .iter()
            .filter(|(_, own_ref, entity_ref)| own_ref != entity_ref)
            .map(|(external_id, own_ref, entity_ref)| {
                (
                    source.to_string(),
                    external_id.clone(),
                    own_ref.clone(),
                    entity_ref.clone(),
                )
            })
            .collect();
        self.add_identity_aliases(&aliases).await
    }

    /// Records names that mean another entity, as (source, external id, alias ref, entity
    /// ref); they go with the observation's keys in [`Self::replace_identity_keys`].
    pub async fn add_identity_aliases(
        &mut self,
        rows: &[(String, String, String, String)],
    ) -> Result<()> {
        self.insert_values(
            "INSERT INTO identity_aliases (source, external_id, alias_ref, entity_ref) ",
            rows,
            |b, r| {
                b.bind(r.0.clone())
                    .bind(r.1.clone())
                    .bind(r.2.clone())
                    .bind(r.3.clone());
            },
            " ON CONFLICT DO NOTHING",
        )
        .await
    }

    /// For refs among `refs` that name no live observation of their own but are an alias of
    /// another entity: (alias, the entity's ref).
    pub async fn identity_aliases(&mut self, refs: &[String]) -> Result<Vec<(String, String)>> {
        const ALIASES: &str = "SELECT DISTINCT a.alias_ref, a.entity_ref FROM identity_aliases a \
             WHERE a.alias_ref = ANY($1) AND NOT EXISTS (SELECT 1 FROM observations o \
               WHERE o.entity_ref = a.alias_ref AND o.deleted_at IS NULL)";
        const T: &str = "identity_aliases";
        let raw = |r: &crate::sqlite_raw::Row<'_>| Ok((r.string(0, T)?, r.string(1, T)?));
        let decode = |r: crate::query::RowRef<'_>| Ok((r.get("alias_ref")?, r.get("entity_ref")?));
        self.read_batched(ALIASES, &[], refs, raw, decode).await
    }

    /// Entities with a relation to any of `refs` (their origin rows).
    pub async fn relation_origins_targeting(&mut self, refs: &[String]) -> Result<Vec<String>> {
        self.fetch_batched(
            "SELECT DISTINCT origin_ref FROM relations WHERE target_ref = ANY($1)",
            refs,
            |q| q,
            |r| r.get("origin_ref"),
        )
        .await
    }
}
