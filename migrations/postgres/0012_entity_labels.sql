-- Each entity's labels (`metadata.labels`), one row per key and value, kept by triggers as
-- entities are written, so a label filter reads an index instead of every candidate's body
-- (at 100k, one cost centre in a hundred: ~5,000 bodies read for a page of 50). String values
-- only: Backstage's labels are strings. Tombstones keep their labels, as they keep their body.
-- The trigger's statements name the table unqualified: each catalog's sessions set
-- `search_path` to its schema.
CREATE TABLE entity_labels (
    key        TEXT NOT NULL,
    value      TEXT NOT NULL,
    entity_ref TEXT NOT NULL,
    PRIMARY KEY (key, value, entity_ref)
);
CREATE INDEX entity_labels_by_entity ON entity_labels (entity_ref);

INSERT INTO entity_labels (key, value, entity_ref)
SELECT l.key, l.value #>> '{}', e.entity_ref
FROM entities e, jsonb_each(CASE WHEN jsonb_typeof(e.body->'metadata'->'labels') = 'object'
                                 THEN e.body->'metadata'->'labels' END) l
WHERE jsonb_typeof(l.value) = 'string'
ON CONFLICT DO NOTHING;

-- Row triggers: the update's fires only when the ref or the labels change, which most updates
-- of a body do not (a row rewritten for its sources or relations alone keeps its body's hash). (Statement triggers over transition tables were tried: they copy every
-- written row, body included, and cost more for the common update.)
CREATE FUNCTION entity_labels_kept() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP <> 'INSERT' THEN
        DELETE FROM entity_labels WHERE entity_ref = OLD.entity_ref;
    END IF;
    IF TG_OP <> 'DELETE' AND jsonb_typeof(NEW.body->'metadata'->'labels') = 'object' THEN
        INSERT INTO entity_labels (key, value, entity_ref)
        SELECT l.key, l.value #>> '{}', NEW.entity_ref
        FROM jsonb_each(NEW.body->'metadata'->'labels') l
        WHERE jsonb_typeof(l.value) = 'string'
        ON CONFLICT DO NOTHING;
    END IF;
    RETURN NULL;
END
$$;

CREATE TRIGGER entity_labels_insert AFTER INSERT ON entities
FOR EACH ROW WHEN (jsonb_typeof(NEW.body->'metadata'->'labels') = 'object')
EXECUTE FUNCTION entity_labels_kept();
CREATE TRIGGER entity_labels_update AFTER UPDATE ON entities
FOR EACH ROW WHEN (OLD.entity_ref IS DISTINCT FROM NEW.entity_ref
    OR (OLD.hash IS DISTINCT FROM NEW.hash
        AND OLD.body->'metadata'->'labels' IS DISTINCT FROM NEW.body->'metadata'->'labels'))
EXECUTE FUNCTION entity_labels_kept();
CREATE TRIGGER entity_labels_delete AFTER DELETE ON entities
FOR EACH ROW EXECUTE FUNCTION entity_labels_kept();
