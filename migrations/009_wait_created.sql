-- When a wait was created, for `waits list` and GET /v1/waits: last_attach
-- moves with every attach, so after a restart it no longer told a wait's age.
-- Waits older than this column take their last attach, the best left to know.
ALTER TABLE waits ADD COLUMN created INTEGER;
UPDATE waits SET created = last_attach;
