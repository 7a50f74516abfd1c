-- Revocations, kept so that a replica that missed one on the bus (its listening connection
-- cut) still applies it (gateway/src/bus.rs): `seq` is taken under the bus's advisory
-- transaction lock, so its order is commit order, and each replica applies every row past
-- the last one it saw (after each notification, each reconnect, and every few seconds).
CREATE TABLE revocations (
    seq BIGSERIAL PRIMARY KEY,
    user_id TEXT NOT NULL,
    origin TEXT NOT NULL,
    at TEXT NOT NULL
);
