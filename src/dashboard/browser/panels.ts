/**
 * The side panels: reboots in progress, pending timeouts, open waits, recent
 * TBFAILED and notifications, boot times per type. Long lists show the first
 * rows and say how many more: a panel stays readable with 5,000 nodes.
 */
import type { FailureReason } from '../../types.ts';
import type { NodeView } from '../../views.ts';
import type { BootStats } from './boots.ts';
import { byId, byName, el, fill } from './dom.ts';
import type { Fleet } from './fleet.ts';
import { describeFailure } from '../../reasons.ts';
import { clock, duration } from '../../timefmt.ts';
import type { WaitSummary } from '../../waits.ts';

/** GET /v1/waits, one wait: the daemon's own type (a type-only import, erased from the bundle). */
export type WaitView = WaitSummary;

const ROWS = 25;

const nodeLink = (id: string): HTMLElement => el('a', { href: '#', 'data-node': id }, id);
const more = (n: number, what: string): HTMLElement | null => (n > 0 ? el('p', { class: 'more' }, `and ${n} more ${what}`) : null);
const empty = (text: string): HTMLElement => el('p', { class: 'empty' }, text);

/** What a node being rebooted waits for now: its driver, or a state. */
export function waitsFor(n: NodeView): string {
  const r = n.reboot;
  if (r.waitingForDriver) return 'a driver to connect';
  if (r.inFlight) return 'its driver';
  if (r.awaitingShutdown) return 'SHUTDOWN';
  return 'ISUP';
}

export class Panels {
  constructor(
    private readonly fleet: Fleet,
    private readonly boots: BootStats,
    private readonly maxAttempts: number,
    open: (node: string) => void,
  ) {
    document.querySelector('.panels')!.addEventListener('click', (ev) => {
      const a = (ev.target as Element).closest<HTMLElement>('[data-node]');
      if (!a) return;
      ev.preventDefault();
      open(a.dataset.node!);
    });
  }

  /** The nodes and timeouts panels; `now` is the daemon's clock. */
  renderNodes(now: number): void {
    const f = this.fleet;
    // Retries first: a node on its third attempt matters more than one on its first.
    const reboots = [...f.rebooting].sort((a, b) => f.nodes.get(b)!.reboot.attempts - f.nodes.get(a)!.reboot.attempts || byName(a, b));
    byId('n-reboots').textContent = reboots.length > 0 ? String(reboots.length) : '';
    const rebootRows = reboots.slice(0, ROWS).map((id) => {
      const n = f.nodes.get(id)!;
      return el('tr', { 'data-node': id },
        el('td', {}, nodeLink(id)),
        el('td', {}, n.reboot.command ?? ''),
        el('td', {}, `attempt ${n.reboot.attempts}/${this.maxAttempts}`),
        el('td', {}, `waits for ${waitsFor(n)}`),
        el('td', { class: 'muted wrap' }, `in ${n.state ?? '-'}${n.timeout ? ` ${duration(n.timeout.at - now)}` : ''}`));
    });
    if (reboots.length > ROWS) rebootRows.push(el('tr', {}, el('td', { class: 'more', colspan: '5' }, `and ${reboots.length - ROWS} more`)));
    fill(byId('reboots'), ...(rebootRows.length > 0 ? rebootRows : [el('tr', {}, el('td', { class: 'empty' }, 'none'))]));
    this.renderTimeouts(now);
  }

  /** The timeouts alone: their time left moves every second. */
  renderTimeouts(now: number): void {
    const f = this.fleet;
    const list = [...f.timed].map((id) => f.nodes.get(id)!).filter((n) => n.timeout).sort((a, b) => a.timeout!.at - b.timeout!.at);
    byId('n-timeouts').textContent = list.length > 0 ? String(list.length) : '';
    const rows = list.slice(0, ROWS).map((n) => {
      const t = n.timeout!;
      const left = t.at - now;
      return el('tr', { 'data-node': n.node },
        el('td', {}, nodeLink(n.node)),
        el('td', {}, `${t.mode}/${t.state}`),
        el('td', {}, t.action || 'nothing'),
        el('td', { class: left < 0 ? 'bad' : '' }, left < 0 ? `due ${duration(-left)} ago` : `${duration(left)} left`));
    });
    if (list.length > ROWS) rows.push(el('tr', {}, el('td', { class: 'more', colspan: '4' }, `and ${list.length - ROWS} more`)));
    fill(byId('timeouts'), ...(rows.length > 0 ? rows : [el('tr', {}, el('td', { class: 'empty' }, 'none'))]));
  }

  /**
   * Open waits, oldest first, with their progress: done, failed (with why)
   * and what they still wait on. A string instead of a list is what the
   * daemon said when it would not list them (no route, or not this token's).
   */
  renderWaits(waits: WaitView[] | string, now: number): void {
    const root = byId('waits');
    byId('n-waits').textContent = typeof waits !== 'string' && waits.length > 0 ? String(waits.length) : '';
    if (typeof waits === 'string') return fill(root, empty(waits));
    if (waits.length === 0) return fill(root, empty('none'));
    const items = waits.slice(0, ROWS).map((w) => {
      const total = w.done.length + w.failed.length + w.remaining.length || 1;
      const bar = el('div', { class: 'bar', title: `${w.done.length} done, ${w.failed.length} failed, ${w.remaining.length} remaining` });
      const done = el('i', { class: 'done' });
      const failed = el('i', { class: 'failed' });
      done.style.width = `${(100 * w.done.length) / total}%`;
      failed.style.width = `${(100 * w.failed.length) / total}%`;
      bar.append(done, failed);
      const left = w.remaining.slice(0, 8).join(' ') + (w.remaining.length > 8 ? ' …' : '');
      // Every node settled: the wait is over, its owner has yet to collect it (it leaves when they do).
      const over = w.remaining.length === 0;
      return el('div', { class: 'wait', 'data-wait': w.wait },
        el('div', {}, el('code', {}, w.wait), ` for ${w.states.join(',')}: ${w.done.length}/${total} done`,
          w.failed.length > 0 ? el('span', { class: 'bad' }, `, ${w.failed.length} failed`) : null,
          over ? el('b', { class: 'over' }, ' · finished') : null,
          el('span', { class: 'muted' }, `, ${duration(now - w.created)} old`)),
        bar,
        w.remaining.length > 0 ? el('div', { class: 'muted' }, `waiting on ${left}`) : null,
        ...w.failed.slice(0, 4).map((f) => el('div', { class: 'wrap', title: f.reason }, nodeLink(f.node), ' ', el('span', { class: 'bad' }, f.code), ` ${f.reason}`)),
        more(w.failed.length - 4, 'failed'));
    });
    fill(root, ...items, more(waits.length - ROWS, 'waits'));
  }

  renderLists(): void {
    const f = this.fleet;
    const failed = f.failures.map((x) => el('li', { 'data-seq': String(x.seq) },
      el('time', {}, clock(x.time)), nodeLink(x.node), ' ', el('span', { class: 'bad' }, x.command), ' ',
      x.reason ? describeFailure(x.reason) : x.message ?? ''));
    fill(byId('failed'), ...(failed.length > 0 ? failed : [el('li', { class: 'empty' }, 'none')]));
    const notes = f.notes.map((x) => el('li', { 'data-seq': String(x.seq) },
      el('time', {}, clock(x.time)), nodeLink(x.node), ' ', el('b', {}, x.code), ' ', x.message));
    fill(byId('notes'), ...(notes.length > 0 ? notes : [el('li', { class: 'empty' }, 'none')]));
  }

  renderBoots(): void {
    const b = this.boots;
    const rows = b.rows();
    byId('boots-since').textContent = b.since !== null ? `since ${clock(b.since)}` : b.source === 'pending' ? '' : '(seen live)';
    const d = (ms: number | null): string => (ms === null ? '-' : duration(ms));
    const head = el('tr', {}, ...['type', 'boots', 'p50', 'p95', 'max', 'last', 'retries'].map((h) => el('th', {}, h)));
    // Failures get a line of their own under their type: reason codes are long.
    const body = rows.flatMap((r) => {
      const failures = Object.entries(r.failures).map(([k, v]) => `${k} ${v}`).join(', ');
      return [
        el('tr', { 'data-type': r.type },
          el('td', {}, r.type), el('td', {}, r.count), el('td', {}, d(r.p50)), el('td', {}, d(r.p95)), el('td', {}, d(r.max)),
          el('td', {}, d(r.last)), el('td', {}, r.retries)),
        failures ? el('tr', { class: 'sub' }, el('td', { class: 'wrap bad', colspan: '7' }, `failures: ${failures}`)) : null,
      ].filter((x): x is HTMLTableRowElement => x !== null);
    });
    // Said once, calmly, above what the page could still count itself.
    const note = b.source === 'refused'
      ? el('tr', { class: 'note' }, el('td', { class: 'wrap muted', colspan: '7' }, `The daemon's figures are for operator and admin tokens (${b.refusal || 'refused'}); below, only boots this page saw.`))
      : b.source === 'absent' ? el('tr', { class: 'note' }, el('td', { class: 'wrap muted', colspan: '7' }, 'This daemon keeps no boot figures; below, only boots this page saw.')) : null;
    fill(byId('boots'), ...(note ? [note] : []), head, ...(body.length > 0 ? body : [el('tr', {}, el('td', { class: 'empty', colspan: '7' }, 'no boots yet'))]));
  }
}
