//! One SQL text for both backends: queries are written for Postgres and rewritten for SQLite
//! (casts dropped, `= ANY($n)` turned into `IN (SELECT value FROM json_each($n))`).

use std::borrow::Cow;

use sqlx::encode::IsNull;
use sqlx::error::BoxDynError;
use sqlx::postgres::{PgArgumentBuffer, PgTypeInfo};
use sqlx::sqlite::{SqliteArgumentsBuffer, SqliteTypeInfo};
use sqlx::{Encode, Postgres, Sqlite, Type};

use crate::Backend;

// Statements over a batch (`= ANY($n)`) are run with `.persistent(false)`: planned for each
// execution rather than prepared once. In a transaction that fills a table, Postgres's cached
// generic plan, made while `identity_keys` was nearly empty, used the index for `source` only and
// filtered every row of the source against the batch: the 100k initial load went quadratic
// (300 s instead of 11 s). One plan per batch of up to 4,000 keys costs nothing by comparison.

/// The statement text for `backend`. Only literal SQL from this crate passes through here.
pub(crate) fn sql(backend: Backend, pg: &'static str) -> Cow<'static, str> {
    match backend {
        Backend::Postgres => Cow::Borrowed(pg),
        Backend::Sqlite => {
            let mut s = pg.replace("::jsonb", "").replace("::text", "");
            while let Some(pos) = s.find("= ANY($") {
                let rest = &s[pos + "= ANY(".len()..];
                let end = rest.find(')').map_or(rest.len(), |i| i);
                let param = rest[..end].to_string();
                s = format!(
                    "{}IN (SELECT value FROM json_each({param})){}",
                    &s[..pos],
                    &rest[end + 1..]
                );
            }
            Cow::Owned(s)
        }
    }
}

/// A list of strings bound as one parameter: a `text[]` on Postgres, a JSON array on SQLite.
#[derive(Debug, Clone)]
pub(crate) struct StrList(pub Vec<String>);

impl Type<Sqlite> for StrList {
    fn type_info() -> SqliteTypeInfo {
        <String as Type<Sqlite>>::type_info()
    }
}

impl StrList {
    /// The list as SQLite takes it: a JSON array, read with `json_each`.
    pub(crate) fn json(&self) -> String {
        // A list of strings always serialises.
        serde_json::to_string(&self.0).unwrap_or_else(|_| "[]".into())
    }
}

impl Encode<'_, Sqlite> for StrList {
    fn encode_by_ref(&self, buf: &mut SqliteArgumentsBuffer) -> Result<IsNull, BoxDynError> {
        Encode::<Sqlite>::encode(self.json(), buf)
    }
}

impl Type<Postgres> for StrList {
    fn type_info() -> PgTypeInfo {
        <Vec<String> as Type<Postgres>>::type_info()
    }
}

impl Encode<'_, Postgres> for StrList {
    fn encode_by_ref(&self, buf: &mut PgArgumentBuffer) -> Result<IsNull, BoxDynError> {
        Encode::<Postgres>::encode_by_ref(&self.0, buf)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rewrites_for_sqlite() {
        let s = sql(
            Backend::Sqlite,
            "SELECT body::text FROM t WHERE a = ANY($1) AND b = $2::jsonb AND c = ANY($3)",
        );
        assert_eq!(
            s,
            "SELECT body FROM t WHERE a IN (SELECT value FROM json_each($1)) AND b = $2 AND c IN (SELECT value FROM json_each($3))"
        );
        let p = sql(
            Backend::Postgres,
            "SELECT body::text FROM t WHERE a = ANY($1)",
        );
        assert_eq!(p, "SELECT body::text FROM t WHERE a = ANY($1)");
    }
}
