//! SQLite's WAL checkpoints beside the writer instead of inside its commits: a commit only
//! notes how long the log is, and the next write starts the copy on a connection of its own.
//!
//! SQLite's automatic checkpoint runs inside the commit that takes the log past 1,000 pages, on
//! the writer's thread, and whatever waits for that commit waits for the copy too (3-4% of an
//! org's sync CPU, docs/benchmarks.md). Here the same bound starts a checkpoint that waits for
//! no one (`PASSIVE`) and that no one waits for. Writes back to back can leave SQLite no moment
//! to start the log over, so past [`WAIT_AT`] pages the next write waits for one checkpoint
//! first: the log stays bounded, as before, at a larger bound.

use std::ffi::{c_char, c_int, c_void};
use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use libsqlite3_sys as ffi;
use sqlx::sqlite::{SqliteConnectOptions, SqliteConnection, SqlitePool, SqlitePoolOptions};

/// Pages in the log after which a checkpoint starts: SQLite's own automatic bound.
pub(crate) const START_AT: u32 = 1_000;

/// Pages in the log after which the next write waits for a checkpoint first (64 MiB of 4 KiB
/// pages).
pub(crate) const WAIT_AT: u32 = 16_000;

/// The log's length as the writer's commits report it, and the connection that checkpoints.
#[derive(Debug)]
pub struct Checkpoints {
    wal: Arc<Wal>,
    /// One read-write connection (the readers are read-only, and a checkpoint writes the
    /// catalog file), opened when a checkpoint is first due and closed after a minute idle.
    pool: SqlitePool,
    /// One checkpoint at a time.
    running: tokio::sync::Mutex<()>,
}

/// What the writer connection's commit hook writes and the store reads.
#[derive(Debug, Default)]
pub(crate) struct Wal {
    /// Pages in the log after the last commit (counted since the log last started over).
    frames: AtomicU32,
    /// `frames` when the last checkpoint started.
    started_at: AtomicU32,
}

impl Checkpoints {
    /// Checkpoints for the database `opts` opens (its writer registers [`Checkpoints::hook`]).
    pub(crate) fn new(opts: &SqliteConnectOptions) -> Self {
        Self {
            wal: Arc::new(Wal::default()),
            pool: SqlitePoolOptions::new()
                .max_connections(1)
                .min_connections(0)
                .idle_timeout(Some(Duration::from_secs(60)))
                .connect_lazy_with(opts.clone()),
            running: tokio::sync::Mutex::new(()),
        }
    }

    /// Registers the commit hook on the writer connection: from now on its commits note the
    /// log's length and no longer checkpoint themselves.
    pub(crate) async fn hook(&self, conn: &mut SqliteConnection) -> Result<(), sqlx::Error> {
        // The connection may outlive the store (a pool closes its connections in the
        // background), so the hook owns one reference, never given back: a few bytes per
        // writer connection opened.
        let mut handle = conn.lock_handle().await?;
        let ctx = Arc::into_raw(Arc::clone(&self.wal)) as *mut c_void;
        // SAFETY: the handle is this connection's, locked for the call; `ctx` points to a `Wal`
        // that lives as long as the process (the reference above is never released), and
        // `on_commit` only reads it as one.
        unsafe {
            ffi::sqlite3_wal_hook(handle.as_raw_handle().as_ptr(), Some(on_commit), ctx);
        }
        Ok(())
    }

    /// Before a write transaction: starts a checkpoint if the log has grown by [`START_AT`]
    /// pages since the last one started, and waits for one if the log is past [`WAIT_AT`].
    pub(crate) async fn before_write(self: &Arc<Self>) {
        let frames = self.wal.frames.load(Ordering::Relaxed);
        let last = self.wal.started_at.load(Ordering::Relaxed);
        // A log that started over is shorter than it was when the last checkpoint started.
        let grown = if frames < last { frames } else { frames - last };
        if frames >= WAIT_AT {
            self.wal.started_at.store(frames, Ordering::Relaxed);
            self.run().await;
        } else if grown >= START_AT {
            self.wal.started_at.store(frames, Ordering::Relaxed);
            let this = Arc::clone(self);
            tokio::spawn(async move { this.run().await });
        }
    }

    /// Closes the checkpoint connection, if open.
    pub(crate) async fn close(&self) {
        self.pool.close().await;
    }

    /// One passive checkpoint: copies what it can without waiting for readers or the writer.
    /// A failure is logged: the next one copies what this one did not.
    async fn run(&self) {
        let _one = self.running.lock().await;
        if let Err(e) = sqlx::query("PRAGMA wal_checkpoint(PASSIVE)")
            .execute(&self.pool)
            .await
        {
            tracing::warn!(error = %e, "a SQLite checkpoint failed; the next write tries again");
        }
    }
}

/// The writer's commit hook: notes the log's length. SQLite calls it after each commit, with
/// the write lock released; returning `SQLITE_OK` is all it asks.
unsafe extern "C" fn on_commit(
    ctx: *mut c_void,
    _db: *mut ffi::sqlite3,
    _name: *const c_char,
    frames: c_int,
) -> c_int {
    // SAFETY: `ctx` is the `Wal` reference `Checkpoints::hook` gave this connection, never
    // released.
    let wal = unsafe { &*(ctx as *const Wal) };
    wal.frames
        .store(u32::try_from(frames).unwrap_or(0), Ordering::Relaxed);
    ffi::SQLITE_OK
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Store, StoreTx};

    /// The log's length and how much of it was copied back, from the WAL index SQLite keeps in
    /// the `-shm` file (its documented layout: `mxFrame` at byte 16 of the header, `nBackfill`
    /// at byte 96, native-endian).
    fn wal_index(db: &std::path::Path) -> (u32, u32) {
        let shm = std::fs::read(db.with_extension("db-shm")).expect("the WAL index");
        let word = |at: usize| u32::from_ne_bytes(shm[at..at + 4].try_into().expect("4 bytes"));
        (word(16), word(96))
    }

    /// Writes about 3,000 pages in one transaction.
    async fn write_pages(store: &Store) {
        let mut tx = store.begin_write().await.expect("begin");
        tx.query("CREATE TABLE IF NOT EXISTS scratch (x BLOB)")
            .execute()
            .await
            .expect("table");
        tx.query(
            "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 3000) \
             INSERT INTO scratch SELECT randomblob(3000) FROM n",
        )
        .execute()
        .await
        .expect("rows");
        tx.commit().await.expect("commit");
    }

    /// A SQLite catalog in a new directory, with about 3,000 pages written and committed.
    async fn written() -> (
        tempfile::TempDir,
        std::path::PathBuf,
        Store,
        Arc<Checkpoints>,
    ) {
        let dir = tempfile::tempdir().expect("dir");
        let db = dir.path().join("c.db");
        let store = Store::connect(&format!("sqlite://{}", db.display()))
            .await
            .expect("open");
        let Store::Sqlite {
            checkpoints: Some(c),
            ..
        } = &store
        else {
            panic!("a SQLite file has checkpoints");
        };
        let c = Arc::clone(c);
        write_pages(&store).await;
        (dir, db, store, c)
    }

    #[tokio::test]
    async fn commits_leave_the_log_to_a_checkpoint_beside_the_writer() {
        let (_dir, db, store, c) = written().await;
        let frames = c.wal.frames.load(Ordering::Relaxed);
        let (logged, copied) = wal_index(&db);
        assert!(
            frames >= START_AT && frames == logged,
            "{frames} noted, {logged} in the log"
        );
        // SQLite's own automatic checkpoint would have copied the log back in the commit.
        assert_eq!(copied, 0, "the commit copied nothing back");

        // The next transaction on the writer (any: a lease's renewal, say) starts one and does
        // not wait for it.
        let tx: StoreTx = store.begin().await.expect("begin");
        tx.rollback().await.expect("rollback");
        let mut copied = 0;
        for _ in 0..200 {
            copied = wal_index(&db).1;
            if copied > 0 {
                break;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        assert_eq!(
            copied, logged,
            "the checkpoint beside the writer copied the whole log"
        );
        store.close().await;
    }

    #[tokio::test]
    async fn a_log_past_the_bound_is_copied_back_before_the_next_write() {
        let (_dir, db, store, c) = written().await;
        // As if the log were past the bound: the next write waits for the checkpoint.
        c.wal.frames.store(WAIT_AT, Ordering::Relaxed);
        let tx = store.begin_write().await.expect("begin");
        let (logged, copied) = wal_index(&db);
        assert!(logged >= START_AT, "{logged}");
        assert_eq!(copied, logged, "copied back before the transaction began");
        tx.rollback().await.expect("rollback");
        store.close().await;
    }
}
