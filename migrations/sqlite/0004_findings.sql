-- Audit findings over time: one row per stretch during which a rule held for an entity. A
-- finding that goes away is resolved (resolved_at set); if it comes back, a new row opens.
CREATE TABLE findings (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    audit       TEXT NOT NULL,
    rule        TEXT NOT NULL,
    entity_ref  TEXT NOT NULL,
    severity    TEXT NOT NULL,
    message     TEXT NOT NULL,
    first_seen  TEXT NOT NULL,
    last_seen   TEXT NOT NULL,
    resolved_at TEXT
);
CREATE INDEX findings_open ON findings (audit, resolved_at);
CREATE INDEX findings_by_entity ON findings (entity_ref);
