-- Lists read the newest cases of a cell or site. SQLite's version covers
-- every listed column so that no row is read; PostgreSQL's B-tree entries
-- are limited to about 2.7 kB and titles are free text, so here the index
-- orders by recency and the few listed rows are read from the table.
DROP INDEX alerts_by_cell;
DROP INDEX alerts_by_site;
CREATE INDEX alerts_by_cell ON alerts (cell, state, last_seen_ms DESC, id DESC);
CREATE INDEX alerts_by_site ON alerts (site, state, last_seen_ms DESC, id DESC);
