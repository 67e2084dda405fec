-- The live entities of a kind by ref, read from the index alone: a count of an owner's or a
-- label's entities checks each candidate's kind and liveness here instead of reading its row
-- (a team's 200 of 100k: 0.70 -> 0.28 ms). `deleted_at` is in the columns so SQLite sees
-- the index covers the query's `deleted_at IS NULL`. It still counts the live entities per kind.
DROP INDEX entities_live_by_kind;
CREATE INDEX entities_live_by_kind ON entities (kind, entity_ref, deleted_at) WHERE deleted_at IS NULL;
