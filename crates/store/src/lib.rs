//! surveyor's catalog store: one API over SQLite and Postgres (two concrete sqlx pools, runtime
//! queries, embedded migrations). It knows rows and transactions, nothing of connectors.

mod checkpoint;
mod classify;
mod copy;
mod findings;
mod identity;
mod lease;
mod nodelay;
mod query;
mod read;
mod rows;
mod score;
mod sql;
mod sqlite_raw;
mod sqlite_setup;
mod write;

use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

use sqlx::ConnectOptions as _;
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};
use sqlx::{PgPool, Postgres, Sqlite, SqlitePool, Transaction};

pub use classify::{
    Classification, ClassificationChanges, ClassificationKey, ClassificationRow,
    ClassificationsDelta,
};
pub use copy::{Cell, CopyCounts, TableDump};
pub use findings::{FindingFilter, FindingRecord, FindingRow, FindingStatus, FindingsDelta};
pub use identity::{IdentityHolder, IdentityKeyRow};
pub use read::{CatalogStats, ChangeFilter, EntityFilter, PackageFilter, TableCounts};
pub use rows::*;
pub use score::{ScoreChanges, ScoreEventRow, ScoreRecord, ScoreRow, ScoresDelta, TrendRow};
pub use write::{EntityWrite, Writes};

/// Store failures. Messages never contain connection strings (they may carry passwords).
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("unsupported database URL (expected sqlite://... or postgres://...)")]
    UnsupportedUrl,
    #[error("invalid database URL: {0}")]
    BadUrl(String),
    #[error("cannot open the catalog database: {0}")]
    Connect(String),
    #[error("database migration failed: {0}")]
    Migrate(String),
    #[error("database error: {0}")]
    Db(#[from] sqlx::Error),
    /// An error SQLite returned to a read made through its C API.
    #[error("database error: {message} (SQLite code {code})")]
    Sqlite { code: i32, message: String },
    #[error("corrupt row in {table}: {detail}")]
    Corrupt { table: &'static str, detail: String },
    /// A request the store cannot express (a malformed facet path, say).
    #[error("{0}")]
    Invalid(String),
}

pub type Result<T, E = StoreError> = std::result::Result<T, E>;

/// Which database a store talks to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

/// sqlx times a statement until its last row is taken, so a whole table streamed to a consumer
/// that works on each row (the audits) reads as "slow": such lines are logged at info, not as
/// warnings on every `surveyor audit`.
const SLOW_STATEMENT_LEVEL: log::LevelFilter = log::LevelFilter::Info;
const SLOW_STATEMENT: Duration = Duration::from_secs(1);

/// The catalog database. Cheap to clone (pools are shared).
#[derive(Clone, Debug)]
pub enum Store {
    /// SQLite in WAL mode: one writer connection, a few readers.
    Sqlite {
        writer: SqlitePool,
        reader: SqlitePool,
        /// The log's checkpoints, run beside the writer (none for an in-memory database).
        checkpoints: Option<Arc<checkpoint::Checkpoints>>,
    },
    Postgres(PgPool),
}

/// An open transaction: everything done through it lands together or not at all.
pub enum StoreTx {
    Sqlite(Transaction<'static, Sqlite>),
    Postgres(PgTx),
}

/// A Postgres transaction on a pooled connection that is closed, not returned to the pool, when
/// the transaction is dropped unfinished (a run cancelled mid-batch). sqlx would queue the
/// rollback for the connection's next use; a connection cancelled in the middle of a query was
/// seen to sit in the pool "idle in transaction", holding the catalog write lock and its row
/// locks until something reused it (a test's `DROP SCHEMA` waited on it forever). Closing the
/// socket ends the session, and with it the transaction, at once.
pub struct PgTx {
    conn: sqlx::pool::PoolConnection<Postgres>,
    /// Set before `BEGIN` is sent and cleared once `COMMIT` or `ROLLBACK` has answered, so a
    /// cancellation anywhere in between closes the connection.
    open: bool,
}

impl PgTx {
    async fn begin(pool: &PgPool) -> Result<Self> {
        let mut tx = Self {
            conn: pool.acquire().await?,
            open: true,
        };
        sqlx::raw_sql("BEGIN").execute(&mut *tx.conn).await?;
        Ok(tx)
    }

    async fn finish(mut self, statement: &'static str) -> Result<()> {
        sqlx::raw_sql(statement).execute(&mut *self.conn).await?;
        self.open = false;
        Ok(())
    }
}

impl std::ops::Deref for PgTx {
    type Target = sqlx::PgConnection;
    fn deref(&self) -> &Self::Target {
        &self.conn
    }
}

impl std::ops::DerefMut for PgTx {
    fn deref_mut(&mut self) -> &mut Self::Target {
        &mut self.conn
    }
}

impl Drop for PgTx {
    fn drop(&mut self) {
        if self.open {
            self.conn.close_on_drop();
        }
    }
}

/// How long opening a catalog waits for a database that does not answer: long enough for a
/// remote server's TLS handshake, short enough that a wrong host or port is said at once.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(3);

/// What [`Store::inspect`] found, without changing anything.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DatabaseState {
    /// Where the catalog is, with no credentials: `Postgres at db:5432 (database "x")`.
    pub target: String,
    /// False for a SQLite file that is not there yet (the first `sync` creates it).
    pub exists: bool,
    /// Migrations the database has applied, and how many this build knows.
    pub applied: usize,
    pub known: usize,
}

/// Where a Postgres catalog is, for messages: host and port (or socket) and database, never
/// the user's password.
fn pg_target(opts: &PgConnectOptions) -> String {
    let place = match opts.get_socket() {
        Some(socket) => socket.display().to_string(),
        None => format!("{}:{}", opts.get_host(), opts.get_port()),
    };
    match opts.get_database() {
        Some(db) => format!("Postgres at {place} (database {db:?})"),
        None => format!("Postgres at {place}"),
    }
}

/// Where a SQLite catalog is, for messages.
fn sqlite_target(opts: &SqliteConnectOptions) -> String {
    format!("SQLite file {}", opts.get_filename().display())
}

/// Why a connection failed, in the database's own words and without sqlx's wrapping (the
/// server's message, not its source file and line).
fn connect_cause(e: &sqlx::Error) -> String {
    match e {
        sqlx::Error::Database(d) => d.message().to_string(),
        sqlx::Error::Io(io) => io.to_string(),
        sqlx::Error::PoolTimedOut => format!("no connection within {}s", CONNECT_TIMEOUT.as_secs()),
        // sqlx ends some messages with its own source location, of no use to the reader.
        other => {
            let text = other.to_string();
            match text.rfind(" (sqlx_") {
                Some(i) if text.ends_with(')') => text[..i].to_string(),
                _ => text,
            }
        }
    }
}

/// A SQLite open failure with the path, and the likely reason when the file cannot be made.
fn sqlite_connect_error(opts: &SqliteConnectOptions, e: &sqlx::Error) -> StoreError {
    let path = opts.get_filename();
    let mut msg = format!("{}: {}", sqlite_target(opts), connect_cause(e));
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        if dir.exists() && !dir.is_dir() {
            msg.push_str(&format!(" ({} is not a directory)", dir.display()));
        } else if !dir.is_dir() {
            msg.push_str(&format!(" (directory {} does not exist)", dir.display()));
        } else if !path.exists() {
            msg.push_str(&format!(
                " (cannot create it in {}: is the directory writable?)",
                dir.display()
            ));
        }
    }
    StoreError::Connect(msg)
}

/// The advisory-lock class catalog writers take on Postgres ("SURV" in ASCII), with the
/// schema's hash as the second key.
const CATALOG_WRITE_LOCK: i32 = 0x5355_5256;

/// Options for [`Store::connect_with`].
#[derive(Debug, Clone, Default)]
pub struct ConnectOptions {
    /// Postgres only: use (and create) this schema instead of `public`. Tests use one each.
    pub schema: Option<String>,
}

/// The options of a Postgres URL. Where neither the URL (`sslmode`) nor `PGSSLMODE` chooses,
/// a server on this machine (a loopback address, `localhost`, or a socket) is reached without
/// TLS: loopback traffic never leaves the machine, and encrypting it cost each new pooled
/// connection a handshake and each API page about 0.1 ms (docs/benchmarks.md). Any explicit
/// choice stands.
fn pg_options(url: &str) -> Result<PgConnectOptions> {
    let opts = PgConnectOptions::from_str(url).map_err(|e| StoreError::BadUrl(e.to_string()))?;
    let query = url.split_once('?').map_or("", |(_, q)| q);
    let chosen = query.split('&').any(|pair| {
        let key = pair.split_once('=').map_or(pair, |(k, _)| k);
        key.eq_ignore_ascii_case("sslmode") || key.eq_ignore_ascii_case("ssl-mode")
    }) || std::env::var_os("PGSSLMODE").is_some();
    let host = opts
        .get_host()
        .trim_start_matches('[')
        .trim_end_matches(']');
    let local = opts.get_socket().is_some()
        || host.eq_ignore_ascii_case("localhost")
        || host
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback());
    Ok(if local && !chosen {
        opts.ssl_mode(sqlx::postgres::PgSslMode::Disable)
    } else {
        opts
    })
}

/// One Postgres connection, within [`CONNECT_TIMEOUT`], its failure naming where and why.
async fn connect_postgres_once(opts: &PgConnectOptions) -> Result<sqlx::PgConnection> {
    use sqlx::Connection;
    let target = pg_target(opts);
    match tokio::time::timeout(CONNECT_TIMEOUT, sqlx::PgConnection::connect_with(opts)).await {
        Ok(Ok(conn)) => Ok(conn),
        Ok(Err(e)) => Err(StoreError::Connect(format!(
            "{target}: {}",
            connect_cause(&e)
        ))),
        Err(_) => Err(StoreError::Connect(format!(
            "{target}: no answer within {}s",
            CONNECT_TIMEOUT.as_secs()
        ))),
    }
}

/// Checks that Postgres accepts a connection (then closes it).
async fn probe_postgres(opts: &PgConnectOptions) -> Result<()> {
    use sqlx::Connection;
    let conn = connect_postgres_once(opts).await?;
    let _ = conn.close().await;
    Ok(())
}

impl Store {
    /// Opens the database at `url` (`sqlite://path`, `sqlite::memory:`, `postgres://...`) and
    /// applies pending migrations.
    pub async fn connect(url: &str) -> Result<Self> {
        Self::connect_with(url, ConnectOptions::default()).await
    }

    pub async fn connect_with(url: &str, options: ConnectOptions) -> Result<Self> {
        let store = if url.starts_with("sqlite:") {
            Self::open_sqlite(url).await?
        } else if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            Self::open_postgres(url, options.schema.as_deref()).await?
        } else {
            return Err(StoreError::UnsupportedUrl);
        };
        store.migrate().await?;
        Ok(store)
    }

    async fn open_sqlite(url: &str) -> Result<Self> {
        sqlite_setup::setup();
        let opts = SqliteConnectOptions::from_str(url)
            .map_err(|e| StoreError::BadUrl(e.to_string()))?
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(SqliteSynchronous::Normal)
            .busy_timeout(Duration::from_secs(30))
            .foreign_keys(true)
            .log_slow_statements(SLOW_STATEMENT_LEVEL, SLOW_STATEMENT);
        let in_memory = url.contains(":memory:") || url.contains("mode=memory");
        let failed = |e: sqlx::Error| sqlite_connect_error(&opts, &e);
        // The writer gets a 32 MiB page cache and in-memory statement journals: a large scope
        // transaction otherwise spills pages to the WAL and journals to temp files mid-way.
        let writer_opts = opts
            .clone()
            .pragma("cache_size", "-32768")
            .pragma("temp_store", "memory");
        // The writer's commits leave the log's checkpoints to a connection of their own.
        let checkpoints = (!in_memory).then(|| Arc::new(checkpoint::Checkpoints::new(&opts)));
        let hooked = checkpoints.clone();
        // The one writer connection is kept for the pool's life: for `sqlite::memory:` it *is*
        // the database, and elsewhere reopening it costs a WAL recovery check.
        let writer = SqlitePoolOptions::new()
            .max_connections(1)
            .min_connections(1)
            .idle_timeout(None)
            .max_lifetime(None)
            .after_connect(move |conn, _meta| {
                let hooked = hooked.clone();
                Box::pin(async move {
                    match hooked {
                        Some(c) => c.hook(conn).await,
                        None => Ok(()),
                    }
                })
            })
            .connect_with(writer_opts)
            .await
            .map_err(failed)?;
        // An in-memory database exists once per connection: readers must share the writer.
        let reader = if in_memory {
            writer.clone()
        } else {
            SqlitePoolOptions::new()
                .max_connections(4)
                .connect_with(opts.clone().read_only(true))
                .await
                .map_err(failed)?
        };
        Ok(Self::Sqlite {
            writer,
            reader,
            checkpoints,
        })
    }

    async fn open_postgres(url: &str, schema: Option<&str>) -> Result<Self> {
        let mut opts = pg_options(url)?.log_slow_statements(SLOW_STATEMENT_LEVEL, SLOW_STATEMENT);
        let target = pg_target(&opts);
        // One plain connection first, bounded: the pool would retry a refused connection until
        // its acquire timeout and then report only that it timed out.
        probe_postgres(&opts).await?;
        let failed =
            |e: sqlx::Error| StoreError::Connect(format!("{target}: {}", connect_cause(&e)));
        if let Some(schema) = schema {
            if !schema
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '_')
            {
                return Err(StoreError::BadUrl(format!(
                    "invalid schema name {schema:?}"
                )));
            }
            let admin = PgPoolOptions::new()
                .max_connections(1)
                .connect_with(opts.clone())
                .await
                .map_err(failed)?;
            sqlx::query(sqlx::AssertSqlSafe(format!(
                "CREATE SCHEMA IF NOT EXISTS \"{schema}\""
            )))
            .execute(&admin)
            .await?;
            admin.close().await;
            opts = opts.options([("search_path", schema)]);
        }
        let port = opts.get_port();
        let pool = PgPoolOptions::new()
            .max_connections(8)
            .acquire_timeout(Duration::from_secs(10))
            .after_connect(move |_conn, _meta| {
                Box::pin(async move {
                    nodelay::apply(port);
                    Ok(())
                })
            })
            .connect_with(opts)
            .await
            .map_err(failed)?;
        Ok(Self::Postgres(pool))
    }

    /// Looks at the catalog database at `url` without changing it (`surveyor validate`): that
    /// it answers, and how many of this build's migrations it has applied. A SQLite file that
    /// is not there yet is no error when its directory exists.
    pub async fn inspect(url: &str) -> Result<DatabaseState> {
        use sqlx::Connection;
        if url.starts_with("sqlite:") {
            let known = sqlx::migrate!("../../migrations/sqlite").iter().count();
            let opts = SqliteConnectOptions::from_str(url)
                .map_err(|e| StoreError::BadUrl(e.to_string()))?;
            let target = sqlite_target(&opts);
            let path = opts.get_filename();
            let in_memory = url.contains(":memory:") || url.contains("mode=memory");
            if in_memory || !path.exists() {
                if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty())
                    && !in_memory
                    && !dir.is_dir()
                {
                    return Err(StoreError::Connect(format!(
                        "{target}: directory {} does not exist",
                        dir.display()
                    )));
                }
                return Ok(DatabaseState {
                    target,
                    exists: false,
                    applied: 0,
                    known,
                });
            }
            let opts = opts.read_only(true).create_if_missing(false);
            let mut conn = sqlx::SqliteConnection::connect_with(&opts)
                .await
                .map_err(|e| sqlite_connect_error(&opts, &e))?;
            let has_table: i64 = sqlx::query_scalar(
                "SELECT COUNT(*) FROM sqlite_master WHERE type = 'table' AND name = '_sqlx_migrations'",
            )
            .fetch_one(&mut conn)
            .await?;
            let applied: i64 = if has_table > 0 {
                sqlx::query_scalar("SELECT COUNT(*) FROM _sqlx_migrations WHERE success")
                    .fetch_one(&mut conn)
                    .await?
            } else {
                0
            };
            let _ = conn.close().await;
            Ok(DatabaseState {
                target,
                exists: true,
                applied: usize::try_from(applied).unwrap_or(0),
                known,
            })
        } else if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            let known = sqlx::migrate!("../../migrations/postgres").iter().count();
            let opts = pg_options(url)?;
            let target = pg_target(&opts);
            let mut conn = connect_postgres_once(&opts).await?;
            let applied: i64 = sqlx::query_scalar(
                "SELECT CASE WHEN to_regclass('_sqlx_migrations') IS NULL THEN 0 \
                 ELSE (SELECT COUNT(*) FROM _sqlx_migrations WHERE success) END",
            )
            .fetch_one(&mut conn)
            .await
            .unwrap_or(0);
            let _ = conn.close().await;
            Ok(DatabaseState {
                target,
                exists: true,
                applied: usize::try_from(applied).unwrap_or(0),
                known,
            })
        } else {
            Err(StoreError::UnsupportedUrl)
        }
    }

    async fn migrate(&self) -> Result<()> {
        match self {
            Self::Sqlite { writer, .. } => {
                // sqlx takes no lock on SQLite: two processes creating a new catalog at once
                // both see a migration unapplied, and the slower one's CREATE TABLE fails. Each
                // migration is its own transaction, so the loser changed nothing; once the
                // winner has committed, another look finds it applied and goes on.
                let migrator = sqlx::migrate!("../../migrations/sqlite");
                let mut attempt = 0;
                loop {
                    match migrator.run(writer).await {
                        Ok(()) => return Ok(()),
                        Err(
                            e @ (sqlx::migrate::MigrateError::Execute(_)
                            | sqlx::migrate::MigrateError::ExecuteMigration(..)),
                        ) if attempt < 10 => {
                            attempt += 1;
                            tracing::debug!(error = %e, attempt, "migration raced another process; looking again");
                            tokio::time::sleep(Duration::from_millis(50 * attempt)).await;
                        }
                        Err(e) => return Err(StoreError::Migrate(e.to_string())),
                    }
                }
            }
            Self::Postgres(pool) => sqlx::migrate!("../../migrations/postgres")
                .run(pool)
                .await
                .map_err(|e| StoreError::Migrate(e.to_string())),
        }
    }

    pub fn backend(&self) -> Backend {
        match self {
            Self::Sqlite { .. } => Backend::Sqlite,
            Self::Postgres(_) => Backend::Postgres,
        }
    }

    /// Starts a write transaction. On SQLite it takes the single writer connection.
    pub async fn begin(&self) -> Result<StoreTx> {
        Ok(match self {
            Self::Sqlite {
                writer,
                checkpoints,
                ..
            } => {
                // Every transaction on the writer connection (the leases' small ones too) may
                // be what takes the log past a bound.
                if let Some(c) = checkpoints {
                    c.before_write().await;
                }
                StoreTx::Sqlite(writer.begin().await?)
            }
            Self::Postgres(pool) => StoreTx::Postgres(PgTx::begin(pool).await?),
        })
    }

    /// Starts a transaction that writes the catalog. Writers are serialised: on SQLite by the
    /// single writer connection, on Postgres by a transaction-scoped advisory lock, so two
    /// processes merging observations of the same entity can never interleave and lose an
    /// update. (Reads never wait.)
    pub async fn begin_write(&self) -> Result<StoreTx> {
        let mut tx = self.begin().await?;
        if let StoreTx::Postgres(t) = &mut tx {
            // Keyed by schema too: catalogs in two schemas of one database never wait for
            // each other.
            sqlx::query("SELECT pg_advisory_xact_lock($1, hashtext(current_schema()))")
                .bind(CATALOG_WRITE_LOCK)
                .execute(&mut **t)
                .await?;
        }
        Ok(tx)
    }

    /// Closes the pools, waiting for connections to be returned.
    pub async fn close(&self) {
        match self {
            Self::Sqlite {
                writer,
                reader,
                checkpoints,
            } => {
                reader.close().await;
                writer.close().await;
                if let Some(c) = checkpoints {
                    c.close().await;
                }
            }
            Self::Postgres(pool) => pool.close().await,
        }
    }

    /// Drops a test schema and everything in it (Postgres only; a no-op on SQLite).
    pub async fn drop_schema(&self, schema: &str) -> Result<()> {
        if let Self::Postgres(pool) = self
            && schema
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '_')
        {
            sqlx::query(sqlx::AssertSqlSafe(format!(
                "DROP SCHEMA IF EXISTS \"{schema}\" CASCADE"
            )))
            .execute(pool)
            .await?;
        }
        Ok(())
    }
}

impl StoreTx {
    pub fn backend(&self) -> Backend {
        match self {
            Self::Sqlite(_) => Backend::Sqlite,
            Self::Postgres(_) => Backend::Postgres,
        }
    }

    pub async fn commit(self) -> Result<()> {
        match self {
            Self::Sqlite(t) => t.commit().await?,
            Self::Postgres(t) => t.finish("COMMIT").await?,
        }
        Ok(())
    }

    pub async fn rollback(self) -> Result<()> {
        match self {
            Self::Sqlite(t) => t.rollback().await?,
            Self::Postgres(t) => t.finish("ROLLBACK").await?,
        }
        Ok(())
    }
}

#[cfg(test)]
/// A Postgres catalog in a schema of its own (`PREFIX_<uuid>`), for a test to drop at its end.
async fn store_in_new_schema(url: &str, prefix: &str) -> (Store, String) {
    let schema = format!("{prefix}_{}", uuid::Uuid::now_v7().simple());
    let options = ConnectOptions {
        schema: Some(schema.clone()),
    };
    let store = Store::connect_with(url, options).await.expect("connect");
    (store, schema)
}

#[cfg(test)]
mod pg_tx_tests {
    use super::*;

    /// How many sessions `count` (a query of `pg_stat_activity` by pid) finds for `pid`.
    async fn sessions(store: &Store, count: &'static str, pid: i32) -> i64 {
        store
            .query(count)
            .bind(pid)
            .fetch_one(|r| r.get(0))
            .await
            .expect("pg_stat_activity")
    }

    /// The session's pid while it exists, polled: closing happens on a spawned task.
    async fn session_ends(store: &Store, pid: i32) -> bool {
        for _ in 0..100 {
            let alive = sessions(
                store,
                "SELECT COUNT(*) FROM pg_stat_activity WHERE pid = $1",
                pid,
            )
            .await;
            if alive == 0 {
                return true;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        false
    }

    async fn pid(tx: &mut StoreTx) -> i32 {
        let StoreTx::Postgres(t) = tx else {
            unreachable!("a Postgres store")
        };
        sqlx::query_scalar("SELECT pg_backend_pid()")
            .fetch_one(&mut **t)
            .await
            .expect("pid")
    }

    #[tokio::test]
    async fn an_unfinished_postgres_transaction_closes_its_connection() {
        let Ok(url) = std::env::var("SURVEYOR_TEST_DATABASE_URL") else {
            eprintln!("skipped: SURVEYOR_TEST_DATABASE_URL is not set");
            return;
        };
        let (store, schema) = store_in_new_schema(&url, "t_pgtx").await;

        // Dropped unfinished: the session ends, so its locks (the write lock too) go with it.
        let mut dropped = store.begin_write().await.expect("begin");
        let dropped_pid = pid(&mut dropped).await;
        drop(dropped);
        assert!(
            session_ends(&store, dropped_pid).await,
            "the session of a dropped transaction is still there"
        );

        // Committed: the connection goes back to the pool and its session lives on.
        let mut committed = store.begin_write().await.expect("begin");
        let committed_pid = pid(&mut committed).await;
        committed.commit().await.expect("commit");
        let alive = sessions(
            &store,
            "SELECT COUNT(*) FROM pg_stat_activity WHERE pid = $1 AND state = 'idle'",
            committed_pid,
        )
        .await;
        assert_eq!(
            alive, 1,
            "a committed transaction's connection is kept, idle"
        );
        let again = store.begin_write().await.expect("the write lock is free");
        again.rollback().await.expect("rollback");

        store.drop_schema(&schema).await.expect("drop schema");
        store.close().await;
    }
}

#[cfg(test)]
mod connect_errors {
    use super::*;

    #[tokio::test]
    async fn a_closed_postgres_port_is_named_with_its_cause_and_no_password() {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .map(|a| a.port())
            .expect("a free port");
        let url = format!("postgres://u:sentinel-pw@127.0.0.1:{port}/catalog");
        // A liveness bound: the pool alone retried for 10 s and reported only a timeout.
        let err = tokio::time::timeout(Duration::from_secs(8), Store::connect(&url))
            .await
            .expect("an answer within 8 s")
            .expect_err("nothing listens there");
        let text = err.to_string();
        assert!(matches!(err, StoreError::Connect(_)), "{text}");
        assert!(text.contains(&format!("127.0.0.1:{port}")), "{text}");
        assert!(text.contains("\"catalog\""), "{text}");
        assert!(!text.contains("sentinel-pw"), "{text}");
    }

    #[tokio::test]
    async fn a_sqlite_file_that_cannot_be_made_is_named() {
        let dir = tempfile::tempdir().expect("tmp");
        let url = format!("sqlite://{}/missing/catalog.db", dir.path().display());
        let err = Store::connect(&url).await.expect_err("no such directory");
        let text = err.to_string();
        assert!(text.contains("missing/catalog.db"), "{text}");
        assert!(text.contains("does not exist"), "{text}");
        let state = Store::inspect(&url).await.expect_err("no such directory");
        assert!(state.to_string().contains("does not exist"));
        let fresh = format!("sqlite://{}/catalog.db", dir.path().display());
        let state = Store::inspect(&fresh).await.expect("a fresh path");
        assert!(!state.exists);
        assert!(
            !dir.path().join("catalog.db").exists(),
            "inspect created it"
        );
    }
}

#[cfg(test)]
mod pg_url_tests {
    use super::*;
    use sqlx::postgres::PgSslMode;

    #[test]
    fn a_server_on_this_machine_is_reached_without_tls_unless_the_url_chooses() {
        let mode = |url: &str| pg_options(url).expect("url").get_ssl_mode();
        let untouched = |url: &str| PgConnectOptions::from_str(url).expect("url").get_ssl_mode();
        if std::env::var_os("PGSSLMODE").is_none() {
            for url in [
                "postgres://u@127.0.0.1:5432/db",
                "postgres://u:p@localhost/db",
                "postgres://u@[::1]:5432/db",
                "postgres://u@127.0.0.2/db?application_name=x",
            ] {
                assert!(matches!(mode(url), PgSslMode::Disable), "{url}");
            }
        }
        for url in [
            "postgres://u@127.0.0.1/db?sslmode=require",
            "postgres://u@localhost/db?application_name=x&ssl-mode=verify-full",
        ] {
            assert!(
                !matches!(mode(url), PgSslMode::Disable),
                "{url}: the URL's choice stands"
            );
        }
        for url in ["postgres://u@db.example.com/db", "postgres://u@10.0.0.5/db"] {
            assert_eq!(
                format!("{:?}", mode(url)),
                format!("{:?}", untouched(url)),
                "{url}: another machine keeps the default"
            );
        }
    }

    #[tokio::test]
    async fn a_catalog_on_a_loopback_postgres_talks_without_tls() {
        let Ok(url) = std::env::var("SURVEYOR_TEST_DATABASE_URL") else {
            eprintln!("skipped: SURVEYOR_TEST_DATABASE_URL is not set");
            return;
        };
        let opts = PgConnectOptions::from_str(&url).expect("url");
        let loopback = opts
            .get_host()
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback());
        if !loopback || url.contains("sslmode") || std::env::var_os("PGSSLMODE").is_some() {
            eprintln!(
                "skipped: SURVEYOR_TEST_DATABASE_URL is not a loopback address without sslmode"
            );
            return;
        }
        let (store, schema) = store_in_new_schema(&url, "t_tls").await;
        let ssl: Option<bool> = store
            .query("SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()")
            .fetch_optional(|r| r.get(0))
            .await
            .expect("pg_stat_ssl");
        store.drop_schema(&schema).await.expect("drop");
        store.close().await;
        assert_eq!(ssl, Some(false), "the session is encrypted");
    }
}
