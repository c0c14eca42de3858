-- See ../0006_episodes.sql: every alert recorded, so that recording one
-- again (another worker, a replay) is a duplicate.
CREATE TABLE episodes (
    alert_id TEXT   PRIMARY KEY,
    case_id  BIGINT NOT NULL REFERENCES alerts(id),
    at_ms    BIGINT NOT NULL
);
CREATE INDEX episodes_by_case ON episodes (case_id);
INSERT INTO episodes (alert_id, case_id, at_ms)
    SELECT last_episode, id, last_seen_ms FROM alerts ORDER BY id
    ON CONFLICT DO NOTHING;
