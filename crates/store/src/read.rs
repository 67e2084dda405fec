//! Reads for the engine, the CLI and the API: observation indexes, entities, relations, history.

use chrono::{DateTime, Utc};

use crate::query::{RowRef, decode};
use crate::sql::sql;
use crate::sqlite_raw::{self, Param};
use crate::{
    ChangeOp, ChangeRow, EntityRow, ObservationIndexRow, RelationRow, Result, RunRow, Store,
    StoreError,
};

/// Filters for [`Store::list_entities`]. Keys are compared lower-cased.
#[derive(Debug, Clone, Default)]
pub struct EntityFilter {
    pub kind: Option<String>,
    pub namespace: Option<String>,
    /// An owner ref key (`group:default/team-a`): entities with an `ownedBy` relation to it.
    pub owner: Option<String>,
    pub include_deleted: bool,
    /// Return entities whose key sorts after this one (cursor pagination).
    pub after: Option<String>,
    pub limit: Option<i64>,
    /// Skip this many of the matching entities first (Backstage's offset paging).
    pub offset: Option<i64>,
    /// Entities whose `spec.packageDependencies` lists this package ("who depends on X").
    pub depends_on: Option<PackageFilter>,
    /// `metadata.labels[key] == value`.
    pub label: Option<(String, String)>,
    /// Entities a source (connector id) describes.
    pub source: Option<String>,
    /// A case-insensitive substring of the ref, title, description or a tag.
    pub text: Option<String>,
    /// `spec.lifecycle` (`production`, `experimental`, ...), compared case-insensitively.
    pub lifecycle: Option<String>,
    /// Classified so: (facet, value) pairs that must all hold (`("tier", "tier-1")`). A value
    /// also matches the values it heads (`typescript` matches the stack `typescript/react`).
    pub classified: Vec<(String, String)>,
}

/// A package that entities depend on, matched against the elements of
/// `spec.packageDependencies` (`{"ecosystem": "npm", "package": "react", ...}`). Both fields are
/// compared exactly (case-sensitive), unlike the entity keys above.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PackageFilter {
    /// `cargo`, `npm`, `go`, `pypi` or `maven`; `None` matches the package in any ecosystem.
    pub ecosystem: Option<String>,
    /// The package's name in its ecosystem (`react`, `org.apache.logging.log4j:log4j-core`).
    pub package: String,
}

impl PackageFilter {
    /// Whether one element of `spec.packageDependencies` is this package: the same test the
    /// store's query makes, for callers that show which dependency matched.
    pub fn matches(&self, dependency: &serde_json::Value) -> bool {
        dependency
            .get("package")
            .and_then(serde_json::Value::as_str)
            == Some(&self.package)
            && self.ecosystem.as_deref().is_none_or(|eco| {
                dependency
                    .get("ecosystem")
                    .and_then(serde_json::Value::as_str)
                    == Some(eco)
            })
    }
}

/// What follows `FROM` for an entity filter (the rows it reads and its `WHERE`), and its text
/// parameters (`$1`, `$2`, ... in order). Only fixed SQL fragments are spliced; every value is
/// bound.
fn entity_rows(backend: crate::Backend, f: &EntityFilter) -> (String, Vec<String>) {
    let pg = backend == crate::Backend::Postgres;
    let mut conds: Vec<String> = vec!["1 = 1".into()];
    let mut params: Vec<String> = Vec::new();
    let next = |params: &mut Vec<String>, v: String| {
        params.push(v);
        format!("${}", params.len())
    };
    if !f.include_deleted {
        conds.push("deleted_at IS NULL".into());
    }
    if let Some(k) = &f.kind {
        let p = next(&mut params, k.to_ascii_lowercase());
        conds.push(format!("kind = {p}"));
    }
    if let Some(ns) = &f.namespace {
        let p = next(&mut params, ns.to_ascii_lowercase());
        conds.push(format!("namespace = {p}"));
    }
    let mut after_param = None;
    if let Some(after) = &f.after {
        let p = next(&mut params, after.to_ascii_lowercase());
        conds.push(format!("entity_ref > {p}"));
        after_param = Some(p);
    }
    // Sets of refs read from an index of their own: the owner's (relations_by_target, which
    // holds source_ref, so the list is read from the index alone) and a label's (entity_labels,
    // kept by triggers). Each is small next to its kind, and probing every entity of the kind
    // would scan it. `(ref column, rows, whether a ref can be listed twice)`: two origins can
    // state one ownership; a label's key is its table's.
    let mut sets: Vec<(&str, String, bool)> = Vec::new();
    if let Some(owner) = &f.owner {
        let p = next(&mut params, owner.to_ascii_lowercase());
        sets.push((
            "r.source_ref",
            format!("relations r WHERE r.target_ref = {p} AND r.type = 'ownedBy'"),
            true,
        ));
    }
    if let Some((key, value)) = &f.label {
        let k = next(&mut params, key.clone());
        let v = next(&mut params, value.clone());
        sets.push((
            "l.entity_ref",
            format!("entity_labels l WHERE l.key = {k} AND l.value = {v}"),
            false,
        ));
    }
    let mut from = "entities".to_string();
    for (i, (column, rows, repeats)) in sets.iter().enumerate() {
        if pg && i == 0 {
            // The index gives the set's refs in order, so a page joins them one by one and
            // stops at its limit. Written as `IN`, Postgres hashes them all, probes an entity
            // for each and sorts: in `pgbench`, 2.7 against 0.6 ms for a page of 50 of a team's
            // 200, 2.7 against 0.43 ms for a label on 1,000 entities. A set without repeats is
            // joined as it is, so the planner weighs the page's limit against reading it whole.
            // SQLite walks an `IN` list in order and stops by itself.
            let after = after_param
                .as_ref()
                .map(|a| format!(" AND {column} > {a}"))
                .unwrap_or_default();
            let set = if *repeats {
                format!("SELECT DISTINCT {column} AS member FROM {rows}{after} ORDER BY {column}")
            } else {
                format!("SELECT {column} AS member FROM {rows}{after}")
            };
            from = format!("({set}) members JOIN entities ON entities.entity_ref = members.member");
        } else {
            conds.push(format!("entity_ref IN (SELECT {column} FROM {rows})"));
        }
    }
    if let Some(source) = &f.source {
        let p = next(&mut params, source.clone());
        conds.push(if pg {
            format!("sources @> jsonb_build_array(jsonb_build_object('source', {p}::text))")
        } else {
            format!(
                "EXISTS (SELECT 1 FROM json_each(entities.sources) s \
                 WHERE json_extract(s.value, '$.source') = {p})"
            )
        });
    }
    if let Some(q) = f.text.as_deref().map(str::trim).filter(|q| !q.is_empty()) {
        // A case-insensitive substring of the ref, title or description; LIKE's own wildcards
        // in the query are matched literally.
        let p = next(
            &mut params,
            format!("%{}%", like_escaped(&q.to_lowercase())),
        );
        // `search` is the lower-cased ref, title, description and tags, a generated column
        // (migration 0007). On SQLite the search reads its index, never the bodies: the planner
        // would otherwise walk the table in ref order and compute it row by row.
        conds.push(if pg {
            format!("search LIKE {p} ESCAPE '\\'")
        } else {
            format!(
                "entity_ref IN (SELECT entity_ref FROM entities INDEXED BY entities_search \
                 WHERE search LIKE {p} ESCAPE '\\')"
            )
        });
    }
    if let Some(lifecycle) = &f.lifecycle {
        let p = next(&mut params, lifecycle.to_lowercase());
        conds.push(if pg {
            format!("lower(body->'spec'->>'lifecycle') = {p}")
        } else {
            format!("lower(json_extract(body, '$.spec.lifecycle')) = {p}")
        });
    }
    for (facet, value) in &f.classified {
        let value = value.to_ascii_lowercase();
        let heads = format!("{}/%", like_escaped(&value));
        let facet = next(&mut params, facet.to_ascii_lowercase());
        let exact = next(&mut params, value);
        let heads = next(&mut params, heads);
        conds.push(format!(
            "entity_ref IN (SELECT c.entity_ref FROM classifications c WHERE c.facet = {facet} \
             AND (c.value = {exact} OR c.value LIKE {heads} ESCAPE '\\'))"
        ));
    }
    if let Some(dep) = &f.depends_on {
        if pg {
            let mut element = serde_json::Map::new();
            element.insert("package".into(), dep.package.clone().into());
            if let Some(eco) = &dep.ecosystem {
                element.insert("ecosystem".into(), eco.clone().into());
            }
            let p = next(
                &mut params,
                serde_json::Value::Array(vec![element.into()]).to_string(),
            );
            // Containment: some element holds these keys with these values.
            conds.push(format!("body->'spec'->'packageDependencies' @> {p}::jsonb"));
        } else {
            // Elements that are not objects never match; the `CASE` keeps `json_extract` from
            // parsing them (a bare string element is not JSON text and would make it fail).
            let element = "CASE WHEN d.type = 'object' THEN d.value END";
            let p = next(&mut params, dep.package.clone());
            let mut c = format!(
                "EXISTS (SELECT 1 FROM json_each(entities.body, '$.spec.packageDependencies') d \
                 WHERE json_extract({element}, '$.package') = {p}"
            );
            if let Some(eco) = &dep.ecosystem {
                let e = next(&mut params, eco.clone());
                c.push_str(&format!(
                    " AND json_extract({element}, '$.ecosystem') = {e}"
                ));
            }
            c.push(')');
            conds.push(c);
        }
    }
    (format!("{from} WHERE {}", conds.join(" AND ")), params)
}

/// `text` with LIKE's wildcards and escape character escaped (by `\\`), to match literally.
pub(crate) fn like_escaped(text: &str) -> String {
    text.replace('\\', "\\\\")
        .replace('%', "\\%")
        .replace('_', "\\_")
}

/// See [`Store::catalog_stats`].
#[derive(Debug, Clone, Default, PartialEq)]
pub struct CatalogStats {
    /// (connector, status, runs)
    pub runs: Vec<(String, String, i64)>,
    /// Summed wall time of finished runs per connector.
    pub run_seconds: std::collections::BTreeMap<String, f64>,
    /// (op, changes)
    pub changes: Vec<(String, i64)>,
    pub refusals: i64,
}

/// Filters for [`Store::list_changes`].
#[derive(Debug, Clone, Default)]
pub struct ChangeFilter {
    pub since: Option<DateTime<Utc>>,
    /// Only changes of this kind.
    pub op: Option<ChangeOp>,
    /// Only the history of this entity (all its names: history follows renames).
    pub entity_uid: Option<String>,
    /// Only changes after this one (`seq` greater).
    pub after_seq: Option<i64>,
    /// Only changes before this one (`seq` smaller).
    pub before_seq: Option<i64>,
    /// Newest first; the default is oldest first (the order they happened in).
    pub descending: bool,
    pub limit: Option<i64>,
    /// Only changes a source (connector id) made.
    pub source: Option<String>,
    /// Only changes of entities of this kind (`component`), case-insensitive.
    pub kind: Option<String>,
    /// Only changes before this time.
    pub until: Option<DateTime<Utc>>,
}

/// The most rows a read takes through SQLite's C API ([`crate::sqlite_raw`]): pages, not whole
/// tables, which sqlx streams from its own thread instead of holding an async thread.
const RAW_ROWS: usize = 5_000;

/// Whether a filter asks for a page small enough for [`RAW_ROWS`].
fn raw_page(f: &EntityFilter) -> bool {
    f.limit.is_some_and(|l| (0..=RAW_ROWS as i64).contains(&l))
}

/// Relations as stored (one row per origin) sorted by source, type and target, each listed once:
/// the least origin and the least display form of the target stand for all of them. Sorted by
/// bytes, as SQLite's `ORDER BY` and Postgres's under the `C` collation sort.
fn collapse(mut rows: Vec<RelationRow>) -> Vec<RelationRow> {
    rows.sort_unstable_by(|a, b| {
        (&a.source_ref, &a.kind, &a.target_ref, &a.origin_ref).cmp(&(
            &b.source_ref,
            &b.kind,
            &b.target_ref,
            &b.origin_ref,
        ))
    });
    rows.dedup_by(|later, kept| {
        let same = later.source_ref == kept.source_ref
            && later.kind == kept.kind
            && later.target_ref == kept.target_ref;
        if same && later.target_display < kept.target_display {
            std::mem::swap(&mut kept.target_display, &mut later.target_display);
        }
        same
    });
    rows
}

/// Lower-cased keys as one parameter, as [`crate::sql::StrList`] binds them on SQLite.
fn key_list<'k>(keys: impl Iterator<Item = &'k str>) -> String {
    crate::sql::StrList(keys.map(str::to_ascii_lowercase).collect()).json()
}

/// A page's rows through the C API (`text` with `params`), and their relations as stored
/// (`relations`, given the page's refs).
fn read_page(
    c: &mut sqlite_raw::Conn,
    text: &str,
    params: &[Param],
    relations: &str,
) -> Result<(Vec<EntityRow>, Vec<RelationRow>)> {
    let rows = c.rows(text, params, sqlite_raw::entity)?;
    let keys = key_list(rows.iter().map(|r| r.entity_ref.as_str()));
    let rels = c.rows(relations, &[Param::Text(keys)], sqlite_raw::relation)?;
    Ok((rows, rels))
}

/// An entity row's columns. The body is read as `body_text`, the text the database keeps beside
/// Postgres's JSONB (migration 0011; virtual on SQLite): turning JSONB into text on every read
/// was the largest piece of a list page's work on the server.
const ENTITY_COLUMNS: &str = "uid, entity_ref, display_ref, kind, namespace, name, body_text AS body, hash, \
     sources::text AS sources, meta_hash, created_at, updated_at, deleted_at, deleted_run";

impl Store {
    /// Every observation one source has ever made (live and deleted), for diffing a crawl.
    pub async fn observation_index(&self, source: &str) -> Result<Vec<ObservationIndexRow>> {
        let q = sql(
            self.backend(),
            "SELECT external_id, scope, entity_ref, kind, hash, deleted_at IS NULL AS live \
             FROM observations WHERE source = $1",
        );
        // Streamed: a large source's index is built row by row, never held twice.
        self.query(q).bind(source).fetch_all(decode).await
    }

    /// Entities in key order, filtered.
    pub async fn list_entities(&self, f: &EntityFilter) -> Result<Vec<EntityRow>> {
        let (text, params) = self.list_statement(f);
        if raw_page(f)
            && let Some(rows) = self
                .sqlite_read(|c| c.rows(&text, &params, sqlite_raw::entity))
                .await?
        {
            return Ok(rows);
        }
        self.query(text).bind_all(params).fetch_all(decode).await
    }

    /// Every entity a filter matches, in key order, handed to `visit` one at a time as the rows
    /// stream in: a whole catalog is read without being held.
    pub async fn for_each_entity(
        &self,
        f: &EntityFilter,
        mut visit: impl FnMut(EntityRow) -> Result<()>,
    ) -> Result<()> {
        let (text, params) = self.list_statement(f);
        // On SQLite the rows are stepped through its C API on this thread, one statement (one
        // snapshot), instead of each being handed over from sqlx's connection thread.
        let read = self
            .sqlite_read_long(|c| c.each(&text, &params, sqlite_raw::entity, &mut visit))
            .await?;
        if read.is_some() {
            return Ok(());
        }
        // Each row is visited as it is decoded; the `Vec<()>` this collects never allocates.
        self.query(text)
            .bind_all(params)
            .fetch_all(|r| visit(decode(r)?))
            .await
            .map(drop)
    }

    /// A page of entities (a filter with a `limit`) and the relations of each, as
    /// [`Store::list_entities`] then [`Store::relations_of_many`] return them; on SQLite both are
    /// read in one go on one reader.
    pub async fn entity_page(
        &self,
        f: &EntityFilter,
    ) -> Result<(Vec<EntityRow>, Vec<RelationRow>)> {
        if raw_page(f) {
            let (text, params) = self.list_statement(f);
            let relations = self.relations_statement();
            let read = self
                .sqlite_read(|c| read_page(c, &text, &params, &relations))
                .await?;
            if let Some((rows, relations)) = read {
                return Ok((rows, collapse(relations)));
            }
        }
        let rows = self.list_entities(f).await?;
        let keys: Vec<String> = rows.iter().map(|r| r.entity_ref.clone()).collect();
        let relations = self.relations_of_many(&keys).await?;
        Ok((rows, relations))
    }

    /// The statement and parameters of [`Store::list_entities`].
    fn list_statement(&self, f: &EntityFilter) -> (String, Vec<Param>) {
        let (rows, params) = entity_rows(self.backend(), f);
        let limit = f.limit.unwrap_or(i64::MAX);
        let offset = f.offset.unwrap_or(0).max(0);
        let text = format!(
            "SELECT {ENTITY_COLUMNS} FROM {rows} ORDER BY entity_ref LIMIT ${} \
             OFFSET ${}",
            params.len() + 1,
            params.len() + 2
        );
        let text = match self.backend() {
            crate::Backend::Postgres => text,
            crate::Backend::Sqlite => text.replace("::text", ""),
        };
        let mut params: Vec<Param> = params.into_iter().map(Param::Text).collect();
        params.extend([Param::Int(limit), Param::Int(offset)]);
        (text, params)
    }

    /// A page of entities with their relations, as [`Store::entity_page`], and how many entities
    /// the filter matches in all (its `after`, `limit` and `offset` ignored). On SQLite the count
    /// and the page are read on one reader, in one hand-off; on Postgres on two connections at
    /// once.
    pub async fn entity_page_counted(
        &self,
        f: &EntityFilter,
    ) -> Result<(i64, Vec<EntityRow>, Vec<RelationRow>)> {
        if raw_page(f) {
            let (count, count_params) = self.count_statement(f);
            let count_params: Vec<Param> = count_params.into_iter().map(Param::Text).collect();
            let (text, params) = self.list_statement(f);
            let relations = self.relations_statement();
            // Long: the count may step every entity of a kind.
            let read = self
                .sqlite_read_long(|c| {
                    let total = c.rows(&count, &count_params, |r| Ok(r.int(0)))?;
                    let (rows, rels) = read_page(c, &text, &params, &relations)?;
                    Ok((total.first().copied().unwrap_or(0), rows, rels))
                })
                .await?;
            if let Some((total, rows, relations)) = read {
                return Ok((total, rows, collapse(relations)));
            }
        }
        let (total, (rows, relations)) =
            tokio::try_join!(self.count_entities(f), self.entity_page(f))?;
        Ok((total, rows, relations))
    }

    /// The statement and parameters that count what a filter matches.
    fn count_statement(&self, f: &EntityFilter) -> (String, Vec<String>) {
        let unpaged = EntityFilter {
            after: None,
            limit: None,
            offset: None,
            ..f.clone()
        };
        let (rows, params) = entity_rows(self.backend(), &unpaged);
        (format!("SELECT COUNT(*) FROM {rows}"), params)
    }

    /// How many entities a filter matches (its `after` and `limit` ignored).
    pub async fn count_entities(&self, f: &EntityFilter) -> Result<i64> {
        let (text, params) = self.count_statement(f);
        // On SQLite through the C API, as pages are: through sqlx, the hand-off to the
        // connection's thread cost more than counting a team's 200 entities (0.3 ms).
        let raw: Vec<Param> = params.iter().cloned().map(Param::Text).collect();
        let counted = self
            .sqlite_read_long(|c| c.rows(&text, &raw, |r| Ok(r.int(0))))
            .await?;
        if let Some(n) = counted {
            return Ok(n.first().copied().unwrap_or(0));
        }
        let mut q = self.query(text);
        for p in params {
            q = q.bind(p);
        }
        q.fetch_one(|r| r.get(0)).await
    }

    /// How many entities of each kind match the filter (whatever its kind and page): one
    /// grouped pass over the kind column.
    pub async fn count_by_kind(&self, f: &EntityFilter) -> Result<Vec<(String, i64)>> {
        let unpaged = EntityFilter {
            kind: None,
            after: None,
            limit: None,
            offset: None,
            ..f.clone()
        };
        let (rows, params) = entity_rows(self.backend(), &unpaged);
        let text = format!("SELECT kind, COUNT(*) FROM {rows} GROUP BY kind ORDER BY kind");
        let mut q = self.query(text);
        for p in params {
            q = q.bind(p);
        }
        q.fetch_all(|r| Ok((r.get(0)?, r.get(1)?))).await
    }

    /// How many live entities have each value of a body field (`kind`, `spec.type`,
    /// `metadata.tags`): Backstage's entity facets. Arrays count each element.
    pub async fn facet_counts(&self, field: &str, f: &EntityFilter) -> Result<Vec<(String, i64)>> {
        let path: Vec<&str> = field.split('.').collect();
        if path.is_empty()
            || path.iter().any(|p| {
                p.is_empty()
                    || !p
                        .chars()
                        .all(|c| c.is_ascii_alphanumeric() || "_-/".contains(c))
            })
        {
            return Err(StoreError::Invalid(format!(
                "facet {field:?} is not a field path"
            )));
        }
        let (rows, params) = entity_rows(self.backend(), f);
        // The path is checked above and passed as a bound parameter, never spliced.
        let n = params.len() + 1;
        let text = match self.backend() {
            crate::Backend::Postgres => format!(
                "WITH v AS (SELECT body #> ${n}::text[] AS x FROM {rows}) \
                 SELECT value, COUNT(*) FROM ( \
                   SELECT jsonb_array_elements_text(x) AS value FROM v WHERE jsonb_typeof(x) = \
                   'array' \
                   UNION ALL SELECT x #>> '{{}}' FROM v WHERE jsonb_typeof(x) IN ('string', \
                   'number', 'boolean') \
                 ) t GROUP BY value ORDER BY value"
            ),
            crate::Backend::Sqlite => format!(
                "WITH v AS (SELECT json_extract(body, ${n}) AS x, json_type(body, \
                 ${n}) AS t FROM {rows}) \
                 SELECT value, COUNT(*) FROM ( \
                   SELECT j.value AS value FROM v, json_each(v.x) j WHERE v.t = 'array' \
                   UNION ALL SELECT x FROM v WHERE v.t IN ('text', 'integer', 'real', 'true', \
                   'false') \
                 ) GROUP BY value ORDER BY value"
            )
            .replace("::text", ""),
        };
        let path_param = match self.backend() {
            crate::Backend::Postgres => format!("{{{}}}", path.join(",")),
            crate::Backend::Sqlite => format!(
                "$.{}",
                path.iter()
                    .map(|p| format!("\"{p}\""))
                    .collect::<Vec<_>>()
                    .join(".")
            ),
        };
        let mut q = self.query(text);
        for p in params {
            q = q.bind(p);
        }
        q.bind(path_param)
            .fetch_all(|r| {
                let value: Option<String> = r.get(0)?;
                let count: i64 = r.get(1)?;
                Ok((value.unwrap_or_default(), count))
            })
            .await
    }

    /// One entity (live or tombstone) by key.
    pub async fn get_entity(&self, key: &str) -> Result<Option<EntityRow>> {
        let text = format!("SELECT {ENTITY_COLUMNS} FROM entities WHERE entity_ref = $1");
        let text = match self.backend() {
            crate::Backend::Postgres => text,
            crate::Backend::Sqlite => text.replace("::text", ""),
        };
        self.query(text)
            .bind(key.to_ascii_lowercase())
            .fetch_optional(decode)
            .await
    }

    /// The uid of whatever entity was ever known under `key`, including former names.
    pub async fn resolve_uid(&self, key: &str) -> Result<Option<String>> {
        if let Some(e) = self.get_entity(key).await? {
            return Ok(Some(e.uid));
        }
        let q = sql(
            self.backend(),
            "SELECT entity_uid FROM changes WHERE lower(entity_ref) = $1 OR lower(previous_ref) \
             = $1 \
             ORDER BY seq DESC LIMIT 1",
        );
        self.query(q)
            .bind(key.to_ascii_lowercase())
            .fetch_optional(|r| r.get("entity_uid"))
            .await
    }

    /// Relations whose source is `key`, in order, each once: a relation both ends imply (a
    /// Group's `members` and a User's `memberOf`) is stored by each origin but listed once.
    pub async fn relations_of(&self, key: &str) -> Result<Vec<RelationRow>> {
        let q = sql(
            self.backend(),
            "SELECT origin_ref, source_ref, type, target_ref, target_display FROM relations \
             WHERE source_ref = $1",
        );
        let rows = self.query(q).bind(key.to_ascii_lowercase());
        Ok(collapse(rows.fetch_all(decode).await?))
    }

    /// The relations of several entities at once (for list pages), each once, sorted by source,
    /// type and target (by bytes, see [`collapse`]).
    pub async fn relations_of_many(&self, keys: &[String]) -> Result<Vec<RelationRow>> {
        if keys.is_empty() {
            return Ok(Vec::new());
        }
        let q = self.relations_statement();
        if keys.len() <= RAW_ROWS {
            let read = self
                .sqlite_read(|c| {
                    let list = key_list(keys.iter().map(String::as_str));
                    c.rows(&q, &[Param::Text(list)], sqlite_raw::relation)
                })
                .await?;
            if let Some(rows) = read {
                return Ok(collapse(rows));
            }
        }
        let keys = crate::sql::StrList(keys.iter().map(|k| k.to_ascii_lowercase()).collect());
        Ok(collapse(self.query(q).bind(keys).fetch_all(decode).await?))
    }

    /// The statement of [`Store::relations_of_many`]: `$1` is the list of keys. It reads the rows
    /// as stored, one per origin, and [`collapse`] sorts them and lists each relation once: on
    /// Postgres the `GROUP BY` and sort of ~100 rows cost as much as reading them (0.30 against
    /// 0.18 ms for a page of 50 at 100k).
    fn relations_statement(&self) -> std::borrow::Cow<'static, str> {
        sql(
            self.backend(),
            "SELECT origin_ref, source_ref, type, target_ref, target_display FROM relations \
             WHERE source_ref = ANY($1)",
        )
    }

    /// Whether the database answers and the schema is current (the last migration's column).
    pub async fn ping(&self) -> Result<()> {
        self.query("SELECT COUNT(evidence) FROM findings")
            .fetch_one(|_| Ok(()))
            .await
    }

    /// Totals for metrics: runs by connector and status (with their summed duration), changes
    /// by op, refused deletions. Read from the database, so every replica reports the same.
    pub async fn catalog_stats(&self) -> Result<CatalogStats> {
        // Counts and summed wall time in one grouped pass, whatever the number of runs.
        let seconds = match self.backend() {
            crate::Backend::Postgres => "EXTRACT(EPOCH FROM (finished_at - started_at))::float8",
            crate::Backend::Sqlite => "(julianday(finished_at) - julianday(started_at)) * 86400.0",
        };
        let runs_q = format!(
            "SELECT connector, status, COUNT(*) AS n, COALESCE(SUM({seconds}), 0.0) AS secs \
             FROM runs GROUP BY connector, status ORDER BY connector, status"
        );
        let changes_q = "SELECT op, COUNT(*) AS n FROM changes GROUP BY op ORDER BY op";
        let refusals_q = "SELECT COUNT(*) FROM refusals";
        let mut stats = CatalogStats::default();
        let runs: Vec<(String, String, i64, f64)> = self
            .query(runs_q)
            .fetch_all(|r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)))
            .await?;
        for (connector, status, n, secs) in runs {
            *stats.run_seconds.entry(connector.clone()).or_default() += secs.max(0.0);
            stats.runs.push((connector, status, n));
        }
        stats.changes = self
            .query(changes_q)
            .fetch_all(|r| Ok((r.get(0)?, r.get(1)?)))
            .await?;
        stats.refusals = self.query(refusals_q).fetch_one(|r| r.get(0)).await?;
        Ok(stats)
    }

    /// Every relation row, sorted (for parity checks and exports).
    pub async fn all_relations(&self) -> Result<Vec<RelationRow>> {
        let q = sql(
            self.backend(),
            "SELECT origin_ref, source_ref, type, target_ref, target_display FROM relations \
             ORDER BY source_ref, type, target_ref, origin_ref",
        );
        self.query(q).fetch_all(decode).await
    }

    /// Every entity's uid, key and whether it is live (tombstones included), in key order: what
    /// a pass over the whole catalog needs to know of each entity without reading its body.
    pub async fn entity_keys(&self) -> Result<Vec<(String, String, bool)>> {
        let q = "SELECT uid, entity_ref, deleted_at IS NULL AS live FROM entities \
                 ORDER BY entity_ref";
        self.query(q)
            .fetch_all(|r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
            .await
    }

    /// Every relation of these types, as (source, type, target), each once, sorted: what the
    /// audits walk (memberships, sub-teams), without the rest of a large catalog's relations.
    pub async fn relations_of_types(
        &self,
        types: &[&str],
    ) -> Result<Vec<(String, String, String)>> {
        let q = sql(
            self.backend(),
            "SELECT DISTINCT source_ref, type, target_ref FROM relations WHERE type = ANY($1) \
             ORDER BY source_ref, type, target_ref",
        );
        let types = crate::sql::StrList(types.iter().map(|t| t.to_string()).collect());
        self.query(q)
            .bind(types)
            .fetch_all(|r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
            .await
    }

    /// Every name that means another entity, as (alias ref, entity ref): the own names of
    /// observations filed under another entity, while no live observation holds the name.
    pub async fn all_aliases(&self) -> Result<Vec<(String, String)>> {
        let q = sql(
            self.backend(),
            "SELECT DISTINCT a.alias_ref, a.entity_ref FROM identity_aliases a \
             WHERE NOT EXISTS (SELECT 1 FROM observations o \
               WHERE o.entity_ref = a.alias_ref AND o.deleted_at IS NULL) \
             ORDER BY a.alias_ref, a.entity_ref",
        );
        self.query(q)
            .fetch_all(|r| Ok((r.get("alias_ref")?, r.get("entity_ref")?)))
            .await
    }

    /// History in order of sequence.
    pub async fn list_changes(&self, f: &ChangeFilter) -> Result<Vec<ChangeRow>> {
        // Only the conditions given are written, so each can use its index (`changes_by_uid`
        // for one entity's history): `($n IS NULL OR ...)` would make every query a scan.
        let pg = self.backend() == crate::Backend::Postgres;
        let mut conds: Vec<String> = Vec::new();
        let mut n = 0;
        let mut param = |cast: &str| {
            n += 1;
            if pg {
                format!("${n}{cast}")
            } else {
                format!("${n}")
            }
        };
        if f.since.is_some() {
            conds.push(format!("at >= {}", param("::timestamptz")));
        }
        if f.until.is_some() {
            conds.push(format!("at < {}", param("::timestamptz")));
        }
        if f.entity_uid.is_some() {
            conds.push(format!("entity_uid = {}", param("")));
        }
        if f.after_seq.is_some() {
            conds.push(format!("seq > {}", param("")));
        }
        if f.before_seq.is_some() {
            conds.push(format!("seq < {}", param("")));
        }
        if f.op.is_some() {
            conds.push(format!("op = {}", param("")));
        }
        if f.source.is_some() {
            conds.push(format!("source = {}", param("")));
        }
        // Refs are stored lower-cased, `kind:namespace/name`: a kind is an exact prefix once
        // LIKE's wildcards are escaped.
        let kind = f.kind.as_ref().map(|k| {
            format!(
                "{}:%",
                k.to_ascii_lowercase()
                    .replace('\\', "\\\\")
                    .replace('%', "\\%")
                    .replace('_', "\\_")
            )
        });
        if kind.is_some() {
            conds.push(format!("entity_ref LIKE {} ESCAPE '\\'", param("")));
        }
        let limit = param("");
        let text = format!(
            "SELECT seq, at, run_id, source, entity_uid, entity_ref, previous_ref, op, \
             {patch} AS patch FROM changes {where_} ORDER BY seq {dir} LIMIT {limit}",
            patch = if pg { "patch::text" } else { "patch" },
            where_ = if conds.is_empty() {
                String::new()
            } else {
                format!("WHERE {}", conds.join(" AND "))
            },
            dir = if f.descending { "DESC" } else { "ASC" },
        );
        let mut q = self.query(text);
        if let Some(t) = f.since {
            q = q.bind(t);
        }
        if let Some(t) = f.until {
            q = q.bind(t);
        }
        if let Some(uid) = &f.entity_uid {
            q = q.bind(uid.clone());
        }
        if let Some(s) = f.after_seq {
            q = q.bind(s);
        }
        if let Some(s) = f.before_seq {
            q = q.bind(s);
        }
        if let Some(op) = f.op {
            q = q.bind(op.as_str().to_string());
        }
        if let Some(source) = &f.source {
            q = q.bind(source.clone());
        }
        if let Some(k) = kind {
            q = q.bind(k);
        }
        q.bind(f.limit.unwrap_or(i64::MAX))
            .fetch_all(|r| {
                let op: String = r.get("op")?;
                let patch: String = r.get("patch")?;
                Ok(ChangeRow {
                    seq: r.get("seq")?,
                    at: r.get("at")?,
                    run_id: r.get("run_id")?,
                    source: r.get("source")?,
                    entity_uid: r.get("entity_uid")?,
                    entity_ref: r.get("entity_ref")?,
                    previous_ref: r.get("previous_ref")?,
                    op: ChangeOp::parse(&op).ok_or_else(|| StoreError::Corrupt {
                        table: "changes",
                        detail: format!("unknown op {op:?}"),
                    })?,
                    patch: serde_json::from_str(&patch).map_err(|e| StoreError::Corrupt {
                        table: "changes",
                        detail: e.to_string(),
                    })?,
                })
            })
            .await
    }

    /// Recent runs, newest first.
    pub async fn list_runs(&self, connector: Option<&str>, limit: i64) -> Result<Vec<RunRow>> {
        let q = sql(
            self.backend(),
            "SELECT id, connector, started_at, finished_at, status, outcome::text AS outcome, \
             counts::text AS counts, error FROM runs WHERE ($1::text IS NULL OR connector = $1) \
             ORDER BY started_at DESC, id DESC LIMIT $2",
        );
        self.query(q)
            .bind(connector)
            .bind(limit)
            .fetch_all(run_row)
            .await
    }

    /// Each connector's latest run (by start), one row per connector that ever ran: what any
    /// process did, for a view of connectors that is not only this process's own.
    pub async fn latest_runs(&self) -> Result<Vec<RunRow>> {
        // Per connector, the newest start through `runs_by_connector`; ties (same start) go to
        // the greater id, as in `list_runs`.
        let q = "SELECT id, connector, started_at, finished_at, status, outcome::text AS outcome, \
             counts::text AS counts, error FROM runs r WHERE NOT EXISTS (SELECT 1 FROM runs n \
             WHERE n.connector = r.connector AND (n.started_at > r.started_at OR \
             (n.started_at = r.started_at AND n.id > r.id))) ORDER BY connector";
        self.query(sql(self.backend(), q)).fetch_all(run_row).await
    }

    /// Row counts per table, for tests that check "nothing was written" and for benchmarks.
    pub async fn table_counts(&self) -> Result<TableCounts> {
        let count = |q: &'static str| self.query(q).fetch_one(|r| r.get(0));
        Ok(TableCounts {
            entities: count("SELECT COUNT(*) FROM entities").await?,
            relations: count("SELECT COUNT(*) FROM relations").await?,
            observations: count("SELECT COUNT(*) FROM observations").await?,
            changes: count("SELECT COUNT(*) FROM changes").await?,
            runs: count("SELECT COUNT(*) FROM runs").await?,
        })
    }
}

fn run_row(r: RowRef<'_>) -> Result<RunRow> {
    let parse = |s: Option<String>| s.and_then(|s| serde_json::from_str(&s).ok());
    Ok(RunRow {
        id: r.get("id")?,
        connector: r.get("connector")?,
        started_at: r.get("started_at")?,
        finished_at: r.get("finished_at")?,
        status: r.get("status")?,
        outcome: parse(r.get("outcome")?),
        counts: parse(r.get("counts")?),
        error: r.get("error")?,
    })
}

/// Rows per table.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub struct TableCounts {
    pub entities: i64,
    pub relations: i64,
    pub observations: i64,
    pub changes: i64,
    pub runs: i64,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rel(origin: &str, source: &str, kind: &str, target: &str, display: &str) -> RelationRow {
        RelationRow {
            origin_ref: origin.into(),
            source_ref: source.into(),
            kind: kind.into(),
            target_ref: target.into(),
            target_display: display.into(),
        }
    }

    /// A relation two origins store is listed once, with the least origin and display; the
    /// rest are sorted by source, type and target as bytes (`B` before `a`).
    #[test]
    fn relations_are_sorted_by_bytes_and_listed_once() {
        let rows = vec![
            rel(
                "user:default/u",
                "group:default/g",
                "hasMember",
                "user:default/u",
                "user:default/U",
            ),
            rel(
                "component:default/b",
                "component:default/b",
                "ownedBy",
                "group:default/g",
                "group:default/g",
            ),
            rel(
                "group:default/g",
                "group:default/g",
                "hasMember",
                "user:default/u",
                "user:default/u",
            ),
            rel(
                "component:default/a",
                "component:default/a",
                "ownedBy",
                "group:default/g",
                "group:default/G",
            ),
            rel(
                "component:default/a",
                "component:default/a",
                "dependsOn",
                "resource:default/db",
                "resource:default/db",
            ),
            rel(
                "component:default/a",
                "component:default/a",
                "Zeta",
                "x:default/x",
                "x:default/x",
            ),
        ];
        let got: Vec<(String, String, String, String, String)> = collapse(rows)
            .into_iter()
            .map(|r| {
                (
                    r.source_ref,
                    r.kind,
                    r.target_ref,
                    r.origin_ref,
                    r.target_display,
                )
            })
            .collect();
        let want = |s: &str, k: &str, t: &str, o: &str, d: &str| {
            (
                s.to_string(),
                k.to_string(),
                t.to_string(),
                o.to_string(),
                d.to_string(),
            )
        };
        assert_eq!(
            got,
            [
                want(
                    "component:default/a",
                    "Zeta",
                    "x:default/x",
                    "component:default/a",
                    "x:default/x"
                ),
                want(
                    "component:default/a",
                    "dependsOn",
                    "resource:default/db",
                    "component:default/a",
                    "resource:default/db"
                ),
                want(
                    "component:default/a",
                    "ownedBy",
                    "group:default/g",
                    "component:default/a",
                    "group:default/G"
                ),
                want(
                    "component:default/b",
                    "ownedBy",
                    "group:default/g",
                    "component:default/b",
                    "group:default/g"
                ),
                want(
                    "group:default/g",
                    "hasMember",
                    "user:default/u",
                    "group:default/g",
                    "user:default/U"
                ),
            ]
        );
    }
}
