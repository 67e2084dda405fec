-- Each entity's labels (`metadata.labels`), one row per key and value, kept by triggers as
-- entities are written, so a label filter reads an index instead of every candidate's body
-- (at 100k, one cost centre in a hundred: ~5,000 bodies read for a page of 50). String values
-- only: Backstage's labels are strings. Tombstones keep their labels, as they keep their body.
CREATE TABLE entity_labels (
    key        TEXT NOT NULL,
    value      TEXT NOT NULL,
    entity_ref TEXT NOT NULL,
    PRIMARY KEY (key, value, entity_ref)
) WITHOUT ROWID;
CREATE INDEX entity_labels_by_entity ON entity_labels (entity_ref);

-- A label is a text value under a text key: `json_each` gives a scalar `labels` a NULL key and
-- an array's elements integer keys, and neither is a label. Each statement parses a body once.
INSERT OR IGNORE INTO entity_labels (key, value, entity_ref)
SELECT l.key, l.value, e.entity_ref
FROM entities e, json_each(e.body, '$.metadata.labels') l
WHERE l.type = 'text' AND typeof(l.key) = 'text';

CREATE TRIGGER entity_labels_insert AFTER INSERT ON entities
BEGIN
    INSERT OR IGNORE INTO entity_labels (key, value, entity_ref)
    SELECT l.key, l.value, new.entity_ref FROM json_each(new.body, '$.metadata.labels') l
    WHERE l.type = 'text' AND typeof(l.key) = 'text';
END;

-- Only when the ref or the labels change: most updates of a body leave its labels alone, and
-- a row rewritten for its sources or relations alone keeps its body's hash (no body is parsed).
CREATE TRIGGER entity_labels_update AFTER UPDATE OF entity_ref, body ON entities
WHEN old.entity_ref IS NOT new.entity_ref
    OR (old.hash IS NOT new.hash
        AND json_extract(old.body, '$.metadata.labels') IS NOT json_extract(new.body, '$.metadata.labels'))
BEGIN
    DELETE FROM entity_labels WHERE entity_ref = old.entity_ref;
    INSERT OR IGNORE INTO entity_labels (key, value, entity_ref)
    SELECT l.key, l.value, new.entity_ref FROM json_each(new.body, '$.metadata.labels') l
    WHERE l.type = 'text' AND typeof(l.key) = 'text';
END;

CREATE TRIGGER entity_labels_delete AFTER DELETE ON entities
BEGIN
    DELETE FROM entity_labels WHERE entity_ref = old.entity_ref;
END;
