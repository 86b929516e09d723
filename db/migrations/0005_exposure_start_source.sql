-- Where an exposure's start came from (issue 15 item 3): 'RXE-1', 'ORC-7',
-- 'TQ1-7', 'RXA-3', 'RXD-3', 'RXG-3', 'MSH-7' (the message time, used only
-- when the message gives no start of its own), 'csv' for CSV feeds, or NULL
-- for rows stored before this column existed. Rules see it as
-- exp.start_source.
ALTER TABLE exposures ADD COLUMN start_source TEXT;
