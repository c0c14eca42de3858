-- Tip-offs and patrol findings (docs/tips.md). Each opens or joins a case in
-- `alerts`; what is not the case's lives here: the receipt code the reporter
-- follows it with, the reporter's contact (office only), and the reward.
CREATE TABLE tips (
    receipt      TEXT    PRIMARY KEY,
    alert_id     INTEGER NOT NULL REFERENCES alerts(id),
    channel      TEXT    NOT NULL,
    hazard       TEXT    NOT NULL,
    place        TEXT    NOT NULL,
    contact      TEXT,
    reported_ms  INTEGER NOT NULL,
    paid_ms      INTEGER
);
CREATE INDEX tips_by_alert ON tips (alert_id);
