-- Nothing reads nodes by deadline or by project (the daemon loads every node
-- at start and keeps its own deadline heap); each index was one more B-tree
-- write per node row per batch.
DROP INDEX nodes_timeout;
DROP INDEX nodes_project;
