-- Node history without a secondary index on the log: each event names the
-- previous event of the same objname, and history follows that chain by
-- rowid. An (objname, seq) index puts each node's inserts in a different
-- B-tree page, so every commit rewrote up to one index page per node it
-- touched; at ~800 events per transaction that made the log's writes 3-4x
-- dearer (bench/run.ts). The chain costs one integer per row.
ALTER TABLE events ADD COLUMN prev INTEGER;
UPDATE events SET prev = (SELECT max(p.seq) FROM events p WHERE p.objname = events.objname AND p.seq < events.seq);
DROP INDEX events_node;
