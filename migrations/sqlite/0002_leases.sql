-- Who runs a connector now: one row per connector, taken per scheduled tick. (SQLite serves one
-- process; the table keeps the scheduler's logic the same on both databases.)
CREATE TABLE leases (
    name        TEXT PRIMARY KEY,
    holder      TEXT NOT NULL,
    tick        TEXT NOT NULL,
    expires_at  TEXT NOT NULL
);
