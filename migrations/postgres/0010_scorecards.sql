-- Scorecards: each graded entity's level now and the checks it fails (JSON object: check name
-- -> why), with when the level was reached; every check that turned from pass to fail or back,
-- with the run that caused it; and, each time a roll-up changed, how many entities each owner
-- has at each level (the trend). '' in score_trend means no owner, or below every level.
CREATE TABLE scores (
    scorecard  TEXT NOT NULL,
    entity_ref TEXT NOT NULL,
    owner      TEXT,
    level      TEXT,
    failing    TEXT NOT NULL,
    since      TIMESTAMPTZ NOT NULL,
    PRIMARY KEY (scorecard, entity_ref)
);
CREATE INDEX scores_by_owner ON scores (scorecard, owner);
CREATE TABLE score_events (
    id          BIGSERIAL PRIMARY KEY,
    at          TIMESTAMPTZ NOT NULL,
    run_id      TEXT,
    scorecard   TEXT NOT NULL,
    entity_ref  TEXT NOT NULL,
    check_name  TEXT NOT NULL,
    passed      BOOLEAN NOT NULL,
    detail      TEXT NOT NULL
);
CREATE INDEX score_events_by_entity ON score_events (entity_ref, id);
CREATE TABLE score_trend (
    at        TIMESTAMPTZ NOT NULL,
    scorecard TEXT NOT NULL,
    owner     TEXT NOT NULL,
    level     TEXT NOT NULL,
    entities  BIGINT NOT NULL
);
CREATE INDEX score_trend_by_card ON score_trend (scorecard, at);
