-- The comparator of a lab value reported as "<0.5" or HL7 SN "<^0.5", so
-- that history and replay see the same fact the rules saw when it arrived.
ALTER TABLE observations ADD COLUMN comparator TEXT;
