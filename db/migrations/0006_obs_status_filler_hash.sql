-- 0006 (issue 15 items 1 and 6, hl7status).
-- The order an observation belongs to: OBR-3 filler order number, else
-- OBR-2 placer order number (NULL for CSV rows and OBX without an OBR).
-- A final (F/C) replaces the preliminary (P), and W retires a result, of
-- the same order, code and time.
ALTER TABLE observations ADD COLUMN filler_order TEXT;
-- The SHA-256 (hex) of a message's content, beside its control id: the
-- same sender and MSH-10 with the same hash is a resend (AA, not stored
-- again); with another hash it is a control id reused for other content.
-- NULL for rows stored before 0006 (their raw bytes are hashed instead).
ALTER TABLE messages ADD COLUMN content_sha256 TEXT;
