-- Every alert of a (patient, rule, key), closed ones too: `pvwatch replay`
-- asks for the newest one before it opens an alert, and without this index
-- that question read the whole alerts table each time.
CREATE INDEX alerts_by_key ON alerts (patient_id, rule, dedup_key, id);
