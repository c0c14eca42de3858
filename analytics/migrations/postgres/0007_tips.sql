-- Tip-offs and patrol findings (docs/tips.md); PostgreSQL's types for
-- SQLite's 0007_tips.
CREATE TABLE tips (
    receipt      TEXT    PRIMARY KEY,
    alert_id     BIGINT  NOT NULL REFERENCES alerts(id),
    channel      TEXT    NOT NULL,
    hazard       TEXT    NOT NULL,
    place        TEXT    NOT NULL,
    contact      TEXT,
    reported_ms  BIGINT  NOT NULL,
    paid_ms      BIGINT
);
CREATE INDEX tips_by_alert ON tips (alert_id);
