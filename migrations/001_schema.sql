-- stated's schema. Times are epoch milliseconds; durations in definitions are
-- seconds, as in Emulab's tables.

CREATE TABLE meta (
  key   TEXT PRIMARY KEY,
  value TEXT NOT NULL
) STRICT;

-- The event log: seq is the rowid, so it is strictly increasing; gap-free
-- because only the daemon's one writer assigns it, inside the batch
-- transaction. Retention deletes from the low end only.
CREATE TABLE events (
  seq       INTEGER PRIMARY KEY,
  time      INTEGER NOT NULL,
  objtype   TEXT NOT NULL,
  objname   TEXT NOT NULL,
  eventtype TEXT NOT NULL,
  cid       TEXT,            -- client-supplied id, for idempotent resends
  extra     TEXT             -- JSON: mode, valid, message, reason
) STRICT;
CREATE UNIQUE INDEX events_cid ON events(cid) WHERE cid IS NOT NULL;
CREATE INDEX events_node ON events(objname, seq);

-- Emulab's four definition tables ('*' = any).
CREATE TABLE state_transitions (
  op_mode TEXT NOT NULL,
  state1  TEXT NOT NULL,
  state2  TEXT NOT NULL,
  label   TEXT NOT NULL DEFAULT '',
  PRIMARY KEY (op_mode, state1, state2)
) STRICT;
CREATE TABLE state_timeouts (
  op_mode TEXT NOT NULL,
  state   TEXT NOT NULL,
  timeout INTEGER NOT NULL,  -- seconds; 0 = none
  action  TEXT NOT NULL DEFAULT '',
  PRIMARY KEY (op_mode, state)
) STRICT;
CREATE TABLE state_triggers (
  node_id  TEXT NOT NULL,
  op_mode  TEXT NOT NULL,
  state    TEXT NOT NULL,
  triggers TEXT NOT NULL DEFAULT '',
  PRIMARY KEY (node_id, op_mode, state)
) STRICT;
CREATE TABLE mode_transitions (
  op_mode1 TEXT NOT NULL,
  state1   TEXT NOT NULL,
  op_mode2 TEXT NOT NULL,
  state2   TEXT NOT NULL,
  label    TEXT NOT NULL DEFAULT '',
  PRIMARY KEY (op_mode1, state1, op_mode2)
) STRICT;

CREATE TABLE nodes (
  node_id    TEXT PRIMARY KEY,
  type       TEXT NOT NULL DEFAULT 'pc',
  project    TEXT,
  op_mode    TEXT NOT NULL,
  state      TEXT,
  since      INTEGER NOT NULL,
  next_mode  TEXT,
  prev_mode  TEXT,
  timeout_at     INTEGER,    -- absolute deadline, epoch ms
  timeout_action TEXT,
  timeout_mode   TEXT,
  timeout_state  TEXT,
  reboot     TEXT            -- JSON RebootState, NULL when idle
) STRICT;
CREATE INDEX nodes_timeout ON nodes(timeout_at) WHERE timeout_at IS NOT NULL;
CREATE INDEX nodes_project ON nodes(project);

-- One-shot triggers of one node, cleared once they fire.
CREATE TABLE node_triggers (
  node_id  TEXT NOT NULL REFERENCES nodes(node_id) ON DELETE CASCADE,
  op_mode  TEXT NOT NULL,
  state    TEXT NOT NULL,
  triggers TEXT NOT NULL,
  PRIMARY KEY (node_id, op_mode, state)
) STRICT;

CREATE TABLE tokens (
  hash    TEXT PRIMARY KEY,  -- sha256 of the token; the token itself is never stored
  id      TEXT NOT NULL UNIQUE,
  role    TEXT NOT NULL,
  node    TEXT,
  project TEXT,
  created INTEGER NOT NULL,
  revoked INTEGER
) STRICT;
