-- PostgreSQL's dialect of migrations/0006_gpus.
-- GPUs: devices a node declares (from configuration), and which devices a session holds.
ALTER TABLE nodes ADD COLUMN gpus BIGINT NOT NULL DEFAULT 0;
-- JSON {"whole": [device, ...], "shares": [[device, hundredths], ...]} once placed.
ALTER TABLE sessions ADD COLUMN gpu_alloc TEXT;
