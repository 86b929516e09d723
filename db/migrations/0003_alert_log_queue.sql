-- Alert log lines are kept here in the transaction that produced them, so
-- that a crash between the commit and the write of alerts.jsonl loses no
-- line: at start-up pvwatch writes out whatever is left (at least once).
CREATE TABLE alert_log_queue (
    id   INTEGER PRIMARY KEY AUTOINCREMENT,
    line TEXT NOT NULL
);
