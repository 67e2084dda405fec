//! Scorecard results with their history: each graded entity's level and failing checks now, an
//! event for every check that turned from pass to fail (or back) with the run that caused it,
//! and a roll-up per owner and level each time one changed (the trend).

use std::collections::{BTreeMap, BTreeSet, HashMap};

use chrono::{DateTime, Utc};
use serde::Serialize;

use crate::query::decode;
use crate::sql::sql;
use crate::{Result, Store};

/// One entity's grade on one scorecard, as computed now.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScoreRecord {
    /// The entity's ref key.
    pub entity_ref: String,
    /// The owner's ref key, for roll-ups per team.
    pub owner: Option<String>,
    /// The highest level reached; `None` below the lowest.
    pub level: Option<String>,
    /// The checks it fails and why.
    pub failing: BTreeMap<String, String>,
}

/// A stored grade, with when its level was reached.
#[derive(Debug, Clone, PartialEq, Serialize, sqlx::FromRow)]
#[serde(rename_all = "camelCase")]
pub struct ScoreRow {
    pub scorecard: String,
    pub entity_ref: String,
    pub owner: Option<String>,
    pub level: Option<String>,
    /// JSON object: check name -> why it fails.
    pub failing: String,
    pub since: DateTime<Utc>,
}

/// A check that turned: `passed` is what it is now.
#[derive(Debug, Clone, PartialEq, Serialize, sqlx::FromRow)]
#[serde(rename_all = "camelCase")]
pub struct ScoreEventRow {
    pub id: i64,
    pub at: DateTime<Utc>,
    /// The newest run when the scorecards were graded: the run that caused the turn.
    pub run_id: Option<String>,
    pub scorecard: String,
    pub entity_ref: String,
    pub check_name: String,
    pub passed: bool,
    /// Why it fails (empty when it passes).
    pub detail: String,
}

/// How many entities an owner had at a level at a time ('' for no owner, or below every level).
#[derive(Debug, Clone, PartialEq, Serialize, sqlx::FromRow)]
#[serde(rename_all = "camelCase")]
pub struct TrendRow {
    pub at: DateTime<Utc>,
    pub scorecard: String,
    pub owner: String,
    pub level: String,
    pub entities: i64,
}

/// What recording one scorecard changed.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct ScoresDelta {
    pub graded: u64,
    /// Checks that passed before and fail now.
    pub turned_failing: u64,
    /// Checks that failed before and pass now.
    pub turned_passing: u64,
    /// Entities whose level changed (or that were graded for the first time).
    pub levels_changed: u64,
    /// Entities no longer graded (gone, or the scorecard no longer applies).
    pub dropped: u64,
}

const COLUMNS: &str = "scorecard, entity_ref, owner, level, failing, since";

fn failing_of(text: &str) -> BTreeMap<String, String> {
    serde_json::from_str(text).unwrap_or_default()
}

/// One scorecard's grading compared with what is stored, as it streams: the grades that are
/// new or changed (each changed one with what was stored), the roll-up, and what is left of
/// the stored grades (those no longer graded) once every entity was seen.
#[derive(Debug)]
pub struct ScoreChanges {
    pub scorecard: String,
    /// Per stored entity: a digest of its owner, level and failing checks.
    stored: HashMap<String, u64>,
    added: Vec<(ScoreRecord, String)>,
    changed: Vec<(ScoreRecord, String)>,
    rollup: BTreeMap<(String, String), i64>,
    graded: u64,
}

/// A digest of a grade's owner, level and failing checks (as stored JSON).
fn digest(owner: &Option<String>, level: &Option<String>, failing: &str) -> u64 {
    use std::hash::{Hash, Hasher};
    // Fixed keys: the same digest for the same grade within a process, all it is used for.
    let mut h = std::collections::hash_map::DefaultHasher::new();
    (owner, level, failing).hash(&mut h);
    h.finish()
}

impl ScoreChanges {
    /// Compares one grade with the stored one; only a difference is kept.
    pub fn see(&mut self, c: ScoreRecord) {
        self.graded += 1;
        *self
            .rollup
            .entry((
                c.owner.clone().unwrap_or_default(),
                c.level.clone().unwrap_or_default(),
            ))
            .or_default() += 1;
        let failing = serde_json::to_string(&c.failing).unwrap_or_else(|_| "{}".into());
        match self.stored.remove(&c.entity_ref) {
            // A first grade makes no event: its JSON is all that is written.
            None => self.added.push((
                ScoreRecord {
                    failing: BTreeMap::new(),
                    ..c
                },
                failing,
            )),
            Some(d) if d == digest(&c.owner, &c.level, &failing) => {}
            Some(_) => self.changed.push((c, failing)),
        }
    }
}

impl Store {
    /// What is stored of one scorecard, to compare a grading with as it streams.
    pub async fn score_changes(&self, scorecard: &str) -> Result<ScoreChanges> {
        const Q: &str = "SELECT entity_ref, owner, level, failing FROM scores WHERE scorecard = $1";
        // On SQLite stepped through its C API: a whole scorecard, without a hand-off per row.
        let raw = self
            .sqlite_read_long(|c| {
                let mut out = Vec::new();
                let params = [crate::sqlite_raw::Param::Text(scorecard.to_string())];
                let decode = |r: &crate::sqlite_raw::Row<'_>| {
                    let owner = r.text(1)?.map(str::to_owned);
                    let level = r.text(2)?.map(str::to_owned);
                    let d = digest(&owner, &level, r.text(3)?.unwrap_or_default());
                    Ok((r.string(0, "scores")?, d))
                };
                c.each(Q, &params, decode, |x| {
                    out.push(x);
                    Ok(())
                })?;
                Ok(out)
            })
            .await?;
        let stored: Vec<(String, u64)> = match raw {
            Some(rows) => rows,
            None => {
                self.query(Q)
                    .bind(scorecard)
                    .fetch_all(|r| {
                        let (owner, level): (Option<String>, Option<String>) =
                            (r.get(1)?, r.get(2)?);
                        let failing: String = r.get(3)?;
                        Ok((r.get(0)?, digest(&owner, &level, &failing)))
                    })
                    .await?
            }
        };
        Ok(ScoreChanges {
            scorecard: scorecard.to_string(),
            stored: stored.into_iter().collect(),
            added: Vec::new(),
            changed: Vec::new(),
            rollup: BTreeMap::new(),
            graded: 0,
        })
    }

    /// Records one scorecard's grades as computed at `now`: the grades by difference, an event
    /// per check that turned, and a trend point when the roll-up per owner and level changed.
    pub async fn record_scores(
        &self,
        scorecard: &str,
        current: &[ScoreRecord],
        now: DateTime<Utc>,
        run_id: Option<&str>,
    ) -> Result<ScoresDelta> {
        let mut changes = self.score_changes(scorecard).await?;
        for c in current {
            changes.see(c.clone());
        }
        self.apply_scores(changes, now, run_id).await
    }

    /// Writes what a grading changed (see [`Store::score_changes`]) in one transaction.
    pub async fn apply_scores(
        &self,
        changes: ScoreChanges,
        now: DateTime<Utc>,
        run_id: Option<&str>,
    ) -> Result<ScoresDelta> {
        let ScoreChanges {
            scorecard,
            stored,
            added,
            changed,
            rollup,
            graded,
        } = changes;
        let scorecard = scorecard.as_str();
        let latest = self.latest_trend(scorecard).await?;
        let mut delta = ScoresDelta {
            graded,
            ..ScoresDelta::default()
        };
        // What the changed grades were, read before the write begins: only they are needed whole.
        let refs: Vec<String> = changed.iter().map(|(c, _)| c.entity_ref.clone()).collect();
        let mut olds: HashMap<String, ScoreRow> = HashMap::new();
        for chunk in refs.chunks(500) {
            let marks: Vec<String> = (2..chunk.len() + 2).map(|i| format!("${i}")).collect();
            let mut q = self.query(format!(
                "SELECT {COLUMNS} FROM scores WHERE scorecard = $1 AND entity_ref IN ({})",
                marks.join(", ")
            ));
            q = q.bind(scorecard);
            for r in chunk {
                q = q.bind(r.clone());
            }
            for row in q.fetch_all(decode::<ScoreRow>).await? {
                olds.insert(row.entity_ref.clone(), row);
            }
        }
        let mut tx = self.begin_write().await?;
        let backend = tx.backend();
        let update = sql(
            backend,
            "UPDATE scores SET owner = $1, level = $2, failing = $3, since = $4 \
             WHERE scorecard = $5 AND entity_ref = $6",
        );
        let event = sql(
            backend,
            "INSERT INTO score_events (at, run_id, scorecard, entity_ref, check_name, passed, \
             detail) VALUES ($1, $2, $3, $4, $5, $6, $7)",
        );
        delta.levels_changed += added.len() as u64;
        tx.insert_values(
            "INSERT INTO scores (scorecard, entity_ref, owner, level, failing, since) ",
            &added,
            |b, (c, failing)| {
                b.bind(scorecard.to_string())
                    .bind(c.entity_ref.clone())
                    .bind(c.owner.clone())
                    .bind(c.level.clone())
                    .bind(failing.clone())
                    .bind(now);
            },
            "",
        )
        .await?;
        for (c, failing) in &changed {
            let Some(old) = olds.get(&c.entity_ref) else {
                continue;
            };
            let before = failing_of(&old.failing);
            let names: BTreeSet<&String> = before.keys().chain(c.failing.keys()).collect();
            for name in names {
                let (was, now_fails) = (before.contains_key(name), c.failing.get(name));
                if was == now_fails.is_some() {
                    continue;
                }
                if now_fails.is_some() {
                    delta.turned_failing += 1;
                } else {
                    delta.turned_passing += 1;
                }
                tx.query(event.clone())
                    .bind(now)
                    .bind(run_id)
                    .bind(scorecard)
                    .bind(&c.entity_ref)
                    .bind(name)
                    .bind(now_fails.is_none())
                    .bind(now_fails.cloned().unwrap_or_default())
                    .execute()
                    .await?;
            }
            let since = if old.level == c.level {
                old.since
            } else {
                delta.levels_changed += 1;
                now
            };
            tx.query(update.clone())
                .bind(&c.owner)
                .bind(&c.level)
                .bind(failing)
                .bind(since)
                .bind(scorecard)
                .bind(&c.entity_ref)
                .execute()
                .await?;
        }
        let drop = sql(
            backend,
            "DELETE FROM scores WHERE scorecard = $1 AND entity_ref = $2",
        );
        let mut gone: Vec<String> = stored.into_keys().collect();
        gone.sort();
        for entity in gone {
            delta.dropped += 1;
            tx.query(drop.clone())
                .bind(scorecard)
                .bind(entity)
                .execute()
                .await?;
        }
        if rollup != latest {
            let point = sql(
                backend,
                "INSERT INTO score_trend (at, scorecard, owner, level, entities) \
                 VALUES ($1, $2, $3, $4, $5)",
            );
            for ((owner, level), n) in &rollup {
                tx.query(point.clone())
                    .bind(now)
                    .bind(scorecard)
                    .bind(owner)
                    .bind(level)
                    .bind(*n)
                    .execute()
                    .await?;
            }
        }
        tx.commit().await?;
        Ok(delta)
    }

    /// The latest trend point of a scorecard: (owner, level) -> entities.
    async fn latest_trend(&self, scorecard: &str) -> Result<BTreeMap<(String, String), i64>> {
        let rows: Vec<TrendRow> = self
            .query(
                "SELECT at, scorecard, owner, level, entities FROM score_trend \
                 WHERE scorecard = $1 AND at = (SELECT MAX(at) FROM score_trend WHERE scorecard = $1)",
            )
            .bind(scorecard)
            .fetch_all(decode)
            .await?;
        Ok(rows
            .into_iter()
            .map(|r| ((r.owner, r.level), r.entities))
            .collect())
    }

    /// Removes the grades of scorecards not in `names` (no longer configured); their events and
    /// trend stay as history.
    pub async fn retain_scorecards(&self, names: &[String]) -> Result<u64> {
        let marks: Vec<String> = (1..=names.len()).map(|i| format!("${i}")).collect();
        let text = if names.is_empty() {
            "DELETE FROM scores".to_string()
        } else {
            format!(
                "DELETE FROM scores WHERE scorecard NOT IN ({})",
                marks.join(", ")
            )
        };
        let mut tx = self.begin_write().await?;
        let mut q = tx.query(text);
        for n in names {
            q = q.bind(n.clone());
        }
        let dropped = q.execute().await?;
        tx.commit().await?;
        Ok(dropped)
    }

    /// One scorecard's grades, by entity; only those of `owner` (a ref key) when given.
    pub async fn scores(&self, scorecard: &str, owner: Option<&str>) -> Result<Vec<ScoreRow>> {
        self.query(format!(
            "SELECT {COLUMNS} FROM scores WHERE scorecard = $1 AND ($2 IS NULL OR owner = $2) \
             ORDER BY entity_ref"
        ))
        .bind(scorecard)
        .bind(owner.map(str::to_ascii_lowercase))
        .fetch_all(decode)
        .await
    }

    /// One entity's grade on one scorecard, if it is graded there.
    pub async fn score_of(&self, scorecard: &str, entity: &str) -> Result<Option<ScoreRow>> {
        self.query(format!(
            "SELECT {COLUMNS} FROM scores WHERE scorecard = $1 AND entity_ref = $2"
        ))
        .bind(scorecard)
        .bind(entity.to_ascii_lowercase())
        .fetch_optional(decode)
        .await
    }

    /// Checks that turned, newest first: of one scorecard and one entity (a ref key) when given.
    pub async fn score_events(
        &self,
        scorecard: Option<&str>,
        entity: Option<&str>,
        limit: i64,
    ) -> Result<Vec<ScoreEventRow>> {
        self.query(
            "SELECT id, at, run_id, scorecard, entity_ref, check_name, passed, detail \
             FROM score_events WHERE ($1 IS NULL OR scorecard = $1) \
             AND ($2 IS NULL OR entity_ref = $2) ORDER BY id DESC LIMIT $3",
        )
        .bind(scorecard)
        .bind(entity.map(str::to_ascii_lowercase))
        .bind(limit)
        .fetch_all(decode)
        .await
    }

    /// A scorecard's trend: every point, oldest first.
    pub async fn score_trend(&self, scorecard: &str) -> Result<Vec<TrendRow>> {
        self.query(
            "SELECT at, scorecard, owner, level, entities FROM score_trend \
             WHERE scorecard = $1 ORDER BY at, owner, level",
        )
        .bind(scorecard)
        .fetch_all(decode)
        .await
    }
}
