-- When the current holder took the lease, so that operators can see who runs a connector and
-- since when (NULL for leases taken before this column existed).
ALTER TABLE leases ADD COLUMN taken_at TIMESTAMPTZ;
