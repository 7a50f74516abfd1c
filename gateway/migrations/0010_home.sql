-- Persistent homes: each user's folder of kind 'home' (one live one per user, made by berth
-- the first time it is needed), mounted at /home/work in the owner's sessions.
-- When the home was first filled from a session image's own /home/work; NULL: not yet.
ALTER TABLE vfolders ADD COLUMN seeded_at TEXT;
CREATE UNIQUE INDEX vfolders_one_home ON vfolders(owner_id) WHERE kind = 'home' AND deleted_at IS NULL;
-- The home folder a session mounts at /home/work; NULL: a clean home (the image's own).
ALTER TABLE sessions ADD COLUMN home_vfolder TEXT;
