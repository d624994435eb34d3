-- The rows the boot statistics are made of (src/stats.ts): SHUTDOWN and ISUP
-- states, TBFAILED events, and the NOTIFY each retry raises (REBOOT_RETRY). A partial index, so that a start rebuilds the
-- figures from these rows alone instead of scanning the whole log; an event
-- outside it costs the insert one evaluation of this WHERE, no B-tree write.
CREATE INDEX events_stats ON events(seq)
  WHERE (objtype = 'TBNODESTATE' AND eventtype IN ('SHUTDOWN', 'ISUP')) OR objtype = 'TBFAILED'
    OR (objtype = 'NOTIFY' AND eventtype = 'REBOOT_RETRY');
