-- Replicas on one database: the ids of session events, the same on every replica (see
-- gateway/src/bus.rs).
CREATE SEQUENCE event_ids;

-- Login throttling, shared by every replica (gateway/src/auth/throttle.rs): attempts per key
-- (username at an address, an address, a username) since first_at; times in ms since epoch.
CREATE TABLE login_throttle (
    key TEXT PRIMARY KEY,
    attempts BIGINT NOT NULL,
    first_at BIGINT NOT NULL,
    locked_until BIGINT
);

-- A running job's heartbeat (written with its progress): with replicas, a job whose replica
-- died is failed by the leader once its heartbeat is stale (gateway/src/vfolders/sharing.rs).
ALTER TABLE jobs ADD COLUMN beat_at TEXT;
