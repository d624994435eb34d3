-- The mode a node in one of Emulab's boot phase machines (PXEKERNEL,
-- SECUREBOOT, SECURELOAD) came from: where the BOOTING trigger sends it back
-- when it has no next op mode (SPEC §4.6). NULL outside those machines.
ALTER TABLE nodes ADD COLUMN phase_from TEXT;
