-- Revocations, kept so that a replica that missed one on the bus (its listening connection
-- cut) still applies it (gateway/src/bus.rs). SQLite serves one process, which revokes in
-- memory: there the table stays empty.
CREATE TABLE revocations (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    user_id TEXT NOT NULL,
    origin TEXT NOT NULL,
    at TEXT NOT NULL
);
