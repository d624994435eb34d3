/** How history and watch print an event: one line, a readable time first (SPEC §1). */
import type { LoggedEvent } from '../types.ts';

const two = (n: number): string => String(n).padStart(2, '0');

/** Local wall-clock time, `14:03:07`; the date goes in front when it is not today (`2026-11-29 14:03:07`). */
export function clockTime(ms: number, now = Date.now()): string {
  const d = new Date(ms);
  const t = `${two(d.getHours())}:${two(d.getMinutes())}:${two(d.getSeconds())}`;
  const today = new Date(now);
  if (d.getFullYear() === today.getFullYear() && d.getMonth() === today.getMonth() && d.getDate() === today.getDate()) return t;
  return `${d.getFullYear()}-${two(d.getMonth() + 1)}-${two(d.getDate())} ${t}`;
}

/** `14:03:07  #812  TBNODESTATE  pc7  ISUP  (NORMALv2)`, then what the event carries: not-in-tables, reason, message. */
export function eventLine(le: LoggedEvent, now = Date.now()): string {
  const e = le.event;
  const parts = [clockTime(le.time, now), `#${le.seq}`, e.objtype, e.objname, e.eventtype];
  if (e.mode) parts.push(`(${e.mode})`);
  if (e.valid === false) parts.push('[not in state_transitions]');
  if (e.reason) parts.push(`reason=${e.reason.code}${e.reason.attempts ? ` attempts=${e.reason.attempts}` : ''}`);
  if (e.message) parts.push(`- ${e.message}`);
  return parts.join('  ');
}
