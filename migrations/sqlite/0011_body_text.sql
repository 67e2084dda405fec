-- An entity's body as text under the name Postgres gives it (see migrations/postgres/0011),
-- so one statement reads both. SQLite's body is text already: the column is virtual, stored
-- nowhere and computed as the body itself.
ALTER TABLE entities ADD COLUMN body_text TEXT GENERATED ALWAYS AS (body) VIRTUAL;
