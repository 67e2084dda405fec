-- The live entities of a kind by ref, read from the index alone once autovacuum has set the
-- visibility map: a count of an owner's or a label's entities checks each candidate's kind and
-- liveness here instead of reading its row. It still counts the live entities per kind.
DROP INDEX entities_live_by_kind;
CREATE INDEX entities_live_by_kind ON entities (kind, entity_ref) WHERE deleted_at IS NULL;
