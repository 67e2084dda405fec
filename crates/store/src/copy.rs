//! The whole catalog, table by table: [`Store::dump`] reads every table in one snapshot and
//! [`Store::copy_into`] writes it into another store, SQLite or Postgres either way, keeping
//! every key (change sequence numbers, finding ids) so the copy is the same catalog.
//!
//! Values travel typed (text, JSON, time, boolean, integer, float), so each backend stores
//! them natively. Times keep microsecond precision (Postgres's), which is what the
//! comparison of two dumps ([`Cell`]'s equality) uses too; JSON compares as parsed values
//! (Postgres's `jsonb` reorders keys).

use chrono::{DateTime, SubsecRound, Utc};

use crate::query::RowValues;
use crate::{Backend, Result, Store, StoreError, StoreTx};

/// How a column's values are stored and read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Ty {
    Text,
    Json,
    Time,
    Bool,
    Int,
    Float,
}

/// One catalog table: its columns in order, and its key (the order rows are read in).
struct Table {
    name: &'static str,
    columns: &'static [(&'static str, Ty)],
    order_by: &'static str,
    /// A Postgres identity or serial column, whose sequence must continue after the copy.
    serial: Option<&'static str>,
}

use Ty::*;

/// Every table of the catalog but `entity_labels`, which triggers fill as entities are copied;
/// parents before children (none has a foreign key today, but
/// this order would keep one satisfied). `_sqlx_migrations` is each store's own.
const TABLES: &[Table] = &[
    Table {
        name: "runs",
        columns: &[
            ("id", Text),
            ("connector", Text),
            ("started_at", Time),
            ("finished_at", Time),
            ("status", Text),
            ("outcome", Json),
            ("counts", Json),
            ("error", Text),
        ],
        order_by: "id",
        serial: None,
    },
    Table {
        name: "observations",
        columns: &[
            ("source", Text),
            ("external_id", Text),
            ("scope", Text),
            ("entity_ref", Text),
            ("kind", Text),
            ("declared", Bool),
            ("hash", Text),
            ("body", Json),
            ("first_run", Text),
            ("changed_run", Text),
            ("deleted_at", Time),
            ("deleted_run", Text),
        ],
        order_by: "source, external_id",
        serial: None,
    },
    Table {
        name: "entities",
        columns: &[
            ("uid", Text),
            ("entity_ref", Text),
            ("display_ref", Text),
            ("kind", Text),
            ("namespace", Text),
            ("name", Text),
            ("body", Json),
            ("hash", Text),
            ("sources", Json),
            ("meta_hash", Text),
            ("created_at", Time),
            ("updated_at", Time),
            ("deleted_at", Time),
            ("deleted_run", Text),
        ],
        order_by: "uid",
        serial: None,
    },
    Table {
        name: "relations",
        columns: &[
            ("origin_ref", Text),
            ("source_ref", Text),
            ("type", Text),
            ("target_ref", Text),
            ("target_display", Text),
        ],
        order_by: "origin_ref, source_ref, type, target_ref",
        serial: None,
    },
    Table {
        name: "changes",
        columns: &[
            ("seq", Int),
            ("at", Time),
            ("run_id", Text),
            ("source", Text),
            ("entity_uid", Text),
            ("entity_ref", Text),
            ("previous_ref", Text),
            ("op", Text),
            ("patch", Json),
        ],
        order_by: "seq",
        serial: Some("seq"),
    },
    Table {
        name: "refusals",
        columns: &[
            ("run_id", Text),
            ("at", Time),
            ("source", Text),
            ("scope", Text),
            ("kind", Text),
            ("live", Int),
            ("would_delete", Int),
            ("max_ratio", Float),
        ],
        // No key: every column, so two dumps list the rows in the same order.
        order_by: "run_id, at, source, scope, kind, live, would_delete, max_ratio",
        serial: None,
    },
    Table {
        name: "leases",
        columns: &[
            ("name", Text),
            ("holder", Text),
            ("tick", Time),
            ("expires_at", Time),
            ("taken_at", Time),
        ],
        order_by: "name",
        serial: None,
    },
    Table {
        name: "identity_keys",
        columns: &[
            ("source", Text),
            ("external_id", Text),
            ("key", Text),
            ("own_ref", Text),
            ("declared", Bool),
        ],
        order_by: "source, external_id, key",
        serial: None,
    },
    Table {
        name: "identity_aliases",
        columns: &[
            ("source", Text),
            ("external_id", Text),
            ("alias_ref", Text),
            ("entity_ref", Text),
        ],
        order_by: "source, external_id, alias_ref",
        serial: None,
    },
    Table {
        name: "findings",
        columns: &[
            ("id", Int),
            ("audit", Text),
            ("rule", Text),
            ("entity_ref", Text),
            ("severity", Text),
            ("message", Text),
            ("first_seen", Time),
            ("last_seen", Time),
            ("resolved_at", Time),
            ("kind", Text),
            ("owner", Text),
            ("evidence", Text),
        ],
        order_by: "id",
        serial: Some("id"),
    },
    Table {
        name: "classifications",
        columns: &[
            ("entity_ref", Text),
            ("facet", Text),
            ("value", Text),
            ("declared", Bool),
            ("evidence", Text),
            ("since", Time),
        ],
        order_by: "entity_ref, facet, value",
        serial: None,
    },
    Table {
        name: "scores",
        columns: &[
            ("scorecard", Text),
            ("entity_ref", Text),
            ("owner", Text),
            ("level", Text),
            ("failing", Text),
            ("since", Time),
        ],
        order_by: "scorecard, entity_ref",
        serial: None,
    },
    Table {
        name: "score_events",
        columns: &[
            ("id", Int),
            ("at", Time),
            ("run_id", Text),
            ("scorecard", Text),
            ("entity_ref", Text),
            ("check_name", Text),
            ("passed", Bool),
            ("detail", Text),
        ],
        order_by: "id",
        serial: Some("id"),
    },
    Table {
        name: "score_trend",
        columns: &[
            ("at", Time),
            ("scorecard", Text),
            ("owner", Text),
            ("level", Text),
            ("entities", Int),
        ],
        order_by: "scorecard, at, owner, level",
        serial: None,
    },
];

/// One value of a dumped row.
#[derive(Debug, Clone)]
pub enum Cell {
    Null,
    Text(String),
    /// JSON text, as the source stored it.
    Json(String),
    Time(DateTime<Utc>),
    Bool(bool),
    Int(i64),
    Float(f64),
}

impl PartialEq for Cell {
    fn eq(&self, other: &Self) -> bool {
        match (self, other) {
            (Self::Null, Self::Null) => true,
            (Self::Text(a), Self::Text(b)) => a == b,
            (Self::Json(a), Self::Json(b)) => {
                a == b
                    || serde_json::from_str::<serde_json::Value>(a).ok()
                        == serde_json::from_str::<serde_json::Value>(b).ok()
            }
            (Self::Time(a), Self::Time(b)) => a.trunc_subsecs(6) == b.trunc_subsecs(6),
            (Self::Bool(a), Self::Bool(b)) => a == b,
            (Self::Int(a), Self::Int(b)) => a == b,
            (Self::Float(a), Self::Float(b)) => a.to_bits() == b.to_bits() || a == b,
            _ => false,
        }
    }
}

/// Every row of one table, in key order.
#[derive(Debug, Clone, PartialEq)]
pub struct TableDump {
    pub table: &'static str,
    pub columns: Vec<&'static str>,
    pub rows: Vec<Vec<Cell>>,
}

/// Rows copied per table, in table order.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct CopyCounts {
    pub tables: Vec<(String, u64)>,
}

impl CopyCounts {
    pub fn total(&self) -> u64 {
        self.tables.iter().map(|(_, n)| n).sum()
    }
}

fn select_sql(table: &Table) -> String {
    let columns: Vec<String> = table
        .columns
        .iter()
        .map(|(c, ty)| match ty {
            Json => format!("{c}::text AS {c}"),
            _ => (*c).to_string(),
        })
        .collect();
    format!(
        "SELECT {} FROM {} ORDER BY {}",
        columns.join(", "),
        table.name,
        table.order_by
    )
}

async fn read_table(tx: &mut StoreTx, table: &Table) -> Result<TableDump> {
    let backend = tx.backend();
    let text = select_sql(table);
    let text = match backend {
        Backend::Postgres => text,
        Backend::Sqlite => text.replace("::text", ""),
    };
    let rows = tx
        .query(text)
        .fetch_all(|r| {
            table
                .columns
                .iter()
                .map(|(name, ty)| {
                    let name = *name;
                    Ok(match ty {
                        Text => r.get::<Option<String>>(name)?.map(Cell::Text),
                        Json => r.get::<Option<String>>(name)?.map(Cell::Json),
                        Time => r.get::<Option<DateTime<Utc>>>(name)?.map(Cell::Time),
                        Bool => r.get::<Option<bool>>(name)?.map(Cell::Bool),
                        Int => r.get::<Option<i64>>(name)?.map(Cell::Int),
                        Float => r.get::<Option<f64>>(name)?.map(Cell::Float),
                    }
                    .unwrap_or(Cell::Null))
                })
                .collect::<Result<Vec<Cell>>>()
        })
        .await?;
    Ok(TableDump {
        table: table.name,
        columns: table.columns.iter().map(|(c, _)| *c).collect(),
        rows,
    })
}

/// Binds one cell for a column of type `ty` (a NULL is typed, as Postgres wants).
fn bind_cell(b: &mut RowValues<'_>, ty: Ty, cell: &Cell) {
    match (ty, cell) {
        (Json, Cell::Json(s) | Cell::Text(s)) => {
            b.json(s.clone());
        }
        (Json, _) => {
            b.bind(None::<String>);
        }
        (_, Cell::Text(s)) => {
            b.bind(s.clone());
        }
        (_, Cell::Json(s)) => {
            b.bind(s.clone());
        }
        (_, Cell::Time(t)) => {
            b.bind(*t);
        }
        (_, Cell::Bool(v)) => {
            b.bind(*v);
        }
        (_, Cell::Int(v)) => {
            b.bind(*v);
        }
        (_, Cell::Float(v)) => {
            b.bind(*v);
        }
        (Text, Cell::Null) => {
            b.bind(None::<String>);
        }
        (Time, Cell::Null) => {
            b.bind(None::<DateTime<Utc>>);
        }
        (Bool, Cell::Null) => {
            b.bind(None::<bool>);
        }
        (Int, Cell::Null) => {
            b.bind(None::<i64>);
        }
        (Float, Cell::Null) => {
            b.bind(None::<f64>);
        }
    }
}

impl Store {
    /// Every catalog table, read in one snapshot (a read transaction; on SQLite it holds the
    /// writer, so nothing writes meanwhile).
    pub async fn dump(&self) -> Result<Vec<TableDump>> {
        let mut tx = self.begin().await?;
        if tx.backend() == Backend::Postgres {
            tx.query("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY")
                .execute()
                .await?;
        }
        let mut out = Vec::with_capacity(TABLES.len());
        for table in TABLES {
            out.push(read_table(&mut tx, table).await?);
        }
        tx.rollback().await?;
        Ok(out)
    }

    /// The tables that hold rows (with their counts); empty for a new catalog.
    pub async fn non_empty_tables(&self) -> Result<Vec<(String, i64)>> {
        let mut out = Vec::new();
        for table in TABLES {
            let q = format!("SELECT COUNT(*) FROM {}", table.name);
            let n: i64 = self.query(q).fetch_one(|r| r.get(0)).await?;
            if n > 0 {
                out.push((table.name.to_string(), n));
            }
        }
        Ok(out)
    }

    /// Copies this catalog into `dest`, in one transaction there: every row of every table,
    /// keys included. With `replace`, `dest`'s rows are deleted first (in the same
    /// transaction); without it, a `dest` that holds rows is refused ([`StoreError::Invalid`])
    /// and nothing is written.
    pub async fn copy_into(&self, dest: &Store, replace: bool) -> Result<CopyCounts> {
        let dump = self.dump().await?;
        let mut tx = dest.begin_write().await?;
        let backend = tx.backend();
        if !replace {
            let mut held = Vec::new();
            for table in TABLES {
                let q = format!("SELECT COUNT(*) FROM {}", table.name);
                let n: i64 = tx.query(q).fetch_one(|r| r.get(0)).await?;
                if n > 0 {
                    held.push(format!("{} {n}", table.name));
                }
            }
            if !held.is_empty() {
                tx.rollback().await?;
                return Err(StoreError::Invalid(format!(
                    "the destination catalog is not empty ({})",
                    held.join(", ")
                )));
            }
        }
        for table in TABLES.iter().rev() {
            tx.query(format!("DELETE FROM {}", table.name))
                .execute()
                .await?;
        }
        let mut counts = CopyCounts::default();
        for (table, data) in TABLES.iter().zip(&dump) {
            let head = format!(
                "INSERT INTO {} ({}) {}",
                table.name,
                table
                    .columns
                    .iter()
                    .map(|(c, _)| *c)
                    .collect::<Vec<_>>()
                    .join(", "),
                // The change log's `seq` is `GENERATED ALWAYS`: keeping the original numbers
                // (feeds page by them) needs Postgres's explicit override.
                if backend == Backend::Postgres && table.serial.is_some() {
                    "OVERRIDING SYSTEM VALUE "
                } else {
                    ""
                }
            );
            tx.insert_values(
                &head,
                &data.rows,
                |b, row| {
                    for ((_, ty), cell) in table.columns.iter().zip(row) {
                        bind_cell(b, *ty, cell);
                    }
                },
                "",
            )
            .await?;
            if let (Backend::Postgres, Some(column)) = (backend, table.serial) {
                // New rows continue after the copied ones. (SQLite's AUTOINCREMENT already
                // continues after the largest key inserted.)
                let q = format!(
                    "SELECT setval(pg_get_serial_sequence('{t}', '{column}'), \
                     COALESCE((SELECT MAX({column}) FROM {t}), 0) + 1, false)",
                    t = table.name
                );
                tx.query(q).fetch_one(|_| Ok(())).await?;
            }
            counts
                .tables
                .push((table.name.to_string(), data.rows.len() as u64));
        }
        tx.commit().await?;
        Ok(counts)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn table(name: &str) -> &'static Table {
        TABLES.iter().find(|t| t.name == name).expect("a table")
    }

    #[test]
    fn json_columns_are_read_as_text() {
        assert_eq!(
            select_sql(table("runs")),
            "SELECT id, connector, started_at, finished_at, status, outcome::text AS outcome, \
             counts::text AS counts, error FROM runs ORDER BY id"
        );
    }

    #[test]
    fn cells_compare_as_the_catalog_means_them() {
        assert_eq!(
            Cell::Json(r#"{"a":1,"b":2}"#.into()),
            Cell::Json(r#"{"b": 2, "a": 1}"#.into())
        );
        assert_ne!(
            Cell::Json(r#"{"a":1}"#.into()),
            Cell::Json(r#"{"a":2}"#.into())
        );
        let t = DateTime::parse_from_rfc3339("2026-01-02T03:04:05.123456789Z")
            .expect("time")
            .with_timezone(&Utc);
        let micros = DateTime::parse_from_rfc3339("2026-01-02T03:04:05.123456Z")
            .expect("time")
            .with_timezone(&Utc);
        assert_eq!(Cell::Time(t), Cell::Time(micros));
        assert_ne!(Cell::Time(t), Cell::Null);
        assert_ne!(Cell::Text("x".into()), Cell::Json("\"x\"".into()));
    }

    /// Every table a migration creates is copied or derived, so a new table cannot be left
    /// behind.
    #[test]
    fn every_migrated_table_is_copied() {
        let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/../../migrations/sqlite");
        let mut created = Vec::new();
        for entry in std::fs::read_dir(dir).expect("migrations") {
            let text = std::fs::read_to_string(entry.expect("entry").path()).expect("read");
            for line in text.lines() {
                if let Some(rest) = line.strip_prefix("CREATE TABLE ") {
                    created.push(rest.split_whitespace().next().unwrap_or("").to_string());
                }
            }
        }
        created.sort();
        let mut copied: Vec<String> = TABLES.iter().map(|t| t.name.to_string()).collect();
        // Filled by the database's triggers from another table, and so by copying that one:
        // `entity_labels` from `entities`.
        copied.push("entity_labels".to_string());
        copied.sort();
        assert_eq!(created, copied);
    }

    /// Every column of every table is copied (columns added by later migrations too).
    #[tokio::test]
    async fn every_column_is_copied() {
        let store = Store::connect("sqlite::memory:").await.expect("store");
        for t in TABLES {
            let q = format!(
                "SELECT name FROM pragma_table_info('{}') ORDER BY cid",
                t.name
            );
            let mut actual: Vec<String> = store
                .query(q)
                .fetch_all(|r| r.get(0))
                .await
                .expect("columns");
            let mut listed: Vec<String> = t.columns.iter().map(|(c, _)| c.to_string()).collect();
            actual.sort();
            listed.sort();
            assert_eq!(actual, listed, "columns of {}", t.name);
        }
    }

    /// The tables a demo catalog leaves empty (refusals, leases) copy too, NULLs and floats
    /// included, into SQLite and (when there is one) Postgres; a second copy is refused.
    #[tokio::test]
    async fn refusals_and_leases_copy_with_their_types() {
        let source = Store::connect("sqlite::memory:").await.expect("store");
        let now = Utc::now();
        let mut tx = source.begin_write().await.expect("tx");
        tx.insert_refusal(
            &crate::RefusalRow {
                run_id: "r1".into(),
                source: "github".into(),
                scope: "acme".into(),
                kind: "component".into(),
                live: 10,
                would_delete: 9,
                max_ratio: 0.25,
            },
            now,
        )
        .await
        .expect("refusal");
        tx.commit().await.expect("commit");
        assert!(
            source
                .try_lease("github", "host:1", now, now, now)
                .await
                .expect("lease")
        );
        let mut dests = vec![(
            Store::connect("sqlite::memory:").await.expect("store"),
            None,
        )];
        if let Ok(url) = std::env::var("SURVEYOR_TEST_DATABASE_URL") {
            let schema = format!("t_copy_{}", uuid::Uuid::now_v7().simple());
            let options = crate::ConnectOptions {
                schema: Some(schema.clone()),
            };
            let pg = Store::connect_with(&url, options).await.expect("postgres");
            dests.push((pg, Some(schema)));
        }
        let original = source.dump().await.expect("dump");
        let filled =
            |d: &[TableDump], t: &str| d.iter().find(|x| x.table == t).map_or(0, |x| x.rows.len());
        assert_eq!(filled(&original, "refusals"), 1);
        assert_eq!(filled(&original, "leases"), 1);
        for (dest, schema) in dests {
            let counts = source.copy_into(&dest, false).await.expect("copy");
            assert_eq!(counts.total(), 2);
            assert_eq!(dest.dump().await.expect("dump"), original);
            let again = source.copy_into(&dest, false).await;
            assert!(matches!(again, Err(StoreError::Invalid(_))), "{again:?}");
            assert_eq!(
                dest.dump().await.expect("dump"),
                original,
                "nothing written"
            );
            if let Some(schema) = schema {
                dest.drop_schema(&schema).await.expect("drop");
            }
            dest.close().await;
        }
    }
}
