-- Where a node's engine sees berth's folder storage (the directory holding vfolders/), when
-- declared; NULL: only a node on the gateway's host (a unix socket) runs sessions with folders.
ALTER TABLE nodes ADD COLUMN storage TEXT;
