-- Replicas. Login throttling lives in the database on both backends
-- (gateway/src/auth/throttle.rs): attempts per key (a username at an address, an address, a
-- username) since first_at; times in ms since the epoch. (PostgreSQL's 0007 also makes the
-- event id sequence its replicas share; SQLite serves one process, whose ids count in memory.)
CREATE TABLE login_throttle (
    key TEXT PRIMARY KEY,
    attempts BIGINT NOT NULL,
    first_at BIGINT NOT NULL,
    locked_until BIGINT
);

-- A running job's heartbeat (written with its progress): with replicas, a job whose replica
-- died is failed by the leader once its heartbeat is stale (gateway/src/vfolders/sharing.rs).
ALTER TABLE jobs ADD COLUMN beat_at TEXT;
