/** How history and watch print an event: one line, a readable time first (SPEC §1). */
import { clock } from '../timefmt.ts';
import type { LoggedEvent } from '../types.ts';

/** `14:03:07  #812  TBNODESTATE  pc7  ISUP  (NORMALv2)`, then what the event carries: not-in-tables, reason, message. */
export function eventLine(le: LoggedEvent, now = Date.now()): string {
  const e = le.event;
  const parts = [clock(le.time, now), `#${le.seq}`, e.objtype, e.objname, e.eventtype];
  if (e.mode) parts.push(`(${e.mode})`);
  if (e.valid === false) parts.push('[not in state_transitions]');
  if (e.reason) parts.push(`reason=${e.reason.code}${e.reason.attempts ? ` attempts=${e.reason.attempts}` : ''}`);
  // A NOTIFY's text starts with its node (`bad1: ...`, as the daemon's log has it); the line named it already.
  const message = e.message?.startsWith(`${e.objname}: `) ? e.message.slice(e.objname.length + 2) : e.message;
  if (message) parts.push(`- ${message}`);
  return parts.join('  ');
}
