-- SSH into sessions: users' SSH public keys, and each session's host key (made by berth when
-- its container is first created, so clients know it without a trust-on-first-use prompt)
-- and why its SSH server could not start.
CREATE TABLE ssh_keys (
    id          TEXT PRIMARY KEY,
    user_id     TEXT NOT NULL REFERENCES users(id),
    name        TEXT NOT NULL,
    -- `TYPE BASE64`, without the comment.
    key         TEXT NOT NULL,
    fingerprint TEXT NOT NULL,
    created_at  TEXT NOT NULL,
    UNIQUE (user_id, fingerprint)
);
-- The private half (OpenSSH format), written into the container for its sshd; readable by
-- the session's own code like every file of its user.
ALTER TABLE sessions ADD COLUMN ssh_host_key TEXT;
-- The public half, `ssh-ed25519 BASE64`.
ALTER TABLE sessions ADD COLUMN ssh_host_pub TEXT;
-- A sentence when the session's image has no OpenSSH server.
ALTER TABLE sessions ADD COLUMN ssh_error TEXT;
