-- Who runs a connector now: one row per connector, taken per scheduled tick so that several
-- `surveyor serve` replicas on one database run each tick exactly once.
CREATE TABLE leases (
    name        TEXT PRIMARY KEY,
    holder      TEXT NOT NULL,
    -- The scheduled time of the run holding (or last holding) the lease.
    tick        TIMESTAMPTZ NOT NULL,
    expires_at  TIMESTAMPTZ NOT NULL
);
