-- surveyor catalog schema (SQLite). Times are RFC 3339 text in UTC; JSON is text.

-- One row per crawl (or dry run is never recorded).
CREATE TABLE runs (
    id          TEXT PRIMARY KEY,
    connector   TEXT NOT NULL,
    started_at  TEXT NOT NULL,
    finished_at TEXT,
    -- running | succeeded | partial | failed | abandoned
    status      TEXT NOT NULL,
    outcome     TEXT,
    counts      TEXT,
    error       TEXT
);
CREATE INDEX runs_by_connector ON runs (connector, started_at);

-- What each source last said about each thing it sees, keyed by the source's own identity.
CREATE TABLE observations (
    source      TEXT NOT NULL,
    external_id TEXT NOT NULL,
    scope       TEXT NOT NULL,
    entity_ref  TEXT NOT NULL,
    kind        TEXT NOT NULL,
    declared    BOOLEAN NOT NULL,
    hash        TEXT NOT NULL,
    body        TEXT NOT NULL,
    first_run   TEXT NOT NULL,
    changed_run TEXT NOT NULL,
    deleted_at  TEXT,
    deleted_run TEXT,
    PRIMARY KEY (source, external_id)
);
CREATE INDEX observations_by_ref ON observations (entity_ref);
CREATE INDEX observations_by_scope ON observations (source, scope);

-- The catalog: one row per entity; `uid` survives renames, tombstones keep history.
CREATE TABLE entities (
    uid         TEXT PRIMARY KEY,
    entity_ref  TEXT NOT NULL UNIQUE,
    display_ref TEXT NOT NULL,
    kind        TEXT NOT NULL,
    namespace   TEXT NOT NULL,
    name        TEXT NOT NULL,
    body        TEXT NOT NULL,
    hash        TEXT NOT NULL,
    sources     TEXT NOT NULL,
    meta_hash   TEXT NOT NULL,
    created_at  TEXT NOT NULL,
    updated_at  TEXT NOT NULL,
    deleted_at  TEXT,
    deleted_run TEXT
);
CREATE INDEX entities_by_kind ON entities (kind, namespace, entity_ref);

-- Relations of live entities, both directions; `origin_ref` is the entity whose data made the row.
CREATE TABLE relations (
    origin_ref     TEXT NOT NULL,
    source_ref     TEXT NOT NULL,
    type           TEXT NOT NULL,
    target_ref     TEXT NOT NULL,
    target_display TEXT NOT NULL,
    PRIMARY KEY (origin_ref, source_ref, type, target_ref)
);
CREATE INDEX relations_by_source ON relations (source_ref, type);
CREATE INDEX relations_by_target ON relations (target_ref, type);

-- Append-only history of the catalog. Replaying it from empty rebuilds `entities`.
CREATE TABLE changes (
    seq          INTEGER PRIMARY KEY AUTOINCREMENT,
    at           TEXT NOT NULL,
    run_id       TEXT NOT NULL,
    source       TEXT NOT NULL,
    entity_uid   TEXT NOT NULL,
    entity_ref   TEXT NOT NULL,
    previous_ref TEXT,
    op           TEXT NOT NULL,
    patch        TEXT NOT NULL
);
CREATE INDEX changes_by_uid ON changes (entity_uid, seq);
CREATE INDEX changes_by_at ON changes (at);

-- Deletions the guard refused, for auditors and alerts.
CREATE TABLE refusals (
    run_id       TEXT NOT NULL,
    at           TEXT NOT NULL,
    source       TEXT NOT NULL,
    scope        TEXT NOT NULL,
    kind         TEXT NOT NULL,
    live         BIGINT NOT NULL,
    would_delete BIGINT NOT NULL,
    max_ratio    DOUBLE PRECISION NOT NULL
);
