//! Audit findings with a history: each time the audits run, findings still present are seen
//! again, new ones open and those gone are resolved — so drift and gaps have first/last seen.
//! A finding is its (rule, entity, message): a disagreement on another field is another one.

use chrono::{DateTime, Utc};
use serde::Serialize;

use crate::query::decode;
use crate::sql::sql;
use crate::{Result, Store};

/// A finding as the audits computed it now.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FindingRecord {
    pub rule: String,
    pub entity_ref: String,
    pub severity: String,
    pub message: String,
}

/// A stored finding with its history.
#[derive(Debug, Clone, PartialEq, Serialize, sqlx::FromRow)]
#[serde(rename_all = "camelCase")]
pub struct FindingRow {
    pub id: i64,
    pub audit: String,
    pub rule: String,
    pub entity_ref: String,
    pub severity: String,
    pub message: String,
    pub first_seen: DateTime<Utc>,
    pub last_seen: DateTime<Utc>,
    pub resolved_at: Option<DateTime<Utc>>,
}

/// What recording changed.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct FindingsDelta {
    pub opened: u64,
    pub still_open: u64,
    pub resolved: u64,
}

impl Store {
    /// Records the findings of one audit (`drift`, `ownership`) as computed at `now`.
    pub async fn record_findings(
        &self,
        audit: &str,
        current: &[FindingRecord],
        now: DateTime<Utc>,
    ) -> Result<FindingsDelta> {
        let open = self.open_findings(audit).await?;
        let mut delta = FindingsDelta::default();
        let mut tx = self.begin_write().await?;
        let backend = tx.backend();
        let seen = sql(
            backend,
            "UPDATE findings SET last_seen = $1, severity = $2 WHERE id = $3",
        );
        let insert = sql(
            backend,
            "INSERT INTO findings (audit, rule, entity_ref, severity, message, first_seen, last_seen) \
             VALUES ($1, $2, $3, $4, $5, $6, $6)",
        );
        let resolve = sql(
            backend,
            "UPDATE findings SET resolved_at = $1 WHERE id = $2",
        );
        let mut still: std::collections::HashSet<i64> = std::collections::HashSet::new();
        // One entity can break one rule in several ways (a disagreement per field): the message
        // tells them apart.
        let index: std::collections::HashMap<(&str, &str, &str), i64> = open
            .iter()
            .map(|f| {
                (
                    (f.rule.as_str(), f.entity_ref.as_str(), f.message.as_str()),
                    f.id,
                )
            })
            .collect();
        for f in current {
            match index.get(&(f.rule.as_str(), f.entity_ref.as_str(), f.message.as_str())) {
                Some(id) if still.insert(*id) => {
                    delta.still_open += 1;
                    tx.query(seen.clone())
                        .bind(now)
                        .bind(&f.severity)
                        .bind(id)
                        .execute()
                        .await?;
                }
                Some(_) => {}
                None => {
                    delta.opened += 1;
                    tx.query(insert.clone())
                        .bind(audit)
                        .bind(&f.rule)
                        .bind(&f.entity_ref)
                        .bind(&f.severity)
                        .bind(&f.message)
                        .bind(now)
                        .execute()
                        .await?;
                }
            }
        }
        for f in open.iter().filter(|f| !still.contains(&f.id)) {
            delta.resolved += 1;
            tx.query(resolve.clone())
                .bind(now)
                .bind(f.id)
                .execute()
                .await?;
        }
        tx.commit().await?;
        Ok(delta)
    }

    /// Open findings of one audit.
    pub async fn open_findings(&self, audit: &str) -> Result<Vec<FindingRow>> {
        self.findings(audit, false).await
    }

    /// Findings of one audit, oldest first; resolved ones too when `include_resolved`.
    pub async fn findings(&self, audit: &str, include_resolved: bool) -> Result<Vec<FindingRow>> {
        let q = sql(
            self.backend(),
            "SELECT id, audit, rule, entity_ref, severity, message, first_seen, last_seen, resolved_at \
             FROM findings WHERE audit = $1 AND ($2 OR resolved_at IS NULL) ORDER BY id",
        );
        self.query(q)
            .bind(audit)
            .bind(include_resolved)
            .fetch_all(decode)
            .await
    }
}
