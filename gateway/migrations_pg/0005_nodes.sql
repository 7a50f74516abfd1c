-- PostgreSQL's dialect of migrations/0005_nodes.
-- Nodes: Docker engines sessions run on. The local engine is the built-in node 'local'.
-- A node's state is derived: DOWN when its engine stopped answering (healthy = 0), else
-- DRAINING when an admin drains it, else UP. Capacity is read from the engine at each
-- successful check. Allocation is not stored here: it is the sum of the live sessions placed
-- on the node, so it changes in the same statement as their status and cannot drift.
CREATE TABLE nodes (
    id           TEXT PRIMARY KEY,
    name         TEXT NOT NULL UNIQUE,
    docker       TEXT NOT NULL,
    grp          TEXT,
    local        BIGINT NOT NULL DEFAULT 0,
    draining     BIGINT NOT NULL DEFAULT 0,
    healthy      BIGINT NOT NULL DEFAULT 1,
    state_reason TEXT NOT NULL DEFAULT '',
    cpu_milli    BIGINT NOT NULL DEFAULT 0,
    mem_bytes    BIGINT NOT NULL DEFAULT 0,
    tls_dir      TEXT,
    created_at   TEXT NOT NULL,
    checked_at   TEXT
);

-- A pending session's place in the queue as the last scheduling pass ordered it.
ALTER TABLE sessions ADD COLUMN queue_pos BIGINT;
