-- Compliance renovation of confirmed group rentals and three-in-one
-- premises (docs/tips.md): one row per premises and hazard, with the time
-- of each step. The report computes acceptance rates per town and street.
CREATE TABLE renovations (
    id            INTEGER PRIMARY KEY AUTOINCREMENT,
    flat          TEXT    NOT NULL,
    hazard        TEXT    NOT NULL,
    cell          TEXT    NOT NULL,
    site          TEXT    NOT NULL,
    case_id       INTEGER REFERENCES alerts(id),
    step          TEXT    NOT NULL,
    found_ms      INTEGER NOT NULL,
    ordered_ms    INTEGER,
    renovated_ms  INTEGER,
    accepted_ms   INTEGER,
    closed_ms     INTEGER,
    UNIQUE (flat, hazard)
);
