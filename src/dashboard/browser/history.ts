/**
 * A node's history on click: GET /v1/nodes/NODE/history (newest last), then
 * the node's live events appended while the dialog is open.
 */
import type { LoggedEvent, StatedEvent } from '../../types.ts';
import { byId, el, fill } from './dom.ts';
import { clock } from '../../timefmt.ts';
import { describeFailure } from '../../reasons.ts';
import { getJson } from './token.ts';

const LIMIT = 200;

function row(le: LoggedEvent): HTMLElement {
  const e = le.event;
  const detail = e.objtype === 'TBFAILED' ? (e.reason ? describeFailure(e.reason) : e.message) : e.message ?? (e.valid === false ? 'not in the tables' : '');
  return el('tr', { 'data-seq': String(le.seq) },
    el('td', {}, el('time', {}, clock(le.time))),
    el('td', { class: 'muted' }, `#${le.seq}`),
    el('td', {}, e.objtype),
    el('td', { class: e.objtype === 'TBFAILED' ? 'bad' : '' }, e.eventtype),
    el('td', { class: 'muted' }, e.mode ?? ''),
    el('td', { class: 'wrap' }, detail ?? ''));
}

export class History {
  private readonly dialog = byId<HTMLDialogElement>('history');
  private readonly table = byId('h-events');
  private node: string | null = null;
  /** The last seq shown: live events already in the fetched history are not shown twice. */
  private shownSeq = 0;
  /** Live events that came while the history was being fetched (null: it is in). */
  private early: LoggedEvent[] | null = null;

  constructor(private readonly token: string, private readonly describe: (node: string) => string) {
    byId('h-close').addEventListener('click', () => this.dialog.close());
    this.dialog.addEventListener('close', () => { this.node = null; });
  }

  async open(node: string): Promise<void> {
    this.node = node;
    this.shownSeq = 0;
    this.early = [];
    byId('h-title').textContent = `${node}: history`;
    byId('h-node').textContent = this.describe(node);
    fill(this.table, el('tr', {}, el('td', { class: 'empty' }, 'loading…')));
    if (!this.dialog.open) this.dialog.showModal();
    const r = await getJson(`/v1/nodes/${encodeURIComponent(node)}/history?limit=${LIMIT}`, this.token).catch(() => null);
    if (this.node !== node) return;
    if (!r || r.status !== 200) {
      fill(this.table, el('tr', {}, el('td', { class: 'bad' }, r?.body?.error ? `${r.body.error.code}: ${r.body.error.message}` : 'the daemon did not answer')));
      return;
    }
    // The daemon answers newest first; the dialog reads top to bottom, live events appended below.
    const events = [...(r.body.events as LoggedEvent[])].sort((a, b) => a.seq - b.seq);
    const last = events.at(-1)?.seq ?? 0;
    const early = (this.early ?? []).filter((le) => le.seq > last);
    this.early = null;
    fill(this.table, this.head(), ...events.map(row), ...early.map(row));
    this.shownSeq = Math.max(last, early.at(-1)?.seq ?? 0);
    if (events.length + early.length === 0) this.table.append(el('tr', {}, el('td', { class: 'empty', colspan: '6' }, 'no events in the log')));
  }

  private head(): HTMLElement {
    return el('tr', {}, ...['time', 'seq', 'objtype', 'event', 'mode', 'detail'].map((h) => el('th', {}, h)));
  }

  /** A live event: appended when it is about the open node. */
  event(seq: number, time: number, e: StatedEvent): void {
    if (this.node === null || seq <= this.shownSeq) return;
    if (e.objname !== this.node && !(e.objtype === 'TBCOMMAND' && e.objname.split(',').includes(this.node))) return;
    if (this.early) {
      this.early.push({ seq, time, event: e });
      return;
    }
    this.shownSeq = seq;
    this.table.append(row({ seq, time, event: e }));
    byId('h-node').textContent = this.describe(this.node);
  }
}
