-- PostgreSQL's dialect of migrations/0003_apps.
-- Apps: the ports a session's container publishes and the secret its apps are started with.
-- ports: JSON list of {name, protocol, port, host_port}; app_secret: e.g. JupyterLab's token,
-- known to berth's proxy and the container only.
ALTER TABLE sessions ADD COLUMN ports TEXT NOT NULL DEFAULT '[]';
ALTER TABLE sessions ADD COLUMN app_secret TEXT;
ALTER TABLE sessions ADD COLUMN preopen_ports TEXT NOT NULL DEFAULT '[]';
