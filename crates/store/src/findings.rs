//! Audit findings with a history: each time the audits run, findings still present are seen
//! again, new ones open and those gone are resolved — so drift and gaps have first/last seen.
//! A finding is its (rule, entity, message): a disagreement on another field is another one.
//! The console reads them a page at a time, with counts per rule and per owner ([`FindingFilter`]).

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
    /// The entity's kind as displayed (`Component`).
    pub kind: String,
    pub severity: String,
    pub message: String,
    /// The owner ref key involved (`group:default/team-a`), when there is one.
    pub owner: Option<String>,
    /// Who said what, when: a JSON array of `{source, said, at}`.
    pub evidence: String,
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
    /// `None` for findings recorded before kinds were kept.
    pub kind: Option<String>,
    pub owner: Option<String>,
    /// JSON text as [`FindingRecord::evidence`]; `None` for findings recorded before it was kept.
    pub evidence: Option<String>,
}

const FINDING_COLUMNS: &str = "id, audit, rule, entity_ref, severity, message, first_seen, \
     last_seen, resolved_at, kind, owner, evidence";

/// Which findings a listing covers, by whether they still hold.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum FindingStatus {
    /// Still found by the last recording.
    #[default]
    Open,
    /// Gone since (with the time they went).
    Resolved,
    All,
}

/// Filters for [`Store::list_findings`] and the counts beside it. Every value is bound.
#[derive(Debug, Clone, Default)]
pub struct FindingFilter {
    /// `ownership` or `drift`.
    pub audit: String,
    pub status: FindingStatus,
    pub rule: Option<String>,
    /// An owner ref key (`group:default/team-a`), compared exactly.
    pub owner: Option<String>,
    /// `low`, `medium` or `high`.
    pub severity: Option<String>,
    /// A case-insensitive substring of the entity's ref; LIKE's wildcards match literally.
    pub entity: Option<String>,
    /// Findings with an id above this one (the cursor: pages go by id, oldest first).
    pub after_id: Option<i64>,
    pub limit: Option<i64>,
}

impl FindingFilter {
    /// The `WHERE` (cursor and limit left out) and its text parameters, `$1`, `$2`, ... in
    /// order. Only fixed SQL fragments are spliced.
    fn conditions(&self) -> (String, Vec<String>) {
        let mut params = vec![self.audit.clone()];
        let mut conds = vec!["audit = $1".to_string()];
        match self.status {
            FindingStatus::Open => conds.push("resolved_at IS NULL".into()),
            FindingStatus::Resolved => conds.push("resolved_at IS NOT NULL".into()),
            FindingStatus::All => {}
        }
        let mut eq = |column: &str, v: &Option<String>, conds: &mut Vec<String>| {
            if let Some(v) = v {
                params.push(v.clone());
                conds.push(format!("{column} = ${}", params.len()));
            }
        };
        eq("rule", &self.rule, &mut conds);
        eq("owner", &self.owner, &mut conds);
        eq("severity", &self.severity, &mut conds);
        if let Some(q) = self.entity.as_deref().filter(|q| !q.is_empty()) {
            params.push(format!(
                "%{}%",
                crate::read::like_escaped(&q.to_lowercase())
            ));
            conds.push(format!(
                "lower(entity_ref) LIKE ${} ESCAPE '\\'",
                params.len()
            ));
        }
        (conds.join(" AND "), params)
    }
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
        let open = self.open_keys(audit).await?;
        let mut delta = FindingsDelta::default();
        let mut tx = self.begin_write().await?;
        let backend = tx.backend();
        let seen = sql(
            backend,
            "UPDATE findings SET last_seen = $1, severity = $2, kind = $3, owner = $4, \
             evidence = $5 WHERE id = $6",
        );
        let insert = sql(
            backend,
            "INSERT INTO findings (audit, rule, entity_ref, severity, message, first_seen, \
             last_seen, kind, owner, evidence) VALUES ($1, $2, $3, $4, $5, $6, $6, $7, $8, $9)",
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
                        .bind(&f.kind)
                        .bind(&f.owner)
                        .bind(&f.evidence)
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
                        .bind(&f.kind)
                        .bind(&f.owner)
                        .bind(&f.evidence)
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

    /// The open findings' keys, as recording matches them (their evidence is not needed).
    async fn open_keys(&self, audit: &str) -> Result<Vec<OpenKey>> {
        let q = sql(
            self.backend(),
            "SELECT id, rule, entity_ref, message FROM findings \
             WHERE audit = $1 AND resolved_at IS NULL ORDER BY id",
        );
        self.query(q).bind(audit).fetch_all(decode).await
    }

    /// (entity ref, rule, message) of every open finding of these rules, any audit: what a
    /// check that needs a rule's finding absent reads, without the evidence.
    pub async fn open_finding_messages(
        &self,
        rules: &[String],
    ) -> Result<Vec<(String, String, String)>> {
        if rules.is_empty() {
            return Ok(Vec::new());
        }
        let marks: Vec<String> = (1..=rules.len()).map(|i| format!("${i}")).collect();
        let mut q = self.query(format!(
            "SELECT entity_ref, rule, message FROM findings \
             WHERE resolved_at IS NULL AND rule IN ({})",
            marks.join(", ")
        ));
        for r in rules {
            q = q.bind(r.clone());
        }
        q.fetch_all(|r| Ok((r.get(0)?, r.get(1)?, r.get(2)?))).await
    }

    /// Open findings of one audit.
    pub async fn open_findings(&self, audit: &str) -> Result<Vec<FindingRow>> {
        self.findings(audit, false).await
    }

    /// Findings of one audit, oldest first; resolved ones too when `include_resolved`.
    pub async fn findings(&self, audit: &str, include_resolved: bool) -> Result<Vec<FindingRow>> {
        let text = format!(
            "SELECT {FINDING_COLUMNS} FROM findings WHERE audit = $1 \
             AND ($2 OR resolved_at IS NULL) ORDER BY id"
        );
        self.query(text)
            .bind(audit)
            .bind(include_resolved)
            .fetch_all(decode)
            .await
    }

    /// A page of the findings `f` matches, by id (oldest first): those after `f.after_id`, at
    /// most `f.limit`. Keyset paging by id needs no sort when one rule or owner is asked for
    /// (the index lists equal keys in id order on SQLite), and stays stable while recording
    /// appends.
    pub async fn list_findings(&self, f: &FindingFilter) -> Result<Vec<FindingRow>> {
        let (where_, params) = f.conditions();
        let text = format!(
            "SELECT {FINDING_COLUMNS} FROM findings WHERE {where_} AND id > ${} \
             ORDER BY id LIMIT ${}",
            params.len() + 1,
            params.len() + 2
        );
        let mut q = self.query(text);
        for p in params {
            q = q.bind(p);
        }
        q.bind(f.after_id.unwrap_or(0))
            .bind(f.limit.unwrap_or(i64::MAX))
            .fetch_all(decode)
            .await
    }

    /// How many findings `f` matches per rule, by rule (its cursor and limit ignored). A
    /// caller that lists every rule's count clears `f.rule` first.
    pub async fn count_findings_by_rule(&self, f: &FindingFilter) -> Result<Vec<(String, i64)>> {
        let (where_, params) = f.conditions();
        let text = format!(
            "SELECT rule, COUNT(*) FROM findings WHERE {where_} GROUP BY rule ORDER BY rule"
        );
        let mut q = self.query(text);
        for p in params {
            q = q.bind(p);
        }
        q.fetch_all(|r| Ok((r.get(0)?, r.get(1)?))).await
    }

    /// How many findings `f` matches per owner (`None`: no owner involved), the `top` largest
    /// first, ties by owner (its cursor and limit ignored).
    pub async fn count_findings_by_owner(
        &self,
        f: &FindingFilter,
        top: i64,
    ) -> Result<Vec<(Option<String>, i64)>> {
        let (where_, params) = f.conditions();
        let text = format!(
            "SELECT owner, COUNT(*) AS n FROM findings WHERE {where_} GROUP BY owner \
             ORDER BY n DESC, owner IS NULL, owner LIMIT ${}",
            params.len() + 1
        );
        let mut q = self.query(text);
        for p in params {
            q = q.bind(p);
        }
        q.bind(top).fetch_all(|r| Ok((r.get(0)?, r.get(1)?))).await
    }

    /// When findings were last recorded, as far as they tell: the latest time one was seen or
    /// resolved (none when no finding was ever recorded).
    pub async fn findings_recorded_at(&self) -> Result<Option<DateTime<Utc>>> {
        let seen = self
            .query("SELECT last_seen FROM findings ORDER BY last_seen DESC LIMIT 1")
            .fetch_optional(|r| r.get::<DateTime<Utc>>(0))
            .await?;
        let resolved = self
            .query(
                "SELECT resolved_at FROM findings WHERE resolved_at IS NOT NULL \
                 ORDER BY resolved_at DESC LIMIT 1",
            )
            .fetch_optional(|r| r.get::<DateTime<Utc>>(0))
            .await?;
        Ok(seen.max(resolved))
    }

    /// Whether any finding of `audit` was ever recorded.
    pub async fn any_findings(&self, audit: &str) -> Result<bool> {
        let q = "SELECT id FROM findings WHERE audit = $1 LIMIT 1";
        Ok(self
            .query(q)
            .bind(audit)
            .fetch_optional(|r| r.get::<i64>(0))
            .await?
            .is_some())
    }
}

/// What recording matches an open finding by.
#[derive(Debug, sqlx::FromRow)]
struct OpenKey {
    id: i64,
    rule: String,
    entity_ref: String,
    message: String,
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ConnectOptions;

    /// SQLite, and Postgres (a schema of its own) when `SURVEYOR_TEST_DATABASE_URL` is set.
    async fn stores(name: &str) -> Vec<(Store, Option<String>)> {
        let mut out = vec![(
            Store::connect("sqlite::memory:").await.expect("sqlite"),
            None,
        )];
        match std::env::var("SURVEYOR_TEST_DATABASE_URL") {
            Ok(url) => {
                let schema = format!("t_{name}_{}", uuid::Uuid::now_v7().simple());
                let store = Store::connect_with(
                    &url,
                    ConnectOptions {
                        schema: Some(schema.clone()),
                    },
                )
                .await
                .expect("SURVEYOR_TEST_DATABASE_URL is set but Postgres is unusable");
                out.push((store, Some(schema)));
            }
            Err(_) => eprintln!("Postgres half skipped: SURVEYOR_TEST_DATABASE_URL is not set"),
        }
        out
    }

    async fn done(store: Store, schema: Option<String>) {
        if let Some(s) = schema {
            store.drop_schema(&s).await.expect("drop schema");
        }
        store.close().await;
    }

    fn at(hour: u32) -> DateTime<Utc> {
        use chrono::TimeZone;
        Utc.with_ymd_and_hms(2026, 12, 1, hour, 0, 0).unwrap()
    }

    fn record(rule: &str, entity: &str, severity: &str, owner: Option<&str>) -> FindingRecord {
        FindingRecord {
            rule: rule.into(),
            entity_ref: entity.into(),
            kind: "Component".into(),
            severity: severity.into(),
            message: format!("{rule} on {entity}"),
            owner: owner.map(str::to_string),
            evidence: format!(
                r#"[{{"source":"gh","said":"{severity}","at":"{}"}}]"#,
                at(1)
            ),
        }
    }

    fn filter(status: FindingStatus) -> FindingFilter {
        FindingFilter {
            audit: "ownership".into(),
            status,
            ..FindingFilter::default()
        }
    }

    fn refs(rows: &[FindingRow]) -> Vec<&str> {
        rows.iter().map(|r| r.entity_ref.as_str()).collect()
    }

    #[tokio::test]
    async fn recording_keeps_kind_owner_and_evidence_and_refreshes_them() {
        for (store, schema) in stores("record").await {
            let first = vec![
                record("no-owner", "component:default/a", "high", None),
                record(
                    "weak-owner",
                    "component:default/b",
                    "low",
                    Some("group:default/x"),
                ),
            ];
            store
                .record_findings("ownership", &first, at(1))
                .await
                .expect("record");
            // `b` is seen again with another owner and severity; `a` is gone.
            let mut again = record(
                "weak-owner",
                "component:default/b",
                "medium",
                Some("group:default/y"),
            );
            again.message = first[1].message.clone();
            let delta = store
                .record_findings("ownership", &[again.clone()], at(2))
                .await
                .expect("record");
            assert_eq!((delta.opened, delta.still_open, delta.resolved), (0, 1, 1));
            let rows = store.findings("ownership", true).await.expect("rows");
            assert_eq!(rows.len(), 2);
            assert_eq!(rows[0].resolved_at, Some(at(2)));
            assert_eq!(rows[0].owner, None);
            assert_eq!(rows[0].kind.as_deref(), Some("Component"));
            assert_eq!(rows[1].owner.as_deref(), Some("group:default/y"));
            assert_eq!(rows[1].severity, "medium");
            assert_eq!(rows[1].evidence.as_deref(), Some(again.evidence.as_str()));
            assert_eq!((rows[1].first_seen, rows[1].last_seen), (at(1), at(2)));
            done(store, schema).await;
        }
    }

    #[tokio::test]
    async fn findings_are_counted_per_rule_and_owner_and_paged_under_a_filter() {
        for (store, schema) in stores("pages").await {
            let mut current = Vec::new();
            for i in 0..7 {
                let owner = if i < 4 {
                    "group:default/x"
                } else {
                    "group:default/y"
                };
                current.push(record(
                    "weak-owner",
                    &format!("component:default/Svc_{i}"),
                    "low",
                    Some(owner),
                ));
            }
            current.push(record("no-owner", "component:default/lonely", "high", None));
            current.push(record("no-owner", "component:default/gone", "high", None));
            store
                .record_findings("ownership", &current, at(1))
                .await
                .expect("record");
            store
                .record_findings(
                    "drift",
                    &[record("disagreement", "component:default/d", "low", None)],
                    at(1),
                )
                .await
                .expect("record");
            current.pop();
            store
                .record_findings("ownership", &current, at(2))
                .await
                .expect("record");

            let open = filter(FindingStatus::Open);
            assert_eq!(
                store.count_findings_by_rule(&open).await.expect("counts"),
                [("no-owner".to_string(), 1), ("weak-owner".to_string(), 7)]
            );
            assert_eq!(
                store
                    .count_findings_by_owner(&open, 50)
                    .await
                    .expect("counts"),
                [
                    (Some("group:default/x".to_string()), 4),
                    (Some("group:default/y".to_string()), 3),
                    (None, 1)
                ]
            );
            assert_eq!(
                store
                    .count_findings_by_owner(&open, 1)
                    .await
                    .expect("top")
                    .len(),
                1
            );
            let resolved = filter(FindingStatus::Resolved);
            let gone = store.list_findings(&resolved).await.expect("resolved");
            assert_eq!(refs(&gone), ["component:default/gone"]);
            assert_eq!(gone[0].resolved_at, Some(at(2)));
            assert_eq!(
                store
                    .count_findings_by_rule(&filter(FindingStatus::All))
                    .await
                    .expect("all"),
                [("no-owner".to_string(), 2), ("weak-owner".to_string(), 7)]
            );

            // Pages of 3 by id, under a filter, until none is left.
            let mut f = FindingFilter {
                owner: Some("group:default/x".into()),
                limit: Some(3),
                ..open.clone()
            };
            let mut seen = Vec::new();
            loop {
                let page = store.list_findings(&f).await.expect("page");
                let Some(last) = page.last() else { break };
                f.after_id = Some(last.id);
                seen.extend(page.iter().map(|r| r.entity_ref.clone()));
            }
            assert_eq!(
                seen,
                [
                    "component:default/Svc_0",
                    "component:default/Svc_1",
                    "component:default/Svc_2",
                    "component:default/Svc_3"
                ]
            );

            // Rule, severity and a case-insensitive entity substring whose `_` is literal.
            let by =
                |rule: Option<&str>, severity: Option<&str>, entity: Option<&str>| FindingFilter {
                    rule: rule.map(str::to_string),
                    severity: severity.map(str::to_string),
                    entity: entity.map(str::to_string),
                    ..open.clone()
                };
            assert_eq!(
                store
                    .list_findings(&by(Some("no-owner"), None, None))
                    .await
                    .expect("rule")
                    .len(),
                1
            );
            assert_eq!(
                store
                    .list_findings(&by(None, Some("low"), None))
                    .await
                    .expect("sev")
                    .len(),
                7
            );
            assert_eq!(
                refs(
                    &store
                        .list_findings(&by(None, None, Some("SVC_6")))
                        .await
                        .expect("q")
                ),
                ["component:default/Svc_6"]
            );
            assert!(
                store
                    .list_findings(&by(None, None, Some("svc%")))
                    .await
                    .expect("q")
                    .is_empty()
            );
            // As a wildcard, `_` would match the `:` of `component:`.
            assert!(
                store
                    .list_findings(&by(None, None, Some("nt_")))
                    .await
                    .expect("q")
                    .is_empty()
            );
            assert_eq!(
                store
                    .count_findings_by_rule(&by(None, None, Some("svc")))
                    .await
                    .expect("q"),
                [("weak-owner".to_string(), 7)]
            );
            assert!(store.any_findings("drift").await.expect("any"));
            assert!(!store.any_findings("nothing").await.expect("any"));
            done(store, schema).await;
        }
    }
}
