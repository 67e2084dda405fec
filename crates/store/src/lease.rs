//! Leases: the right to run one connector for one scheduled tick, shared by every process on
//! the database. Taking one is a single conditional upsert, so exactly one taker wins a tick.
//!
//! A lease lasts a short time and is renewed while its run goes on, so a process that dies is
//! replaced once its lease runs out. Taking a lease is also what ends a dead holder's run: the
//! taker marks the connector's runs still `running` as abandoned, in the same transaction.

use chrono::{DateTime, Utc};

use crate::rows::LeaseRow;
use crate::sql::sql;
use crate::{Result, Store};

impl Store {
    /// Takes `name`'s lease for the run scheduled at `tick`, until `expires_at`. Succeeds only
    /// if no run at or after `tick` has taken it, and nobody else holds an unexpired lease. A
    /// manual run uses the current time as its tick.
    ///
    /// On success, runs of `name` left `running` are marked abandoned: whoever ran them held
    /// this lease, and it has expired or was released (or it is this holder's own earlier run,
    /// dropped on a timeout).
    pub async fn try_lease(
        &self,
        name: &str,
        holder: &str,
        tick: DateTime<Utc>,
        expires_at: DateTime<Utc>,
        now: DateTime<Utc>,
    ) -> Result<bool> {
        // ON CONFLICT takes the row lock on Postgres: concurrent takers are serialised and the
        // WHERE is evaluated against the winner's row, so at most one sees it hold.
        let q = sql(
            self.backend(),
            "INSERT INTO leases (name, holder, tick, expires_at, taken_at) VALUES ($1, $2, $3, $4, $5) \
             ON CONFLICT (name) DO UPDATE SET holder = excluded.holder, tick = excluded.tick, \
             expires_at = excluded.expires_at, taken_at = excluded.taken_at \
             WHERE leases.tick < excluded.tick AND (leases.expires_at < $5 OR leases.holder = excluded.holder) \
             RETURNING holder",
        );
        let mut tx = self.begin().await?;
        let taken = tx
            .query(q)
            .bind(name)
            .bind(holder)
            .bind(tick)
            .bind(expires_at)
            .bind(now)
            .fetch_optional(|_| Ok(()))
            .await?
            .is_some();
        if taken {
            abandon_runs(&mut tx, name, now, "its lease ran out").await?;
        }
        tx.commit().await?;
        Ok(taken)
    }

    /// Takes over a lease whose holder is known to be dead (a process on this host that no
    /// longer exists), without waiting for it to run out. Only one taker can win: the update
    /// matches the dead holder's row. Marks the dead holder's runs abandoned, as
    /// [`Store::try_lease`] does.
    pub async fn take_over_lease(
        &self,
        name: &str,
        dead: &str,
        holder: &str,
        tick: DateTime<Utc>,
        expires_at: DateTime<Utc>,
        now: DateTime<Utc>,
    ) -> Result<bool> {
        let q = sql(
            self.backend(),
            "UPDATE leases SET holder = $3, tick = $4, expires_at = $5, taken_at = $6 \
             WHERE name = $1 AND holder = $2",
        );
        let mut tx = self.begin().await?;
        let taken = tx
            .query(q)
            .bind(name)
            .bind(dead)
            .bind(holder)
            .bind(tick)
            .bind(expires_at)
            .bind(now)
            .execute()
            .await?
            == 1;
        if taken {
            abandon_runs(&mut tx, name, now, "it is gone").await?;
        }
        tx.commit().await?;
        Ok(taken)
    }

    /// Extends a lease this holder has; false if it lost it (expired and taken by another).
    pub async fn renew_lease(
        &self,
        name: &str,
        holder: &str,
        expires_at: DateTime<Utc>,
    ) -> Result<bool> {
        let n = self
            .execute_alone(
                "UPDATE leases SET expires_at = $3 WHERE name = $1 AND holder = $2",
                |q| q.bind(name).bind(holder).bind(expires_at),
            )
            .await?;
        Ok(n == 1)
    }

    /// Gives a lease up at the end of a run (it stays recorded for its tick).
    pub async fn release_lease(&self, name: &str, holder: &str, now: DateTime<Utc>) -> Result<()> {
        self.execute_alone(
            "UPDATE leases SET expires_at = $3 WHERE name = $1 AND holder = $2",
            |q| q.bind(name).bind(holder).bind(now),
        )
        .await?;
        Ok(())
    }

    /// Every connector's lease as recorded (held or not: compare `expires_at` with the time).
    pub async fn leases(&self) -> Result<Vec<LeaseRow>> {
        self.query("SELECT name, holder, tick, taken_at, expires_at FROM leases ORDER BY name")
            .fetch_all(|r| {
                Ok(LeaseRow {
                    name: r.get("name")?,
                    holder: r.get("holder")?,
                    tick: r.get("tick")?,
                    taken_at: r.get("taken_at")?,
                    expires_at: r.get("expires_at")?,
                })
            })
            .await
    }
}

/// Marks `name`'s runs still `running` abandoned: a new holder has its lease, so whoever ran
/// them is gone (`why`).
async fn abandon_runs(
    tx: &mut crate::StoreTx,
    name: &str,
    now: DateTime<Utc>,
    why: &str,
) -> Result<()> {
    let q = sql(
        tx.backend(),
        "UPDATE runs SET status = 'abandoned', finished_at = $1, error = $3 \
         WHERE connector = $2 AND status = 'running'",
    );
    tx.query(q)
        .bind(now)
        .bind(name)
        .bind(format!(
            "the process running it stopped before it finished ({why})"
        ))
        .execute()
        .await?;
    Ok(())
}
