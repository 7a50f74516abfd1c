-- PostgreSQL's dialect of migrations/0011_dotfiles (the same statements).
-- Dotfiles: files written into every session's container before it starts, at three levels.
-- level is 'domain' (owner_id ''), 'project' (owner_id a project id) or 'user' (a user id);
-- path is '~/REL' or '/etc/REL' (api::dotfiles::validate_path); mode the permission bits.
CREATE TABLE dotfiles (
    level      TEXT NOT NULL,
    owner_id   TEXT NOT NULL,
    path       TEXT NOT NULL,
    content    TEXT NOT NULL,
    mode       BIGINT NOT NULL,
    updated_at TEXT NOT NULL,
    PRIMARY KEY (level, owner_id, path)
);

-- One row per level that has ever kept a dotfile: a write updates it first, which serialises
-- the writers of one level, so the count of 100 cannot be passed by racing creations.
CREATE TABLE dotfile_sets (
    level    TEXT NOT NULL,
    owner_id TEXT NOT NULL,
    PRIMARY KEY (level, owner_id)
);
