-- What the console shows of a finding and filters on: the entity's kind, the owner involved
-- (an owner ref key, NULL when there is none) and the evidence (a JSON array of
-- {source, said, at}). Findings recorded before this migration have NULL kind and evidence.
ALTER TABLE findings ADD COLUMN kind TEXT;
ALTER TABLE findings ADD COLUMN owner TEXT;
ALTER TABLE findings ADD COLUMN evidence TEXT;
-- Counts per rule and per owner, and a page of one rule's or one owner's findings, read an
-- index each; the owner's holds the rule too, so counts per rule for one owner read it alone.
-- They lead with (audit, resolved_at), so the old index on those two goes.
CREATE INDEX findings_by_rule ON findings (audit, resolved_at, rule);
CREATE INDEX findings_by_owner ON findings (audit, resolved_at, owner, rule);
DROP INDEX findings_open;
