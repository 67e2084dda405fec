-- The text a catalog search matches (ref, title, description, tags), lower-cased and kept by
-- Postgres itself, so a search compares one short column instead of parsing every body.
ALTER TABLE entities ADD COLUMN search text GENERATED ALWAYS AS (
    lower(entity_ref || ' ' || coalesce(body -> 'metadata' ->> 'title', '') || ' ' ||
          coalesce(body -> 'metadata' ->> 'description', '') || ' ' ||
          coalesce(body -> 'metadata' ->> 'tags', ''))
) STORED;
