-- PostgreSQL's dialect of migrations/0004_vfolders.
-- VFolders: persistent folders on the gateway host's disk (under DATA_DIR/vfolders/ID), their
-- sharing, resumable uploads in flight and background jobs (clones).
CREATE TABLE vfolders (
    id          TEXT PRIMARY KEY,
    name        TEXT NOT NULL,
    kind        TEXT NOT NULL,            -- 'user' | 'project'
    owner_id    TEXT REFERENCES users(id),    -- user folders
    project_id  TEXT REFERENCES projects(id), -- project folders
    -- Who the name is unique for: the owner's or the project's id.
    scope_id    TEXT NOT NULL,
    state       TEXT NOT NULL DEFAULT 'READY', -- 'READY' | 'CLONING'
    created_at  TEXT NOT NULL,
    deleted_at  TEXT
);
CREATE UNIQUE INDEX vfolders_live_name ON vfolders(scope_id, name) WHERE deleted_at IS NULL;

-- Users a user folder is shared with (accepted invitations).
CREATE TABLE vfolder_members (
    vfolder_id TEXT NOT NULL REFERENCES vfolders(id),
    user_id    TEXT NOT NULL REFERENCES users(id),
    permission TEXT NOT NULL,             -- 'RO' | 'RW' | 'WD'
    PRIMARY KEY (vfolder_id, user_id)
);

CREATE TABLE vfolder_invitations (
    id          TEXT PRIMARY KEY,
    vfolder_id  TEXT NOT NULL REFERENCES vfolders(id),
    inviter_id  TEXT NOT NULL REFERENCES users(id),
    invitee_id  TEXT NOT NULL REFERENCES users(id),
    permission  TEXT NOT NULL,
    state       TEXT NOT NULL,            -- 'PENDING' | 'ACCEPTED' | 'DECLINED' | 'CANCELLED'
    created_at  TEXT NOT NULL
);
CREATE INDEX vfolder_invitations_invitee ON vfolder_invitations(invitee_id, state);

-- tus uploads in flight: data in DATA_DIR/uploads/ID until complete; `length` is reserved
-- against the folder's quota from creation on.
CREATE TABLE uploads (
    id          TEXT PRIMARY KEY,
    vfolder_id  TEXT NOT NULL REFERENCES vfolders(id),
    user_id     TEXT NOT NULL REFERENCES users(id),
    path        TEXT NOT NULL,
    length      BIGINT NOT NULL,
    "offset"      BIGINT NOT NULL DEFAULT 0,
    created_at  TEXT NOT NULL,
    touched_at  TEXT NOT NULL
);
CREATE INDEX uploads_vfolder ON uploads(vfolder_id);

CREATE TABLE jobs (
    id          TEXT PRIMARY KEY,
    user_id     TEXT NOT NULL REFERENCES users(id),
    kind        TEXT NOT NULL,
    state       TEXT NOT NULL,            -- 'RUNNING' | 'DONE' | 'FAILED'
    done_bytes  BIGINT NOT NULL DEFAULT 0,
    total_bytes BIGINT NOT NULL DEFAULT 0,
    vfolder_id  TEXT,
    error       TEXT,
    created_at  TEXT NOT NULL,
    finished_at TEXT
);

-- A session's mounts: JSON list of {vfolder, name, path, mode}.
ALTER TABLE sessions ADD COLUMN mounts TEXT NOT NULL DEFAULT '[]';
