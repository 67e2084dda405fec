//! Reads on SQLite through its C API, on a connection's own handle (a pooled reader's, or the
//! open transaction's): a statement's rows are stepped on the calling thread, where sqlx hands
//! every row over from its connection's thread.
//!
//! sqlx runs each SQLite connection on a thread of its own and sends a statement's rows one by
//! one over a channel; for a list page (50 entities and their relations) those hand-offs and the
//! per-row decoding were most of the request's CPU. [`Store::sqlite_read`] takes a reader from the
//! pool, locks its handle (one hand-off), runs every statement it is given, and returns. A page
//! of a few hundred kilobytes reads in a fraction of a millisecond, so the async thread it runs
//! on is held no longer than a sqlx read would hold it in hand-offs. A sync's reading path reads
//! the same way inside its transaction (`StoreTx::read_batched`).

use std::ffi::{CStr, CString, c_char, c_int};
use std::ptr::{self, NonNull};

use chrono::{DateTime, NaiveDateTime, Utc};
use libsqlite3_sys as ffi;

use crate::{EntityRow, RelationRow, Result, Store, StoreError};

impl Store {
    /// Runs `read` on a locked SQLite reader, or returns `None` on Postgres (whose driver reads
    /// rows on the calling task already).
    pub(crate) async fn sqlite_read<T>(
        &self,
        read: impl FnOnce(&mut Conn) -> Result<T>,
    ) -> Result<Option<T>> {
        self.sqlite_read_on(false, read).await
    }

    /// Like [`Store::sqlite_read`], for a read that steps a whole table: on a multi-threaded
    /// runtime the worker hands its other tasks to the others while it reads
    /// (`block_in_place`), so the read holds no task up.
    pub(crate) async fn sqlite_read_long<T>(
        &self,
        read: impl FnOnce(&mut Conn) -> Result<T>,
    ) -> Result<Option<T>> {
        self.sqlite_read_on(true, read).await
    }

    async fn sqlite_read_on<T>(
        &self,
        long: bool,
        read: impl FnOnce(&mut Conn) -> Result<T>,
    ) -> Result<Option<T>> {
        let Self::Sqlite { reader, .. } = self else {
            return Ok(None);
        };
        let mut pooled = reader.acquire().await?;
        let mut handle = pooled.lock_handle().await?;
        // SAFETY: while `handle` is held, sqlx's connection thread makes no call on this
        // connection or its statements; `conn` does not outlive `handle`.
        let mut conn = unsafe { Conn::new(handle.as_raw_handle()) };
        let multi = tokio::runtime::Handle::try_current()
            .is_ok_and(|h| h.runtime_flavor() == tokio::runtime::RuntimeFlavor::MultiThread);
        if long && multi {
            tokio::task::block_in_place(|| read(&mut conn)).map(Some)
        } else {
            read(&mut conn).map(Some)
        }
    }
}

/// A value bound to a `$n` parameter.
#[derive(Debug, Clone)]
pub(crate) enum Param {
    Text(String),
    Int(i64),
}

/// A locked connection: every statement runs while the handle is held.
pub(crate) struct Conn {
    db: NonNull<ffi::sqlite3>,
}

impl Conn {
    /// # Safety
    /// `db` must be an open connection that nothing else uses while this `Conn` lives (sqlx's
    /// `LockedSqliteHandle` guarantees that for as long as it is held).
    pub(crate) unsafe fn new(db: NonNull<ffi::sqlite3>) -> Self {
        Self { db }
    }

    /// Runs `text` with `params` bound to `$1`, `$2`, … and decodes every row.
    pub(crate) fn rows<T>(
        &mut self,
        text: &str,
        params: &[Param],
        mut decode: impl FnMut(&Row<'_>) -> Result<T>,
    ) -> Result<Vec<T>> {
        let mut stmt = self.prepare(text)?;
        stmt.bind(params)?;
        let mut out = Vec::new();
        loop {
            // SAFETY: the statement is live and belongs to this locked connection.
            match unsafe { ffi::sqlite3_step(stmt.raw) } {
                ffi::SQLITE_ROW => out.push(decode(&Row { stmt: &stmt })?),
                ffi::SQLITE_DONE => return Ok(out),
                code => return Err(self.error(code)),
            }
        }
    }

    /// Runs `text` with `params` and hands each row, decoded, to `visit` as it is stepped:
    /// a whole table without holding it (a visitor's error ends the read).
    pub(crate) fn each<T>(
        &mut self,
        text: &str,
        params: &[Param],
        mut decode: impl FnMut(&Row<'_>) -> Result<T>,
        mut visit: impl FnMut(T) -> Result<()>,
    ) -> Result<()> {
        let mut stmt = self.prepare(text)?;
        stmt.bind(params)?;
        loop {
            // SAFETY: the statement is live and belongs to this locked connection.
            match unsafe { ffi::sqlite3_step(stmt.raw) } {
                ffi::SQLITE_ROW => visit(decode(&Row { stmt: &stmt })?)?,
                ffi::SQLITE_DONE => return Ok(()),
                code => return Err(self.error(code)),
            }
        }
    }

    fn prepare(&self, text: &str) -> Result<Stmt<'_>> {
        let len = c_int::try_from(text.len())
            .map_err(|_| StoreError::Invalid("statement too long".into()))?;
        let mut raw = ptr::null_mut();
        // SAFETY: the handle is open and ours; SQLite reads `len` bytes of `text`.
        let code = unsafe {
            ffi::sqlite3_prepare_v2(
                self.db.as_ptr(),
                text.as_ptr().cast::<c_char>(),
                len,
                &mut raw,
                ptr::null_mut(),
            )
        };
        if code != ffi::SQLITE_OK {
            return Err(self.error(code));
        }
        Ok(Stmt { conn: self, raw })
    }

    fn error(&self, code: c_int) -> StoreError {
        // SAFETY: sqlite3_errmsg returns a NUL-terminated string owned by the connection.
        let message = unsafe { CStr::from_ptr(ffi::sqlite3_errmsg(self.db.as_ptr())) };
        StoreError::Sqlite {
            code,
            message: message.to_string_lossy().into_owned(),
        }
    }
}

/// A prepared statement, finalized when dropped.
struct Stmt<'c> {
    conn: &'c Conn,
    raw: *mut ffi::sqlite3_stmt,
}

impl Stmt<'_> {
    fn bind(&mut self, params: &[Param]) -> Result<()> {
        for (i, p) in params.iter().enumerate() {
            let name = CString::new(format!("${}", i + 1)).expect("no NUL in a parameter name");
            // SAFETY: the statement is live; the name is NUL-terminated.
            let index = unsafe { ffi::sqlite3_bind_parameter_index(self.raw, name.as_ptr()) };
            if index == 0 {
                // The statement does not use this parameter (sqlx ignores extras too).
                continue;
            }
            // SAFETY: SQLITE_TRANSIENT makes SQLite copy the text before this call returns.
            let code = unsafe {
                match p {
                    Param::Text(s) => ffi::sqlite3_bind_text64(
                        self.raw,
                        index,
                        s.as_ptr().cast::<c_char>(),
                        s.len() as u64,
                        ffi::SQLITE_TRANSIENT(),
                        ffi::SQLITE_UTF8 as u8,
                    ),
                    Param::Int(v) => ffi::sqlite3_bind_int64(self.raw, index, *v),
                }
            };
            if code != ffi::SQLITE_OK {
                return Err(self.conn.error(code));
            }
        }
        Ok(())
    }
}

impl Drop for Stmt<'_> {
    fn drop(&mut self) {
        // SAFETY: the statement was prepared on this connection and is finalized once.
        unsafe { ffi::sqlite3_finalize(self.raw) };
    }
}

/// The current row of a stepped statement.
pub(crate) struct Row<'s> {
    stmt: &'s Stmt<'s>,
}

impl Row<'_> {
    /// Column `i` as text, `None` for NULL.
    pub(crate) fn text(&self, i: c_int) -> Result<Option<&str>> {
        // SAFETY: the row is current (the statement was just stepped to SQLITE_ROW); the text
        // pointer stays valid until the next step, which needs `&mut` of the statement's owner.
        unsafe {
            let p = ffi::sqlite3_column_text(self.stmt.raw, i);
            if p.is_null() {
                return Ok(None);
            }
            let len = ffi::sqlite3_column_bytes(self.stmt.raw, i) as usize;
            let bytes = std::slice::from_raw_parts(p, len);
            std::str::from_utf8(bytes)
                .map(Some)
                .map_err(|e| StoreError::Corrupt {
                    table: "query",
                    detail: format!("column {i} is not UTF-8: {e}"),
                })
        }
    }

    /// Column `i` as an integer (NULL reads as 0, as SQLite converts it).
    pub(crate) fn int(&self, i: c_int) -> i64 {
        // SAFETY: the row is current (the statement was just stepped to SQLITE_ROW).
        unsafe { ffi::sqlite3_column_int64(self.stmt.raw, i) }
    }

    /// Column `i` as text, required.
    pub(crate) fn string(&self, i: c_int, table: &'static str) -> Result<String> {
        self.text(i)?
            .map(str::to_owned)
            .ok_or_else(|| StoreError::Corrupt {
                table,
                detail: format!("column {i} is NULL"),
            })
    }

    /// Column `i` as a time, as sqlx writes and reads them on SQLite (RFC 3339, or
    /// `YYYY-MM-DD HH:MM:SS[.f]` in UTC).
    pub(crate) fn time(&self, i: c_int, table: &'static str) -> Result<Option<DateTime<Utc>>> {
        let Some(s) = self.text(i)? else {
            return Ok(None);
        };
        if let Ok(t) = DateTime::parse_from_rfc3339(s) {
            return Ok(Some(t.with_timezone(&Utc)));
        }
        ["%Y-%m-%d %H:%M:%S%.f", "%Y-%m-%dT%H:%M:%S%.f"]
            .iter()
            .find_map(|f| NaiveDateTime::parse_from_str(s, f).ok())
            .map(|t| Some(t.and_utc()))
            .ok_or_else(|| StoreError::Corrupt {
                table,
                detail: format!("column {i} is not a time: {s:?}"),
            })
    }
}

/// Decodes [`crate::read`]'s entity columns, in their order.
pub(crate) fn entity(row: &Row<'_>) -> Result<EntityRow> {
    const T: &str = "entities";
    let required_time = |i| {
        row.time(i, T)?.ok_or_else(|| StoreError::Corrupt {
            table: T,
            detail: format!("column {i} is NULL"),
        })
    };
    Ok(EntityRow {
        uid: row.string(0, T)?,
        entity_ref: row.string(1, T)?,
        display_ref: row.string(2, T)?,
        kind: row.string(3, T)?,
        namespace: row.string(4, T)?,
        name: row.string(5, T)?,
        body: row.string(6, T)?,
        hash: row.string(7, T)?,
        sources: row.string(8, T)?,
        meta_hash: row.string(9, T)?,
        created_at: required_time(10)?,
        updated_at: required_time(11)?,
        deleted_at: row.time(12, T)?,
        deleted_run: row.text(13)?.map(str::to_owned),
    })
}

/// Decodes a relation row: origin, source, type, target, target as displayed.
pub(crate) fn relation(row: &Row<'_>) -> Result<RelationRow> {
    const T: &str = "relations";
    Ok(RelationRow {
        origin_ref: row.string(0, T)?,
        source_ref: row.string(1, T)?,
        kind: row.string(2, T)?,
        target_ref: row.string(3, T)?,
        target_display: row.string(4, T)?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    async fn store() -> (tempfile::TempDir, Store) {
        let dir = tempfile::tempdir().expect("dir");
        let url = format!("sqlite://{}", dir.path().join("c.db").display());
        (dir, Store::connect(&url).await.expect("open"))
    }

    #[tokio::test]
    async fn binds_parameters_by_number_and_reads_text_null_and_times() {
        let (_dir, store) = store().await;
        let rows = store
            .sqlite_read(|c| {
                c.rows(
                    "SELECT $2, $1 + 1, NULL, '2026-01-02 03:04:05.5', '2026-01-02T03:04:05+01:00'",
                    &[Param::Int(41), Param::Text("two".into())],
                    |r| {
                        Ok((
                            r.string(0, "t")?,
                            r.string(1, "t")?,
                            r.text(2)?.is_none(),
                            r.time(3, "t")?,
                            r.time(4, "t")?,
                        ))
                    },
                )
            })
            .await
            .expect("read")
            .expect("on SQLite");
        let (two, answer, null, naive, offset) = rows.into_iter().next().expect("a row");
        assert_eq!((two.as_str(), answer.as_str(), null), ("two", "42", true));
        assert_eq!(
            naive.map(|t| t.to_rfc3339()),
            Some("2026-01-02T03:04:05.500+00:00".into())
        );
        assert_eq!(
            offset.map(|t| t.to_rfc3339()),
            Some("2026-01-02T02:04:05+00:00".into())
        );
        store.close().await;
    }

    #[tokio::test]
    async fn errors_are_errors_not_rows() {
        let (_dir, store) = store().await;
        let read = |text: &'static str| {
            let store = store.clone();
            async move {
                store
                    .sqlite_read(|c| c.rows(text, &[], |r| r.time(0, "entities")))
                    .await
            }
        };
        let missing = read("SELECT x FROM no_such_table").await.unwrap_err();
        assert!(
            matches!(&missing, StoreError::Sqlite { message, .. } if message.contains("no such table")),
            "{missing}"
        );
        let not_utf8 = read("SELECT CAST(x'ff00' AS TEXT)").await.unwrap_err();
        assert!(matches!(not_utf8, StoreError::Corrupt { .. }), "{not_utf8}");
        let not_time = read("SELECT 'yesterday'").await.unwrap_err();
        assert!(
            matches!(&not_time, StoreError::Corrupt { table: "entities", detail } if detail.contains("yesterday")),
            "{not_time}"
        );
        // The reader is still usable after each failure (its statements were finalized).
        let ok = read("SELECT NULL").await.expect("read");
        assert_eq!(ok, Some(vec![None]));
        store.close().await;
    }
}
