-- berth's first schema, PostgreSQL's dialect of migrations/0001_init.sql: integers and flags are
-- BIGINT, so one query text runs on both. Times are RFC 3339 UTC text; ids are UUID text.
CREATE TABLE meta (
    key   TEXT PRIMARY KEY,
    value TEXT NOT NULL
);

CREATE TABLE users (
    id            TEXT PRIMARY KEY,
    username      TEXT NOT NULL UNIQUE,
    password_hash TEXT NOT NULL,
    role          TEXT NOT NULL,
    disabled      BIGINT NOT NULL DEFAULT 0,
    created_at    TEXT NOT NULL
);

-- Login sessions behind the berth_session cookie; only the SHA-256 of the token is kept.
CREATE TABLE auth_sessions (
    token_hash TEXT PRIMARY KEY,
    user_id    TEXT NOT NULL REFERENCES users(id),
    created_at TEXT NOT NULL,
    expires_at TEXT NOT NULL
);

CREATE TABLE sessions (
    id            TEXT PRIMARY KEY,
    seq           BIGINT NOT NULL,
    owner_id      TEXT NOT NULL REFERENCES users(id),
    name          TEXT NOT NULL,
    kind          TEXT NOT NULL,
    image         TEXT NOT NULL,
    cpu_milli     BIGINT NOT NULL,
    mem_bytes     BIGINT NOT NULL,
    gpu           BIGINT NOT NULL DEFAULT 0,
    gpu_shares    BIGINT NOT NULL DEFAULT 0,
    env           TEXT NOT NULL DEFAULT '{}',
    command       TEXT,
    status        TEXT NOT NULL,
    status_reason TEXT NOT NULL,
    node          TEXT,
    container_id  TEXT,
    exit_code     BIGINT,
    logs          TEXT,
    created_at    TEXT NOT NULL,
    started_at    TEXT,
    terminated_at TEXT
);

-- A name is unique per owner among live sessions: the database enforces it.
CREATE UNIQUE INDEX sessions_live_name ON sessions(owner_id, name)
    WHERE status NOT IN ('TERMINATED', 'CANCELLED', 'ERROR');
CREATE INDEX sessions_status ON sessions(status, seq);

CREATE TABLE session_history (
    id         BIGSERIAL PRIMARY KEY,
    session_id TEXT NOT NULL REFERENCES sessions(id),
    status     TEXT NOT NULL,
    reason     TEXT NOT NULL,
    at         TEXT NOT NULL
);
CREATE INDEX session_history_session ON session_history(session_id, id);
