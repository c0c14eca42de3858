-- The alert lists of the API and dashboard read only summary columns. Rows
-- also hold the evidence and snapshot JSON (kilobytes, in overflow pages), and
-- reading summary columns stored after them walked those pages for every row:
-- the list query cost ~0.7 ms for 360 cases. These indexes cover every column
-- a list returns, so SQLite answers lists from the index and never reads a
-- row (docs/BENCHMARKS.md, "Analytics API under load").
DROP INDEX alerts_by_cell;
DROP INDEX alerts_by_site;
CREATE INDEX alerts_by_cell ON alerts (cell, state, last_seen_ms, id, site, rule, entity,
    severity, title, first_seen_ms, count, peak, assignee, escalation_level, reopened,
    recurrence_of, disposition, inhibited_by);
CREATE INDEX alerts_by_site ON alerts (site, state, last_seen_ms, id, cell, rule, entity,
    severity, title, first_seen_ms, count, peak, assignee, escalation_level, reopened,
    recurrence_of, disposition, inhibited_by);
