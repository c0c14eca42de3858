-- Inhibition: a case raised (or folded) while an active root-cause case
-- covers it names that case here; cleared when the cause is resolved.
ALTER TABLE alerts ADD COLUMN inhibited_by INTEGER REFERENCES alerts (id);
CREATE INDEX alerts_by_inhibitor ON alerts (inhibited_by) WHERE inhibited_by IS NOT NULL;
