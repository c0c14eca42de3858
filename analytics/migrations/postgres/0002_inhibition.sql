ALTER TABLE alerts ADD COLUMN inhibited_by BIGINT REFERENCES alerts (id);
CREATE INDEX alerts_by_inhibitor ON alerts (inhibited_by) WHERE inhibited_by IS NOT NULL;
