-- Each live Component's classification: one row per facet and value (tier, stack, runtime,
-- lifecycle, domain, system) with the evidence that gave it, as JSON text. Derived from the
-- catalog after each sync; `since` is when the value was first given, and a value that goes
-- is deleted (the change is in the changes feed of the entities that caused it).
CREATE TABLE classifications (
    entity_ref TEXT NOT NULL,
    facet      TEXT NOT NULL,
    value      TEXT NOT NULL,
    declared   BOOLEAN NOT NULL,
    evidence   TEXT NOT NULL,
    since      TIMESTAMPTZ NOT NULL,
    PRIMARY KEY (entity_ref, facet, value)
);
-- Filters (`--tier tier-1`, `--stack rust`) go from the value to the entities.
CREATE INDEX classifications_by_value ON classifications (facet, value, entity_ref);
