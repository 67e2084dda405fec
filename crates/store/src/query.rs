//! Statements run the same way on both backends. A [`Query`] carries its executor (a
//! transaction's connection or a pool) with arguments for that executor's driver, so the code
//! that builds and runs a statement, and the code that reads its rows ([`RowRef`]), is written
//! once. The SQL text stays the caller's: see [`crate::sql::sql`] for the dialect rewrite.

use std::borrow::Cow;

use futures_util::TryStreamExt;
use futures_util::stream::BoxStream;
use sqlx::database::HasStatementCache;
use sqlx::error::BoxDynError;
use sqlx::postgres::{PgArguments, PgRow};
use sqlx::query_builder::Separated;
use sqlx::sqlite::{SqliteArguments, SqliteRow};
use sqlx::{
    Arguments, ColumnIndex, Database, Decode, Encode, Executor, FromRow, IntoArguments,
    PgConnection, PgPool, Postgres, QueryBuilder, Row, Sqlite, SqliteConnection, SqlitePool, Type,
};

use chrono::{DateTime, Utc};

use crate::sql::{StrList, sql};
use crate::sqlite_raw::{self, Conn, Param};
use crate::{Backend, Result, Store, StoreError, StoreTx};

/// Rows per multi-row statement: well under both backends' bind-parameter limits. Statements
/// over a list (`= ANY($n)`) take four times as many values, in one parameter.
pub(crate) const BATCH: usize = 500;

/// A value both drivers can bind.
pub(crate) trait Value<'t>:
    Encode<'t, Sqlite> + Type<Sqlite> + Encode<'t, Postgres> + Type<Postgres>
{
}

impl<'t, T> Value<'t> for T where
    T: Encode<'t, Sqlite> + Type<Sqlite> + Encode<'t, Postgres> + Type<Postgres>
{
}

/// A value both drivers can read from a column.
pub(crate) trait Column:
    for<'r> Decode<'r, Sqlite> + Type<Sqlite> + for<'r> Decode<'r, Postgres> + Type<Postgres>
{
}

impl<T> Column for T where
    T: for<'r> Decode<'r, Sqlite> + Type<Sqlite> + for<'r> Decode<'r, Postgres> + Type<Postgres>
{
}

/// A column name or position, on either driver's rows.
pub(crate) trait ColumnRef: ColumnIndex<SqliteRow> + ColumnIndex<PgRow> {}

impl<I> ColumnRef for I where I: ColumnIndex<SqliteRow> + ColumnIndex<PgRow> {}

/// One row of a result, from either driver.
#[derive(Clone, Copy)]
pub(crate) enum RowRef<'r> {
    Sqlite(&'r SqliteRow),
    Postgres(&'r PgRow),
}

impl RowRef<'_> {
    /// The value of one column (by name or position).
    pub(crate) fn get<T: Column>(self, column: impl ColumnRef) -> Result<T> {
        Ok(match self {
            Self::Sqlite(r) => r.try_get(column)?,
            Self::Postgres(r) => r.try_get(column)?,
        })
    }
}

/// A row type both drivers can decode (by column name, with `#[derive(sqlx::FromRow)]`).
pub(crate) trait Decoded:
    for<'r> FromRow<'r, SqliteRow> + for<'r> FromRow<'r, PgRow>
{
}

impl<T> Decoded for T where T: for<'r> FromRow<'r, SqliteRow> + for<'r> FromRow<'r, PgRow> {}

/// A whole row as `T`.
pub(crate) fn decode<T: Decoded>(row: RowRef<'_>) -> Result<T> {
    Ok(match row {
        RowRef::Sqlite(r) => T::from_row(r)?,
        RowRef::Postgres(r) => T::from_row(r)?,
    })
}

/// A driver's row type, seen as a [`RowRef`].
trait AsRowRef {
    fn as_row_ref(&self) -> RowRef<'_>;
}

impl AsRowRef for SqliteRow {
    fn as_row_ref(&self) -> RowRef<'_> {
        RowRef::Sqlite(self)
    }
}

impl AsRowRef for PgRow {
    fn as_row_ref(&self) -> RowRef<'_> {
        RowRef::Postgres(self)
    }
}

/// A statement with its arguments, bound to where it runs: `S` on SQLite, `P` on Postgres.
pub(crate) struct Query<S, P> {
    text: Cow<'static, str>,
    persistent: bool,
    target: Target<S, P>,
}

/// The executor and the arguments added so far (or the first encoding failure, reported when
/// the statement runs, as sqlx does).
enum Target<S, P> {
    Sqlite(S, Result<SqliteArguments, BoxDynError>),
    Postgres(P, Result<PgArguments, BoxDynError>),
}

/// A statement on a transaction's connection.
pub(crate) type TxQuery<'c> = Query<&'c mut SqliteConnection, &'c mut PgConnection>;
/// A statement on the store's read pool.
pub(crate) type PoolQuery<'p> = Query<&'p SqlitePool, &'p PgPool>;

/// Appends one argument, keeping the first failure.
fn add_argument<'t, A, T>(arguments: &mut Result<A, BoxDynError>, value: T)
where
    A: Arguments,
    T: Encode<'t, A::Database> + Type<A::Database>,
{
    if let Ok(args) = arguments {
        let number = args.len() + 1;
        if let Err(error) = args.add(value) {
            *arguments = Err(format!("Encoding argument ${number} failed: {error}").into());
        }
    }
}

/// The sqlx query for one driver, or the failure to encode an argument (the error sqlx gives
/// when it runs a query whose `bind` failed). The text is this crate's own SQL (see
/// [`crate::sql::sql`]).
fn driver_query<DB>(
    text: Cow<'static, str>,
    arguments: Result<DB::Arguments, BoxDynError>,
    persistent: bool,
) -> Result<sqlx::query::Query<'static, DB, DB::Arguments>>
where
    DB: Database + HasStatementCache,
    DB::Arguments: IntoArguments<DB>,
{
    let arguments = arguments.map_err(sqlx::Error::Encode)?;
    Ok(sqlx::query_with(sqlx::AssertSqlSafe(text), arguments).persistent(persistent))
}

/// Decodes a result row by row, never holding the rows and their values at once.
async fn collect<R, T>(
    mut rows: BoxStream<'_, Result<R, sqlx::Error>>,
    mut decode: impl FnMut(RowRef<'_>) -> Result<T>,
) -> Result<Vec<T>>
where
    R: AsRowRef,
{
    let mut out = Vec::new();
    while let Some(row) = rows.try_next().await? {
        out.push(decode(row.as_row_ref())?);
    }
    Ok(out)
}

impl<S, P> Query<S, P> {
    fn sqlite(executor: S, text: Cow<'static, str>) -> Self {
        Self {
            text,
            persistent: true,
            target: Target::Sqlite(executor, Ok(SqliteArguments::default())),
        }
    }

    fn postgres(executor: P, text: Cow<'static, str>) -> Self {
        Self {
            text,
            persistent: true,
            target: Target::Postgres(executor, Ok(PgArguments::default())),
        }
    }

    /// Binds the next parameter (`$1`, `$2`, ... in order).
    pub(crate) fn bind<'t, T: Value<'t>>(mut self, value: T) -> Self {
        match &mut self.target {
            Target::Sqlite(_, args) => add_argument(args, value),
            Target::Postgres(_, args) => add_argument(args, value),
        }
        self
    }

    /// Binds `params` as the next parameters, in order.
    pub(crate) fn bind_all(mut self, params: impl IntoIterator<Item = Param>) -> Self {
        for p in params {
            self = match p {
                Param::Text(s) => self.bind(s),
                Param::Int(i) => self.bind(i),
            };
        }
        self
    }

    /// Whether the prepared statement is kept in the connection's cache (the default).
    pub(crate) fn persistent(mut self, persistent: bool) -> Self {
        self.persistent = persistent;
        self
    }
}

impl<'c, S, P> Query<S, P>
where
    S: Executor<'c, Database = Sqlite>,
    P: Executor<'c, Database = Postgres>,
{
    /// Runs the statement; the number of rows it affected.
    pub(crate) async fn execute(self) -> Result<u64> {
        let (text, persistent) = (self.text, self.persistent);
        Ok(match self.target {
            Target::Sqlite(e, args) => driver_query(text, args, persistent)?
                .execute(e)
                .await?
                .rows_affected(),
            Target::Postgres(e, args) => driver_query(text, args, persistent)?
                .execute(e)
                .await?
                .rows_affected(),
        })
    }

    /// Every row of the result, decoded as it streams in.
    pub(crate) async fn fetch_all<T>(
        self,
        decode: impl FnMut(RowRef<'_>) -> Result<T>,
    ) -> Result<Vec<T>> {
        let (text, persistent) = (self.text, self.persistent);
        match self.target {
            Target::Sqlite(e, args) => {
                collect(driver_query(text, args, persistent)?.fetch(e), decode).await
            }
            Target::Postgres(e, args) => {
                collect(driver_query(text, args, persistent)?.fetch(e), decode).await
            }
        }
    }

    /// The first row of the result, if any.
    pub(crate) async fn fetch_optional<T>(
        self,
        decode: impl FnOnce(RowRef<'_>) -> Result<T>,
    ) -> Result<Option<T>> {
        let (text, persistent) = (self.text, self.persistent);
        match self.target {
            Target::Sqlite(e, args) => driver_query(text, args, persistent)?
                .fetch_optional(e)
                .await?
                .map(|r| decode(r.as_row_ref()))
                .transpose(),
            Target::Postgres(e, args) => driver_query(text, args, persistent)?
                .fetch_optional(e)
                .await?
                .map(|r| decode(r.as_row_ref()))
                .transpose(),
        }
    }

    /// The first row of the result; an error if there is none (as sqlx's `fetch_one`).
    pub(crate) async fn fetch_one<T>(
        self,
        decode: impl FnOnce(RowRef<'_>) -> Result<T>,
    ) -> Result<T> {
        self.fetch_optional(decode)
            .await?
            .ok_or_else(|| sqlx::Error::RowNotFound.into())
    }
}

/// The values of one row of a multi-row `INSERT`, on either driver.
pub(crate) enum RowValues<'a> {
    Sqlite(Separated<'a, Sqlite, &'static str>),
    Postgres(Separated<'a, Postgres, &'static str>),
}

impl RowValues<'_> {
    /// Binds the next value of the row.
    pub(crate) fn bind<'t, T: Value<'t>>(&mut self, value: T) -> &mut Self {
        match self {
            Self::Sqlite(s) => {
                s.push_bind(value);
            }
            Self::Postgres(s) => {
                s.push_bind(value);
            }
        }
        self
    }

    /// Binds JSON text for a JSON column (cast to `jsonb` on Postgres).
    pub(crate) fn json(&mut self, value: String) -> &mut Self {
        self.bind(value);
        if let Self::Postgres(s) = self {
            s.push_unseparated("::jsonb");
        }
        self
    }
}

/// A driver whose multi-row `INSERT`s [`RowValues`] fills.
trait ValuesDriver: Database {
    fn row_values<'a>(values: Separated<'a, Self, &'static str>) -> RowValues<'a>;
}

impl ValuesDriver for Sqlite {
    fn row_values<'a>(values: Separated<'a, Self, &'static str>) -> RowValues<'a> {
        RowValues::Sqlite(values)
    }
}

impl ValuesDriver for Postgres {
    fn row_values<'a>(values: Separated<'a, Self, &'static str>) -> RowValues<'a> {
        RowValues::Postgres(values)
    }
}

/// `head`, a `VALUES` list of `rows`, then `tail`.
fn values_statement<DB, T>(
    head: &str,
    rows: &[T],
    push: &mut impl FnMut(&mut RowValues<'_>, &T),
    tail: &'static str,
) -> QueryBuilder<DB>
where
    DB: ValuesDriver,
{
    let mut qb = QueryBuilder::new(head);
    qb.push_values(rows, |values, row| push(&mut DB::row_values(values), row));
    qb.push(tail);
    qb
}

/// A multi-row `INSERT` of `T`: the column list, how one row binds its values, and what follows
/// the `VALUES` list. `now` is the time the rows are written at, for the columns that keep it.
pub(crate) struct Insert<T> {
    pub(crate) head: &'static str,
    pub(crate) push: fn(&mut RowValues<'_>, &T, DateTime<Utc>),
    pub(crate) tail: &'static str,
}

/// A statement with its values bound, built ahead of the transaction that runs it.
pub(crate) enum Built {
    Sqlite(QueryBuilder<Sqlite>),
    Postgres(QueryBuilder<Postgres>),
}

impl<T> Insert<T> {
    /// The statements for `rows`, [`BATCH`] rows each.
    pub(crate) fn build(&self, backend: Backend, rows: &[T], now: DateTime<Utc>) -> Vec<Built> {
        rows.chunks(BATCH)
            .map(|chunk| self.statement(backend, chunk, now))
            .collect()
    }

    fn statement(&self, backend: Backend, rows: &[T], now: DateTime<Utc>) -> Built {
        let mut push = |b: &mut RowValues<'_>, r: &T| (self.push)(b, r, now);
        match backend {
            Backend::Sqlite => {
                Built::Sqlite(values_statement(self.head, rows, &mut push, self.tail))
            }
            Backend::Postgres => {
                Built::Postgres(values_statement(self.head, rows, &mut push, self.tail))
            }
        }
    }
}

impl StoreTx {
    /// Inserts `rows` as `insert` says, one statement of [`BATCH`] rows at a time.
    pub(crate) async fn insert<T>(
        &mut self,
        insert: &Insert<T>,
        rows: &[T],
        now: DateTime<Utc>,
    ) -> Result<()> {
        for chunk in rows.chunks(BATCH) {
            let built = insert.statement(self.backend(), chunk, now);
            self.run_built(built).await?;
        }
        Ok(())
    }

    /// Runs a statement built ahead.
    pub(crate) async fn run_built(&mut self, built: Built) -> Result<()> {
        match (self, built) {
            (Self::Sqlite(t), Built::Sqlite(mut qb)) => {
                qb.build().execute(&mut **t).await?;
            }
            (Self::Postgres(t), Built::Postgres(mut qb)) => {
                qb.build().execute(&mut **t).await?;
            }
            _ => {
                return Err(StoreError::Invalid(
                    "a statement built for one database was run on the other".into(),
                ));
            }
        }
        Ok(())
    }

    /// A statement on this transaction.
    pub(crate) fn query(&mut self, text: impl Into<Cow<'static, str>>) -> TxQuery<'_> {
        match self {
            Self::Sqlite(t) => Query::sqlite(&mut **t, text.into()),
            Self::Postgres(t) => Query::postgres(&mut **t, text.into()),
        }
    }

    /// Inserts `rows` in multi-row statements of [`BATCH`] rows: `head` (the column list),
    /// each row's values as `push` binds them, then `tail` (an `ON CONFLICT` clause, say).
    pub(crate) async fn insert_values<T>(
        &mut self,
        head: &str,
        rows: &[T],
        mut push: impl FnMut(&mut RowValues<'_>, &T),
        tail: &'static str,
    ) -> Result<()> {
        for chunk in rows.chunks(BATCH) {
            match self {
                Self::Sqlite(t) => {
                    values_statement::<Sqlite, _>(head, chunk, &mut push, tail)
                        .build()
                        .execute(&mut **t)
                        .await?;
                }
                Self::Postgres(t) => {
                    values_statement::<Postgres, _>(head, chunk, &mut push, tail)
                        .build()
                        .execute(&mut **t)
                        .await?;
                }
            }
        }
        Ok(())
    }

    /// Runs `pg` (in this transaction's dialect, see [`crate::sql::sql`]), whose last parameter
    /// is a list (`= ANY($n)`), once per batch of `list`; `bind` binds the parameters before it.
    pub(crate) async fn execute_batched(
        &mut self,
        pg: &'static str,
        list: &[String],
        bind: impl Fn(TxQuery<'_>) -> TxQuery<'_>,
    ) -> Result<()> {
        let text = sql(self.backend(), pg);
        for chunk in list.chunks(BATCH * 4) {
            bind(self.query(text.clone()))
                .bind(StrList(chunk.to_vec()))
                .persistent(false)
                .execute()
                .await?;
        }
        Ok(())
    }

    /// As [`StoreTx::fetch_batched`], with `first` bound before the list, and on SQLite through
    /// its C API on the transaction's own connection: one hand-off to the connection's thread
    /// per statement, where sqlx hands over each row (the reading path of a sync reads tens of
    /// thousands). `raw` reads a SQLite row by column position; `decode` reads a Postgres row,
    /// whose driver reads rows on the calling task already.
    pub(crate) async fn read_batched<T>(
        &mut self,
        pg: &'static str,
        first: &[Param],
        list: &[String],
        mut raw: impl FnMut(&sqlite_raw::Row<'_>) -> Result<T>,
        decode: impl FnMut(RowRef<'_>) -> Result<T>,
    ) -> Result<Vec<T>> {
        let Self::Sqlite(tx) = self else {
            return self
                .fetch_batched(pg, list, |q| q.bind_all(first.iter().cloned()), decode)
                .await;
        };
        let text = sql(Backend::Sqlite, pg);
        let mut handle = tx.lock_handle().await?;
        // SAFETY: while `handle` is held, sqlx's connection thread makes no call on this
        // connection or its statements; `conn` does not outlive `handle`.
        let mut conn = unsafe { Conn::new(handle.as_raw_handle()) };
        let mut out = Vec::new();
        for chunk in list.chunks(BATCH * 4) {
            let mut params = first.to_vec();
            params.push(Param::Text(StrList(chunk.to_vec()).json()));
            out.extend(conn.rows(&text, &params, &mut raw)?);
        }
        Ok(out)
    }

    /// Like [`Self::execute_batched`], for a query: the rows of every batch, decoded.
    pub(crate) async fn fetch_batched<T>(
        &mut self,
        pg: &'static str,
        list: &[String],
        bind: impl Fn(TxQuery<'_>) -> TxQuery<'_>,
        mut decode: impl FnMut(RowRef<'_>) -> Result<T>,
    ) -> Result<Vec<T>> {
        let text = sql(self.backend(), pg);
        let mut out = Vec::new();
        for chunk in list.chunks(BATCH * 4) {
            let rows = bind(self.query(text.clone()))
                .bind(StrList(chunk.to_vec()))
                .persistent(false)
                .fetch_all(&mut decode)
                .await?;
            out.extend(rows);
        }
        Ok(out)
    }
}

impl Store {
    /// Runs `pg` (in this store's dialect, see [`crate::sql::sql`]) in a transaction of its
    /// own, with the parameters `bind` binds; the number of rows it affected.
    pub(crate) async fn execute_alone(
        &self,
        pg: &'static str,
        bind: impl FnOnce(TxQuery<'_>) -> TxQuery<'_>,
    ) -> Result<u64> {
        let mut tx = self.begin().await?;
        let text = sql(tx.backend(), pg);
        let n = bind(tx.query(text)).execute().await?;
        tx.commit().await?;
        Ok(n)
    }

    /// A statement on the store's read pool.
    pub(crate) fn query(&self, text: impl Into<Cow<'static, str>>) -> PoolQuery<'_> {
        match self {
            Self::Sqlite { reader, .. } => Query::sqlite(reader, text.into()),
            Self::Postgres(pool) => Query::postgres(pool, text.into()),
        }
    }
}
