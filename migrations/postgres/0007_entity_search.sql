-- The text a catalog search matches (ref, title, description, tags), lower-cased and kept by
-- Postgres itself, so a search compares one short column instead of parsing every body.
ALTER TABLE entities ADD COLUMN search text GENERATED ALWAYS AS (
    lower(entity_ref || ' ' || coalesce(body -> 'metadata' ->> 'title', '') || ' ' ||
          coalesce(body -> 'metadata' ->> 'description', '') || ' ' ||
          coalesce(body -> 'metadata' ->> 'tags', ''))
) STORED;
-- Counts per kind of the live catalog (the console's first page) read this index alone.
CREATE INDEX entities_live_by_kind ON entities (kind) WHERE deleted_at IS NULL;
-- A search for a part of a word reads a trigram index where the pg_trgm extension can be had
-- (it ships with Postgres and a database owner may create it); without it a search compares
-- every row's `search`, which is correct and slower. The extension goes into `public` when it
-- is new, so that dropping one schema never takes it from another.
DO $$
DECLARE
    home text;
BEGIN
    BEGIN
        CREATE EXTENSION IF NOT EXISTS pg_trgm WITH SCHEMA public;
    EXCEPTION WHEN OTHERS THEN
        RAISE NOTICE 'pg_trgm is not available (%): catalog searches scan', SQLERRM;
    END;
    SELECT n.nspname INTO home FROM pg_extension e JOIN pg_namespace n ON n.oid = e.extnamespace
        WHERE e.extname = 'pg_trgm';
    IF home IS NOT NULL THEN
        EXECUTE format(
            'CREATE INDEX entities_search_trigrams ON entities USING gin (search %I.gin_trgm_ops)',
            home);
    END IF;
END $$;
