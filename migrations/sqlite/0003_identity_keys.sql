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

-- Names that mean another entity: the own name of an observation filed under another ref (a
-- PagerDuty schedule naming its user), or a declared component's `backstage.io/kubernetes-id`
-- (workloads name their component by it). A ref to the alias is a ref to the entity.
CREATE TABLE identity_aliases (
    source      TEXT NOT NULL,
    external_id TEXT NOT NULL,
    alias_ref   TEXT NOT NULL,
    entity_ref  TEXT NOT NULL,
    PRIMARY KEY (source, external_id, alias_ref)
);
CREATE INDEX identity_aliases_by_alias ON identity_aliases (alias_ref);
