-- PostgreSQL's dialect of migrations/0008_node_proxies.
-- Proxies beside nodes: a node's `berth wsproxy` (its public URL) and the key the gateway
-- signs its tokens with and calls it with. Absent: the gateway's own proxy serves the node.
ALTER TABLE nodes ADD COLUMN proxy_url TEXT;
ALTER TABLE nodes ADD COLUMN proxy_key TEXT;
