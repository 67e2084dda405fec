-- surveyor catalog schema (PostgreSQL). The same tables as migrations/sqlite, in native types.

CREATE TABLE runs (
    id          TEXT PRIMARY KEY,
    connector   TEXT NOT NULL,
    started_at  TIMESTAMPTZ NOT NULL,
    finished_at TIMESTAMPTZ,
    status      TEXT NOT NULL,
    outcome     JSONB,
    counts      JSONB,
    error       TEXT
);
CREATE INDEX runs_by_connector ON runs (connector, started_at);

CREATE TABLE observations (
    source      TEXT NOT NULL,
    external_id TEXT NOT NULL,
    scope       TEXT NOT NULL,
    entity_ref  TEXT NOT NULL,
    kind        TEXT NOT NULL,
    declared    BOOLEAN NOT NULL,
    hash        TEXT NOT NULL,
    body        JSONB NOT NULL,
    first_run   TEXT NOT NULL,
    changed_run TEXT NOT NULL,
    deleted_at  TIMESTAMPTZ,
    deleted_run TEXT,
    PRIMARY KEY (source, external_id)
);
CREATE INDEX observations_by_ref ON observations (entity_ref);
CREATE INDEX observations_by_scope ON observations (source, scope);

CREATE TABLE entities (
    uid         TEXT PRIMARY KEY,
    entity_ref  TEXT NOT NULL UNIQUE,
    display_ref TEXT NOT NULL,
    kind        TEXT NOT NULL,
    namespace   TEXT NOT NULL,
    name        TEXT NOT NULL,
    body        JSONB NOT NULL,
    hash        TEXT NOT NULL,
    sources     JSONB NOT NULL,
    meta_hash   TEXT NOT NULL,
    created_at  TIMESTAMPTZ NOT NULL,
    updated_at  TIMESTAMPTZ NOT NULL,
    deleted_at  TIMESTAMPTZ,
    deleted_run TEXT
);
CREATE INDEX entities_by_kind ON entities (kind, namespace, entity_ref);

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

CREATE TABLE changes (
    seq          BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    at           TIMESTAMPTZ NOT NULL,
    run_id       TEXT NOT NULL,
    source       TEXT NOT NULL,
    entity_uid   TEXT NOT NULL,
    entity_ref   TEXT NOT NULL,
    previous_ref TEXT,
    op           TEXT NOT NULL,
    patch        JSONB NOT NULL
);
CREATE INDEX changes_by_uid ON changes (entity_uid, seq);
CREATE INDEX changes_by_at ON changes (at);

CREATE TABLE refusals (
    run_id       TEXT NOT NULL,
    at           TIMESTAMPTZ NOT NULL,
    source       TEXT NOT NULL,
    scope        TEXT NOT NULL,
    kind         TEXT NOT NULL,
    live         BIGINT NOT NULL,
    would_delete BIGINT NOT NULL,
    max_ratio    DOUBLE PRECISION NOT NULL
);
