/** The daemon's open waits, for tools that watch over them (`stated waits`). */
import type { WaitSummary } from '../waits.ts';
import type { Connection } from './connection.ts';

export type { WaitSummary };

/** The open waits this token may see, oldest first (SPEC §3 GET /v1/waits). */
export async function listWaits(conn: Connection): Promise<WaitSummary[]> {
  const r = await conn.request<{ waits: WaitSummary[] }>('listWaits', {}, { retry: true });
  return r.waits;
}

/** Ends a wait by id (its owner, or an operator); whoever waits on it is told it ended. */
export async function cancelWaitById(conn: Connection, wait: string): Promise<void> {
  await conn.request('endStateWait', { wait });
}
