-- StateWait (SPEC §3): a wait and where each of its nodes stands. Rows
-- advance in the same transaction as the event that moves them.
CREATE TABLE waits (
  wait_id     TEXT PRIMARY KEY,
  states      TEXT NOT NULL,     -- JSON list, in the order they must be seen
  start_seq   INTEGER NOT NULL,  -- only events after this count
  ttl         INTEGER NOT NULL,  -- seconds after last_attach before it is deleted
  last_attach INTEGER NOT NULL,  -- epoch ms
  owner       TEXT               -- token id that created it
) STRICT;

CREATE TABLE wait_nodes (
  wait_id TEXT NOT NULL REFERENCES waits(wait_id) ON DELETE CASCADE,
  node    TEXT NOT NULL,
  pos     INTEGER NOT NULL,      -- how many of the states the node has passed
  status  TEXT NOT NULL,         -- pending | done | failed | cancelled
  seq     INTEGER,               -- the event that finished or failed it
  reason  TEXT,                  -- JSON, for failed
  PRIMARY KEY (wait_id, node)
) STRICT;
