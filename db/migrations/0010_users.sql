-- The review console's users, sessions and login failures (issue 16;
-- core/auth.c, 'pvwatch users'). Times are ISO 8601 UTC text
-- ("2026-01-31T14:05:00Z"), which sorts as time.
--
-- users: one row per person; never deleted (the audit trail names them),
-- only disabled. pwhash is libsodium's crypto_pwhash_str (argon2id, the
-- "$argon2id$v=19$m=...,t=...,p=..." string with its own salt).
CREATE TABLE users (
    name       TEXT PRIMARY KEY,
    role       TEXT NOT NULL CHECK (role IN ('viewer', 'reviewer', 'admin')),
    pwhash     TEXT NOT NULL,
    created_at TEXT NOT NULL,
    disabled   INTEGER NOT NULL DEFAULT 0 CHECK (disabled IN (0, 1))
);

-- sessions: one row per login. The browser's cookie holds a random token;
-- only its SHA-256 (hex) is stored, so a copy of the database lets no one
-- log in. csrf is the token every form of the session carries.
CREATE TABLE sessions (
    token_sha256 TEXT PRIMARY KEY,
    user         TEXT NOT NULL REFERENCES users (name),
    csrf         TEXT NOT NULL,
    created_at   TEXT NOT NULL,
    expires_at   TEXT NOT NULL,
    last_seen    TEXT NOT NULL
);
CREATE INDEX sessions_by_user ON sessions (user);
CREATE INDEX sessions_by_expiry ON sessions (expires_at);

-- login_failures: one row per failed login, for rate limiting (so many
-- failures per name or per client within a window refuse further tries).
-- Rows older than the window are deleted at the next login.
CREATE TABLE login_failures (
    name   TEXT NOT NULL,
    client TEXT NOT NULL,
    at     TEXT NOT NULL
);
CREATE INDEX login_failures_by_name ON login_failures (name, at);
CREATE INDEX login_failures_by_client ON login_failures (client, at);
CREATE INDEX login_failures_by_at ON login_failures (at);
