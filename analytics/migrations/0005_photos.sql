-- Photos taken on site and uploaded to a case (a phone's camera). Kept in
-- the store so they are backed up, scoped and deleted with the alerts; the
-- API caps their size. Nothing about the person in them is logged.
CREATE TABLE photos (
    id           INTEGER PRIMARY KEY AUTOINCREMENT,
    alert_id     INTEGER NOT NULL REFERENCES alerts(id),
    at_ms        INTEGER NOT NULL,
    actor        TEXT    NOT NULL,
    content_type TEXT    NOT NULL,
    bytes        BLOB    NOT NULL
);
CREATE INDEX photos_by_alert ON photos (alert_id, id);
