//! Fresh databases for benchmark runs (a new SQLite file, a new Postgres schema) and what a run
//! wrote to them, found by comparing every catalog row before and after.

use std::collections::HashMap;
use std::hash::{DefaultHasher, Hash, Hasher};

use anyhow::Context;
use serde::Serialize;
use sqlx::Row;
use surveyor_store::{ConnectOptions, Store};

#[derive(Clone, Copy, PartialEq, Eq, Debug, clap::ValueEnum)]
pub enum Backend {
    Sqlite,
    Postgres,
}

impl Backend {
    pub fn label(self) -> &'static str {
        match self {
            Self::Sqlite => "SQLite",
            Self::Postgres => "Postgres",
        }
    }
    pub fn arg(self) -> &'static str {
        match self {
            Self::Sqlite => "sqlite",
            Self::Postgres => "postgres",
        }
    }
}

/// The Postgres to benchmark on: `--postgres`, else $SURVEYOR_BENCH_DATABASE_URL, else
/// $SURVEYOR_TEST_DATABASE_URL. None (with a printed note) when none is set.
/// `--postgres URL` and `--no-postgres`. After `resolve`, `postgres` is the URL to run on.
#[derive(clap::Args)]
pub struct PostgresArgs {
    /// Also run on this Postgres (default: $SURVEYOR_BENCH_DATABASE_URL, else
    /// $SURVEYOR_TEST_DATABASE_URL)
    #[arg(long)]
    pub postgres: Option<String>,
    /// Skip Postgres even when a URL is set
    #[arg(long)]
    pub no_postgres: bool,
}

impl PostgresArgs {
    /// Settles on the URL from the flags and the environment, saying so when there is none.
    pub fn resolve(&mut self) {
        self.postgres = postgres_url(self.postgres.take(), self.no_postgres);
    }
}

pub fn postgres_url(flag: Option<String>, skip: bool) -> Option<String> {
    if skip {
        return None;
    }
    let url = flag
        .or_else(|| std::env::var("SURVEYOR_BENCH_DATABASE_URL").ok())
        .or_else(|| std::env::var("SURVEYOR_TEST_DATABASE_URL").ok())
        .filter(|u| !u.trim().is_empty());
    if url.is_none() {
        println!(
            "note: Postgres skipped (set SURVEYOR_BENCH_DATABASE_URL or SURVEYOR_TEST_DATABASE_URL, or pass --postgres URL)"
        );
    }
    url
}

/// The backends a scenario runs on: SQLite unless skipped, Postgres when a URL is known.
pub fn backends(no_sqlite: bool, postgres: &Option<String>) -> Vec<Backend> {
    let mut out = Vec::new();
    if !no_sqlite {
        out.push(Backend::Sqlite);
    }
    if postgres.is_some() {
        out.push(Backend::Postgres);
    }
    out
}

/// What to remove after a run.
pub enum Cleanup {
    Dir(std::path::PathBuf),
    Schema(String, String),
}

impl Cleanup {
    pub async fn run(self) {
        if std::env::var_os("SURVEYOR_BENCH_KEEP").is_some() {
            println!("kept the database (SURVEYOR_BENCH_KEEP)");
            return;
        }
        match self {
            Self::Dir(dir) => {
                let _ = std::fs::remove_dir_all(dir);
            }
            Self::Schema(url, schema) => {
                // Connected to the scratch schema itself, which is migrated already: connecting to
                // the database's default schema would migrate that one, and fail (leaving the
                // scratch schema behind) where it holds another build's migrations.
                let options = ConnectOptions {
                    schema: Some(schema.clone()),
                };
                match Store::connect_with(&url, options).await {
                    Ok(store) => {
                        if let Err(e) = store.drop_schema(&schema).await {
                            eprintln!("note: could not drop the schema {schema}: {e}");
                        }
                        store.close().await;
                    }
                    Err(e) => eprintln!("note: could not drop the schema {schema}: {e}"),
                }
            }
        }
    }
}

pub async fn open_fresh(
    backend: Backend,
    postgres: Option<&str>,
) -> anyhow::Result<(Store, Cleanup)> {
    match backend {
        Backend::Sqlite => {
            let dir = tempfile_dir()?;
            let url = format!("sqlite://{}/bench.db", dir.display());
            Ok((
                Store::connect(&url).await.context("open SQLite")?,
                Cleanup::Dir(dir),
            ))
        }
        Backend::Postgres => {
            let url = postgres.context(
                "Postgres needs --postgres URL (or SURVEYOR_BENCH_DATABASE_URL / SURVEYOR_TEST_DATABASE_URL)",
            )?;
            let schema = format!("bench_{}", uuid::Uuid::now_v7().simple());
            let store = Store::connect_with(
                url,
                ConnectOptions {
                    schema: Some(schema.clone()),
                },
            )
            .await
            .context("open Postgres")?;
            Ok((store, Cleanup::Schema(url.to_string(), schema)))
        }
    }
}

pub fn tempfile_dir() -> anyhow::Result<std::path::PathBuf> {
    let dir = std::env::temp_dir().join(format!(
        "surveyor-bench-{}-{}",
        std::process::id(),
        uuid::Uuid::now_v7().simple()
    ));
    std::fs::create_dir_all(&dir)?;
    Ok(dir)
}

/// Every catalog row, as key -> hash of the columns a write would change. Runs are left out:
/// each run writes its own run row by design.
pub struct Snapshot {
    tables: Vec<(&'static str, HashMap<String, u64>)>,
}

/// Per table: a key and the columns any write to the row would change (each run stamps the
/// rows it writes: `changed_run`, `updated_at`, `deleted_run`).
const SNAPSHOT_QUERIES: &[(&str, &str)] = &[
    (
        "observations",
        "SELECT source || '/' || external_id AS k, hash || '|' || scope || '|' || entity_ref || '|' || changed_run || '|' || COALESCE(deleted_run, '') || '|' || COALESCE(CAST(deleted_at AS TEXT), '') AS v FROM observations",
    ),
    (
        "entities",
        "SELECT uid AS k, hash || '|' || meta_hash || '|' || entity_ref || '|' || CAST(updated_at AS TEXT) || '|' || COALESCE(deleted_run, '') || '|' || CAST(sources AS TEXT) AS v FROM entities",
    ),
    (
        "relations",
        "SELECT origin_ref || '|' || source_ref || '|' || type || '|' || target_ref AS k, target_display AS v FROM relations",
    ),
    (
        "changes",
        "SELECT CAST(seq AS TEXT) AS k, run_id AS v FROM changes",
    ),
    (
        "identity_keys",
        "SELECT source || '|' || external_id || '|' || key AS k, own_ref || '|' || CAST(declared AS TEXT) AS v FROM identity_keys",
    ),
    (
        "identity_aliases",
        "SELECT source || '|' || external_id || '|' || alias_ref AS k, entity_ref AS v FROM identity_aliases",
    ),
    (
        "findings",
        "SELECT CAST(id AS TEXT) AS k, rule || '|' || entity_ref || '|' || CAST(last_seen AS TEXT) || '|' || COALESCE(CAST(resolved_at AS TEXT), '') AS v FROM findings",
    ),
    (
        "refusals",
        "SELECT run_id || '|' || scope || '|' || kind AS k, CAST(would_delete AS TEXT) AS v FROM refusals",
    ),
];

async fn table_names(store: &Store) -> anyhow::Result<Vec<String>> {
    Ok(match store {
        Store::Sqlite { reader, .. } => {
            sqlx::query_scalar("SELECT name FROM sqlite_master WHERE type = 'table'")
                .fetch_all(reader)
                .await?
        }
        Store::Postgres(pool) => {
            sqlx::query_scalar(
                "SELECT CAST(table_name AS TEXT) FROM information_schema.tables WHERE table_schema = current_schema()",
            )
            .fetch_all(pool)
            .await?
        }
    })
}

/// Rows a run inserted, changed or removed, per table.
#[derive(Debug, Clone, Serialize, Default)]
pub struct RowsWritten {
    pub total: u64,
    pub by_table: std::collections::BTreeMap<String, u64>,
}

impl Snapshot {
    pub async fn take(store: &Store) -> anyhow::Result<Self> {
        let existing = table_names(store).await?;
        let mut tables = Vec::new();
        for &(table, q) in SNAPSHOT_QUERIES {
            // Tables a newer schema added are compared once they are there.
            if !existing.iter().any(|t| t == table) {
                continue;
            }
            let rows: Vec<(String, String)> = match store {
                Store::Sqlite { reader, .. } => sqlx::query(q)
                    .fetch_all(reader)
                    .await?
                    .iter()
                    .map(|r| Ok((r.try_get("k")?, r.try_get("v")?)))
                    .collect::<Result<_, sqlx::Error>>()?,
                Store::Postgres(pool) => sqlx::query(q)
                    .fetch_all(pool)
                    .await?
                    .iter()
                    .map(|r| Ok((r.try_get("k")?, r.try_get("v")?)))
                    .collect::<Result<_, sqlx::Error>>()?,
            };
            let map = rows
                .into_iter()
                .map(|(k, v)| {
                    let mut h = DefaultHasher::new();
                    v.hash(&mut h);
                    (k, h.finish())
                })
                .collect();
            tables.push((table, map));
        }
        Ok(Self { tables })
    }

    pub fn rows(&self, table: &str) -> usize {
        self.tables
            .iter()
            .find(|(t, _)| *t == table)
            .map_or(0, |(_, m)| m.len())
    }

    /// Rows inserted, changed or removed between `self` (before) and `after`.
    pub fn written_since(&self, after: &Snapshot) -> RowsWritten {
        let mut out = RowsWritten::default();
        for ((table, before), (_, now)) in self.tables.iter().zip(&after.tables) {
            let changed_or_new = now
                .iter()
                .filter(|(k, h)| before.get(*k) != Some(h))
                .count();
            let removed = before.keys().filter(|k| !now.contains_key(*k)).count();
            let n = (changed_or_new + removed) as u64;
            out.total += n;
            out.by_table.insert(table.to_string(), n);
        }
        out
    }
}
