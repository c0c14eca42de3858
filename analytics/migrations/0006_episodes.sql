-- Every alert recorded, by the detector's id, and the case it went into.
-- Recording an alert is idempotent: one already here is a duplicate (a
-- re-delivery, a replay from a checkpoint, a second worker), whichever case
-- is the latest of its rule and entity. Filled from each case's latest
-- alert, which is what the store recognised as a duplicate before.
CREATE TABLE episodes (
    alert_id TEXT    PRIMARY KEY,
    case_id  INTEGER NOT NULL REFERENCES alerts(id),
    at_ms    INTEGER NOT NULL
);
CREATE INDEX episodes_by_case ON episodes (case_id);
INSERT OR IGNORE INTO episodes (alert_id, case_id, at_ms)
    SELECT last_episode, id, last_seen_ms FROM alerts ORDER BY id;
