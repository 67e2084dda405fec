-- Identity keys of live observations: an annotation (or a verified email) that says which
-- thing an observation is, whatever its name. Observations that share a key are one entity,
-- named by the highest-precedence holder; `own_ref` is the ref the observation names itself.
CREATE TABLE identity_keys (
    source      TEXT NOT NULL,
    external_id TEXT NOT NULL,
    key         TEXT NOT NULL,
    own_ref     TEXT NOT NULL,
    declared    BOOLEAN NOT NULL,
    PRIMARY KEY (source, external_id, key)
);
CREATE INDEX identity_keys_by_key ON identity_keys (key);

-- Observations filed under another ref than their own: a ref to the own name (a PagerDuty
-- schedule naming its user) is a ref to the entity it joined.
CREATE TABLE identity_aliases (
    source      TEXT NOT NULL,
    external_id TEXT NOT NULL,
    own_ref     TEXT NOT NULL,
    entity_ref  TEXT NOT NULL,
    PRIMARY KEY (source, external_id)
);
CREATE INDEX identity_aliases_by_own_ref ON identity_aliases (own_ref);
