-- Who did what, when: commands, token changes, definition and inventory changes.
CREATE TABLE audit (
  id     INTEGER PRIMARY KEY,
  time   INTEGER NOT NULL,     -- epoch ms
  actor  TEXT NOT NULL,        -- token id ('env' for STATED_TOKEN)
  role   TEXT NOT NULL,
  action TEXT NOT NULL,        -- e.g. command.REBOOT, token.create, machine.import
  detail TEXT                  -- JSON
) STRICT;
CREATE INDEX audit_time ON audit(time);
