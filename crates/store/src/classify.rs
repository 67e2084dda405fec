//! Each Component's classification (tier, stack, runtime, lifecycle, domain, system) with its
//! evidence: recorded after each sync by difference, so a value keeps the time it was first given.

use std::collections::HashMap;

use chrono::{DateTime, Utc};
use serde::Serialize;

use crate::query::decode;
use crate::sql::sql;
use crate::{Result, Store};

/// One value of one facet of an entity, as classification gave it now.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Classification {
    /// The entity's ref key (`component:default/checkout`).
    pub entity_ref: String,
    pub facet: String,
    pub value: String,
    /// Declared by a source (an annotation, `spec.lifecycle` in a descriptor), not derived.
    pub declared: bool,
    /// Which source said what: a JSON array of `{source, said}`.
    pub evidence: String,
}

/// A stored classification, with when its value was first given.
#[derive(Debug, Clone, PartialEq, Serialize, sqlx::FromRow)]
#[serde(rename_all = "camelCase")]
pub struct ClassificationRow {
    pub entity_ref: String,
    pub facet: String,
    pub value: String,
    pub declared: bool,
    /// JSON text, as [`Classification::evidence`].
    pub evidence: String,
    pub since: DateTime<Utc>,
}

/// What recording changed.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct ClassificationsDelta {
    /// Values given now that were not before.
    pub added: u64,
    /// Values kept whose evidence or declaration changed.
    pub updated: u64,
    /// Values no longer given.
    pub removed: u64,
    pub unchanged: u64,
}

const COLUMNS: &str = "entity_ref, facet, value, declared, evidence, since";

/// A stored classification's key as one string (`ref`, facet, value joined by U+001F).
pub type ClassificationKey = String;

impl Classification {
    /// Its key, as [`Store::classification_digests`] lists them.
    pub fn key(&self) -> ClassificationKey {
        key_of(&self.entity_ref, &self.facet, &self.value)
    }

    /// A digest of what it holds besides its key (declared, evidence).
    pub fn digest(&self) -> u64 {
        digest_of(self.declared, &self.evidence)
    }
}

fn key_of(entity_ref: &str, facet: &str, value: &str) -> ClassificationKey {
    format!("{entity_ref}\u{1f}{facet}\u{1f}{value}")
}

fn digest_of(declared: bool, evidence: &str) -> u64 {
    use std::hash::{Hash, Hasher};
    // Fixed keys: the same digest for the same content within a process, all it is used for.
    let mut h = std::collections::hash_map::DefaultHasher::new();
    declared.hash(&mut h);
    evidence.hash(&mut h);
    h.finish()
}

/// A classification compared with what is stored, as it streams ([`Store::classification_changes`]):
/// the stored values are held as keys and digests, and only the values that are new or changed
/// are kept; what is left of the stored ones once every value was seen is no longer given.
#[derive(Debug, Default)]
pub struct ClassificationChanges {
    stored: HashMap<ClassificationKey, u64>,
    added: Vec<Classification>,
    updated: Vec<Classification>,
    unchanged: u64,
}

impl ClassificationChanges {
    /// Compares one value with the stored one; only a difference is kept.
    pub fn see(&mut self, c: Classification) {
        match self.stored.remove(&c.key()) {
            None => self.added.push(c),
            Some(d) if d == c.digest() => self.unchanged += 1,
            Some(_) => self.updated.push(c),
        }
    }
}

impl Store {
    /// What is stored, to compare a classification with as it streams.
    pub async fn classification_changes(&self) -> Result<ClassificationChanges> {
        Ok(ClassificationChanges {
            stored: self.classification_digests().await?,
            ..ClassificationChanges::default()
        })
    }

    /// Every stored classification's key with the digest of the rest.
    async fn classification_digests(&self) -> Result<HashMap<ClassificationKey, u64>> {
        const Q: &str = "SELECT entity_ref, facet, value, declared, evidence FROM classifications";
        // On SQLite stepped through its C API: the whole table, without a hand-off per row.
        let raw = self
            .sqlite_read_long(|c| {
                let mut out = HashMap::new();
                let decode = |r: &crate::sqlite_raw::Row<'_>| {
                    let key = key_of(
                        r.text(0)?.unwrap_or_default(),
                        r.text(1)?.unwrap_or_default(),
                        r.text(2)?.unwrap_or_default(),
                    );
                    Ok((
                        key,
                        digest_of(r.int(3) != 0, r.text(4)?.unwrap_or_default()),
                    ))
                };
                c.each(Q, &[], decode, |(k, d)| {
                    out.insert(k, d);
                    Ok(())
                })?;
                Ok(out)
            })
            .await?;
        if let Some(digests) = raw {
            return Ok(digests);
        }
        self.query(Q)
            .fetch_all(|r| {
                let (e, f, v): (String, String, String) = (r.get(0)?, r.get(1)?, r.get(2)?);
                let declared: bool = r.get(3)?;
                let evidence: String = r.get(4)?;
                Ok((key_of(&e, &f, &v), digest_of(declared, &evidence)))
            })
            .await
            .map(|rows| rows.into_iter().collect())
    }

    /// Writes what a classification changed (see [`Store::classification_changes`]) in one
    /// transaction: values added get `since = now`, the stored values it did not see go.
    pub async fn apply_classifications(
        &self,
        changes: ClassificationChanges,
        now: DateTime<Utc>,
    ) -> Result<ClassificationsDelta> {
        let mut removed: Vec<ClassificationKey> = changes.stored.into_keys().collect();
        removed.sort();
        let mut tx = self.begin_write().await?;
        let backend = tx.backend();
        let update = sql(
            backend,
            "UPDATE classifications SET declared = $1, evidence = $2 \
             WHERE entity_ref = $3 AND facet = $4 AND value = $5",
        );
        let delete = sql(
            backend,
            "DELETE FROM classifications WHERE entity_ref = $1 AND facet = $2 AND value = $3",
        );
        tx.insert_values(
            "INSERT INTO classifications (entity_ref, facet, value, declared, evidence, since) ",
            &changes.added,
            |b, c| {
                b.bind(c.entity_ref.clone())
                    .bind(c.facet.clone())
                    .bind(c.value.clone())
                    .bind(c.declared)
                    .bind(c.evidence.clone())
                    .bind(now);
            },
            "",
        )
        .await?;
        for c in &changes.updated {
            tx.query(update.clone())
                .bind(c.declared)
                .bind(&c.evidence)
                .bind(&c.entity_ref)
                .bind(&c.facet)
                .bind(&c.value)
                .execute()
                .await?;
        }
        for key in &removed {
            let mut parts = key.splitn(3, '\u{1f}');
            let (Some(e), Some(f), Some(v)) = (parts.next(), parts.next(), parts.next()) else {
                continue;
            };
            tx.query(delete.clone())
                .bind(e)
                .bind(f)
                .bind(v)
                .execute()
                .await?;
        }
        tx.commit().await?;
        Ok(ClassificationsDelta {
            added: changes.added.len() as u64,
            updated: changes.updated.len() as u64,
            removed: removed.len() as u64,
            unchanged: changes.unchanged,
        })
    }

    /// Replaces the stored classifications with `current` (every entity's, as computed at
    /// `now`), writing only the difference in one transaction.
    pub async fn record_classifications(
        &self,
        current: &[Classification],
        now: DateTime<Utc>,
    ) -> Result<ClassificationsDelta> {
        let mut changes = self.classification_changes().await?;
        for c in current {
            changes.see(c.clone());
        }
        self.apply_classifications(changes, now).await
    }

    /// One entity's classifications (by ref key), by facet and value.
    pub async fn classifications_of(&self, entity_ref: &str) -> Result<Vec<ClassificationRow>> {
        self.query(format!(
            "SELECT {COLUMNS} FROM classifications WHERE entity_ref = $1 ORDER BY facet, value"
        ))
        .bind(entity_ref.to_ascii_lowercase())
        .fetch_all(decode)
        .await
    }

    /// Every classification of the entities in `refs` (ref keys), by entity, facet and value.
    pub async fn classifications_of_many(&self, refs: &[String]) -> Result<Vec<ClassificationRow>> {
        let mut out = Vec::new();
        for chunk in refs.chunks(500) {
            let marks: Vec<String> = (1..=chunk.len()).map(|i| format!("${i}")).collect();
            let mut q = self.query(format!(
                "SELECT {COLUMNS} FROM classifications WHERE entity_ref IN ({}) \
                 ORDER BY entity_ref, facet, value",
                marks.join(", ")
            ));
            for r in chunk {
                q = q.bind(r.to_ascii_lowercase());
            }
            out.extend(q.fetch_all(decode).await?);
        }
        Ok(out)
    }

    /// Every (entity ref key, value) of `facet`.
    pub async fn classification_values(&self, facet: &str) -> Result<Vec<(String, String)>> {
        self.query("SELECT entity_ref, value FROM classifications WHERE facet = $1")
            .bind(facet)
            .fetch_all(|r| Ok((r.get(0)?, r.get(1)?)))
            .await
    }

    /// How many entities have each value of `facet`, most first, ties by value.
    pub async fn count_classifications(&self, facet: &str) -> Result<Vec<(String, i64)>> {
        self.query(
            "SELECT value, COUNT(*) AS n FROM classifications WHERE facet = $1 \
             GROUP BY value ORDER BY n DESC, value",
        )
        .bind(facet)
        .fetch_all(|r| Ok((r.get(0)?, r.get(1)?)))
        .await
    }
}
