-- The contract tables of DESIGN.md ("Storage"), plus the bookkeeping the
-- engine needs (tail offsets, rule state). Times are ISO 8601 UTC text.

CREATE TABLE patients (
    id          TEXT PRIMARY KEY,
    birth_date  TEXT,
    sex         TEXT,
    updated_at  TEXT NOT NULL
);

-- Every inbound message or file (a CSV file or a tailed batch is one row),
-- accepted or not. A file's control_id is the SHA-256 of its bytes, so the
-- same file ingested twice is recognised and not stored twice.
CREATE TABLE messages (
    id          INTEGER PRIMARY KEY,
    source      TEXT NOT NULL,
    control_id  TEXT NOT NULL,
    type        TEXT,
    received_at TEXT NOT NULL,
    status      TEXT NOT NULL,     -- accepted | partial | rejected | duplicate
    error       TEXT,
    raw         BLOB,
    name        TEXT,              -- file name or peer address, for people
    rows_stored INTEGER NOT NULL DEFAULT 0,
    rows_rejected INTEGER NOT NULL DEFAULT 0,
    UNIQUE (source, control_id)
);

CREATE TABLE observations (
    id          INTEGER PRIMARY KEY,
    patient_id  TEXT NOT NULL,
    code        TEXT NOT NULL,
    code_system TEXT NOT NULL DEFAULT 'LN',
    name        TEXT,
    value_num   REAL,
    value_text  TEXT,
    unit        TEXT,
    ref_low     REAL,
    ref_high    REAL,
    flag        TEXT,
    status      TEXT NOT NULL DEFAULT 'F',
    observed_at TEXT NOT NULL,
    message_id  INTEGER REFERENCES messages (id),
    line        INTEGER
);
CREATE INDEX observations_by_patient ON observations (patient_id, code, observed_at);

CREATE TABLE exposures (
    id          INTEGER PRIMARY KEY,
    patient_id  TEXT NOT NULL,
    drug        TEXT NOT NULL,
    drug_code   TEXT,
    code_system TEXT,
    dose        REAL,
    dose_unit   TEXT,
    route       TEXT,
    start_at    TEXT NOT NULL,
    end_at      TEXT,
    message_id  INTEGER REFERENCES messages (id),
    line        INTEGER
);
CREATE INDEX exposures_by_patient ON exposures (patient_id, start_at);

CREATE TABLE events (
    id          INTEGER PRIMARY KEY,
    patient_id  TEXT NOT NULL,
    code        TEXT NOT NULL,
    code_system TEXT NOT NULL DEFAULT 'ICD10CM',
    term        TEXT,
    onset_at    TEXT NOT NULL,
    serious     INTEGER,
    outcome     TEXT,
    message_id  INTEGER REFERENCES messages (id),
    line        INTEGER
);
CREATE INDEX events_by_patient ON events (patient_id, onset_at);

CREATE TABLE alerts (
    id          INTEGER PRIMARY KEY,
    patient_id  TEXT NOT NULL,
    rule        TEXT NOT NULL,
    signal      TEXT NOT NULL,
    severity    TEXT NOT NULL CHECK (severity IN ('low', 'medium', 'high', 'critical')),
    grade       INTEGER,
    title       TEXT NOT NULL,
    detail      TEXT,
    action      TEXT,
    dedup_key   TEXT NOT NULL,
    status      TEXT NOT NULL DEFAULT 'open'
                CHECK (status IN ('open', 'acknowledged', 'closed')),
    created_at  TEXT NOT NULL,
    updated_at  TEXT NOT NULL,
    occurrences INTEGER NOT NULL DEFAULT 1,
    evidence    TEXT,              -- JSON array of {kind, id, code, value, unit, at}
    rule_sha256 TEXT,              -- provenance: the plugin source that raised it
    engine_version TEXT
);
-- At most one alert per (patient, rule, key) that is not closed.
CREATE UNIQUE INDEX alerts_live_key ON alerts (patient_id, rule, dedup_key)
    WHERE status != 'closed';
CREATE INDEX alerts_by_status ON alerts (status, id);

CREATE TABLE alert_actions (
    id          INTEGER PRIMARY KEY,
    alert_id    INTEGER NOT NULL REFERENCES alerts (id),
    at          TEXT NOT NULL,
    actor       TEXT NOT NULL,
    action      TEXT NOT NULL,     -- opened | escalated | acknowledged | closed | ...
    note        TEXT
);
CREATE INDEX alert_actions_by_alert ON alert_actions (alert_id, id);

CREATE TABLE outbox (
    id              INTEGER PRIMARY KEY,
    alert_id        INTEGER NOT NULL REFERENCES alerts (id),
    channel         TEXT NOT NULL,
    payload         TEXT NOT NULL,
    attempts        INTEGER NOT NULL DEFAULT 0,
    next_attempt_at TEXT NOT NULL,
    status          TEXT NOT NULL DEFAULT 'pending',  -- pending | sent | failed
    last_error      TEXT
);
CREATE INDEX outbox_pending ON outbox (status, next_attempt_at);

-- Where each followed file was read up to; written in the same transaction
-- as the rows read, so a restart resumes at the next unread record.
CREATE TABLE tail_offsets (
    path        TEXT PRIMARY KEY,
    dev         INTEGER NOT NULL,
    ino         INTEGER NOT NULL,
    offset      INTEGER NOT NULL,
    line        INTEGER NOT NULL,
    header      TEXT NOT NULL,
    delimiter   TEXT NOT NULL,
    updated_at  TEXT NOT NULL
);

-- Key/value memory for rules (pv.state).
CREATE TABLE rule_state (
    rule        TEXT NOT NULL,
    key         TEXT NOT NULL,
    value       TEXT,
    updated_at  TEXT NOT NULL,
    PRIMARY KEY (rule, key)
);
