-- Utility readings brought in by `gridwatch-analytics import readings`
-- (docs/import.md). A source is one utility export stream (one mapping
-- file); a reading is keyed by (source, time, meter), so importing the same
-- file again finds every key already there with the same value and changes
-- nothing, and a utility's corrected re-send replaces the value and bumps
-- `revision`. The key is ordered by time before meter because exports come
-- day by day: new rows then land at the end of the B-tree instead of all
-- over it, which keeps bulk imports fast when the table is much larger than
-- SQLite's page cache.
CREATE TABLE import_sources (
    id INTEGER PRIMARY KEY,
    name TEXT NOT NULL UNIQUE,
    kind TEXT NOT NULL CHECK (kind IN ('electricity', 'water', 'gas'))
);
CREATE TABLE imported_readings (
    source_id INTEGER NOT NULL REFERENCES import_sources (id),
    ts_ms INTEGER NOT NULL,
    meter TEXT NOT NULL,
    flat TEXT NOT NULL,
    -- 'register' (a cumulative meter reading) or 'interval' (use in the
    -- interval that ends at ts_ms)
    value_kind TEXT NOT NULL CHECK (value_kind IN ('register', 'interval')),
    -- kWh for electricity, m³ for water and gas
    value REAL NOT NULL,
    -- the utility flagged the reading (estimated, substituted, failed read)
    quality_bad INTEGER NOT NULL DEFAULT 0,
    -- how many times a re-send changed this reading
    revision INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (source_id, ts_ms, meter)
) WITHOUT ROWID;
