-- The order an exposure came from (issue 15 item 2): ORC-2 placer order
-- number and ORC-3 filler order number (first component), NULL for CSV
-- rows, orders without them and rows stored before this column existed. A
-- later ORC-1 DC/OD (discontinue) ends the open exposure of the same
-- patient and order number at the message time; XO/RO (change/replacement
-- order) ends it where the new order starts (core/ingest_hl7.c).
ALTER TABLE exposures ADD COLUMN placer_order TEXT;
ALTER TABLE exposures ADD COLUMN filler_order TEXT;
CREATE INDEX exposures_by_placer ON exposures (patient_id, placer_order)
    WHERE placer_order IS NOT NULL;
CREATE INDEX exposures_by_filler ON exposures (patient_id, filler_order)
    WHERE filler_order IS NOT NULL;
