-- Alerts, one row per case: (rule, entity) while it is active; a return
-- after the cool-down opens a new row that points at the old one.
CREATE TABLE alerts (
    id                 INTEGER PRIMARY KEY AUTOINCREMENT,
    rule               TEXT    NOT NULL,
    entity             TEXT    NOT NULL,
    site               TEXT    NOT NULL,
    cell               TEXT    NOT NULL,
    severity           TEXT    NOT NULL,
    state              TEXT    NOT NULL,
    title              TEXT    NOT NULL,
    summary            TEXT    NOT NULL,
    first_seen_ms      INTEGER NOT NULL,
    last_seen_ms       INTEGER NOT NULL,
    opened_at_ms       INTEGER NOT NULL,
    count              INTEGER NOT NULL,
    peak               REAL,
    evidence           TEXT    NOT NULL,
    snapshot           TEXT    NOT NULL,
    last_episode       TEXT    NOT NULL,
    assignee           TEXT,
    acknowledged_by    TEXT,
    acknowledged_at_ms INTEGER,
    escalation_level   INTEGER NOT NULL DEFAULT 0,
    reopened           INTEGER NOT NULL DEFAULT 0,
    recurrence_of      INTEGER REFERENCES alerts(id),
    disposition        TEXT,
    disposition_note   TEXT,
    photos             TEXT,
    resolved_by        TEXT,
    resolved_at_ms     INTEGER,
    recheck_due_ms     INTEGER,
    updated_at_ms      INTEGER NOT NULL
);
CREATE INDEX alerts_by_case ON alerts (rule, entity, id);
CREATE INDEX alerts_by_cell ON alerts (cell, state);
CREATE INDEX alerts_by_site ON alerts (site, state);

-- Every transition and comment, never updated or deleted.
CREATE TABLE audit (
    id         INTEGER PRIMARY KEY AUTOINCREMENT,
    alert_id   INTEGER NOT NULL REFERENCES alerts(id),
    at_ms      INTEGER NOT NULL,
    actor      TEXT    NOT NULL,
    action     TEXT    NOT NULL,
    from_state TEXT,
    to_state   TEXT,
    note       TEXT
);
CREATE INDEX audit_by_alert ON audit (alert_id, id);

-- Time-bounded silences with who and why. NULL matchers match anything.
CREATE TABLE silences (
    id            INTEGER PRIMARY KEY AUTOINCREMENT,
    cell          TEXT,
    site          TEXT,
    rule          TEXT,
    entity        TEXT,
    starts_ms     INTEGER NOT NULL,
    ends_ms       INTEGER NOT NULL,
    created_by    TEXT    NOT NULL,
    reason        TEXT    NOT NULL,
    created_at_ms INTEGER NOT NULL
);
