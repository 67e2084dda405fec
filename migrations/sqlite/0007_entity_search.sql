-- The text a catalog search matches (ref, title, description, tags), lower-cased and kept by
-- SQLite itself. The index holds it, so a search scans the index instead of parsing every body.
ALTER TABLE entities ADD COLUMN search TEXT GENERATED ALWAYS AS (
    lower(entity_ref || ' ' || coalesce(json_extract(body, '$.metadata.title'), '') || ' ' ||
          coalesce(json_extract(body, '$.metadata.description'), '') || ' ' ||
          coalesce(json_extract(body, '$.metadata.tags'), ''))
) VIRTUAL;
CREATE INDEX entities_search ON entities (search, entity_ref);
-- Counts per kind of the live catalog (the console's first page) read this index alone.
CREATE INDEX entities_live_by_kind ON entities (kind) WHERE deleted_at IS NULL;
