-- PostgreSQL's dialect of migrations/0002_accounts.
-- Accounts: API keys, projects, resource policies; session project and activity.
CREATE TABLE api_keys (
    id           TEXT PRIMARY KEY,
    user_id      TEXT NOT NULL REFERENCES users(id),
    name         TEXT NOT NULL,
    prefix       TEXT NOT NULL,
    -- SHA-256 of the whole key; the key itself is never stored.
    key_hash     TEXT NOT NULL UNIQUE,
    created_at   TEXT NOT NULL,
    last_used_at TEXT,
    revoked_at   TEXT
);
CREATE INDEX api_keys_user ON api_keys(user_id);

CREATE TABLE projects (
    id          TEXT PRIMARY KEY,
    name        TEXT NOT NULL UNIQUE,
    description TEXT NOT NULL DEFAULT '',
    created_at  TEXT NOT NULL
);

CREATE TABLE project_members (
    project_id TEXT NOT NULL REFERENCES projects(id),
    user_id    TEXT NOT NULL REFERENCES users(id),
    PRIMARY KEY (project_id, user_id)
);

-- scope is 'default' or a user id; body is a JSON object of normalised policy keys
-- (the full policy for 'default', only the overridden keys for a user).
CREATE TABLE policies (
    scope TEXT PRIMARY KEY,
    body  TEXT NOT NULL
);

ALTER TABLE sessions ADD COLUMN project_id TEXT REFERENCES projects(id);
ALTER TABLE sessions ADD COLUMN last_activity_at TEXT;
