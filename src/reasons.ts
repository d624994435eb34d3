/** Why a node failed, as one line an operator reads (CLI summaries, GET /v1/waits). */
import type { FailureReason } from './types.ts';

/** `CODE in MODE/STATE after N attempt(s): message`, the parts there are. */
export function describeFailure(r: FailureReason | null | undefined): string {
  if (!r) return 'TBFAILED';
  const where = r.mode && r.state ? ` in ${r.mode}/${r.state}` : '';
  const tries = r.attempts ? ` after ${r.attempts} attempt(s)` : '';
  return `${r.code}${where}${tries}${r.message ? `: ${r.message}` : ''}`;
}
