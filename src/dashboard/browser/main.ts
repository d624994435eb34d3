/**
 * The dashboard's wiring: the token, the snapshot (GET /v1/nodes), the live
 * subscription (resumed with `since` after every drop, so nothing is missed
 * and the fleet is never polled), `status` for the fields events do not
 * carry, waits (GET /v1/waits) and boot statistics (GET /v1/stats), and one
 * render per animation frame however many events arrived in it.
 */
import type { StatedEvent } from '../../types.ts';
import type { NodeView } from '../../views.ts';
import { BootStats, type StatsReply } from './boots.ts';
import { byId } from './dom.ts';
import { Fleet } from './fleet.ts';
import { Grid } from './grid.ts';
import { History } from './history.ts';
import { Link, type Push, RequestError } from './link.ts';
import { Panels, type WaitView } from './panels.ts';
import { dropToken, getJson, takeToken } from './token.ts';

/** Events replayed at load for the recent TBFAILED and notification lists. */
const REPLAY = 2000;
/**
 * Nodes per `status` request: the daemon builds a reply in one go (~1 ms per
 * 200 nodes), so a storm over 5,000 nodes is read in slices that never hold
 * its event loop for long.
 */
const STATUS_BATCH = 1000;

const meta = (name: string, dflt: number): number => Number(document.querySelector<HTMLMetaElement>(`meta[name="${name}"]`)?.content) || dflt;

function setLink(text: string, cls: '' | 'live' | 'down'): void {
  const e = byId('link');
  e.textContent = text;
  e.className = `link ${cls}`;
}

function main(): void {
  const token = takeToken();
  if (token === null) {
    setLink('no token: open this page with ?token=…', 'down');
    return;
  }
  const fleet = new Fleet();
  const boots = new BootStats();
  fleet.onRetry = (type) => boots.retried(type);
  const history = new History(token, (id) => {
    const n = fleet.nodes.get(id);
    return n ? `${n.mode}/${n.state ?? '-'}, type ${n.type}, project ${n.project ?? '-'}${n.reboot.command ? `, ${n.reboot.command} attempt ${n.reboot.attempts}` : ''}` : '';
  });
  const open = (id: string): void => void history.open(id);
  let frame = 0;
  let renders = 0;
  const schedule = (): void => {
    if (frame === 0) frame = requestAnimationFrame(render);
  };
  const grid = new Grid(fleet, open, schedule);
  const panels = new Panels(fleet, boots, meta('stated-max-attempts', 3), open);
  /** The daemon's clock minus ours (from `status` replies), for time left. */
  let skew = 0;
  const now = (): number => Date.now() + skew;

  // Open waits (GET /v1/waits): read at (re)connection, when an event touches
  // a node (it may settle a wait, or be the first news of one), and at each
  // heartbeat push: registering or ending a wait is not an event, so a wait
  // opened or collected on a quiet fleet would otherwise never show or leave.
  // One request at a time; those asked for meanwhile make one more.
  /** The list, or what the daemon said instead (no such route: it is not asked again until a reconnection). */
  let waits: WaitView[] | string = [];
  let waitsWanted = false, waitsBusy = false, waitsChanged = true, waitsGone = false;
  const loadWaits = async (): Promise<void> => {
    if (waitsBusy) { waitsWanted = true; return; }
    waitsBusy = true;
    waitsWanted = false;
    try {
      const r = await getJson('/v1/waits', token);
      if (r.status === 200) waits = r.body.waits as WaitView[];
      else if (r.status === 404) waits = 'this daemon does not list waits';
      else if (r.status === 403) waits = `not listed for this token: ${r.body?.error?.message ?? 'refused'}`;
      waitsGone = r.status === 404;
      waitsChanged = true;
      schedule();
    } catch { /* the daemon is away: the reconnection reads them again */ } finally {
      waitsBusy = false;
      if (waitsWanted && !waitsGone) void loadWaits();
    }
  };
  const loadStats = async (): Promise<void> => {
    try {
      const r = await getJson('/v1/stats', token);
      if (r.status === 200) boots.load(r.body as StatsReply);
      else if (r.status === 404) boots.load(null);
      // A user token: fleet-wide figures are not its to read. Said in the panel; the rest of the page carries on.
      else if (r.status === 403) boots.refuse(r.body?.error?.message ?? 'refused');
      schedule();
    } catch { /* as above */ }
  };

  // `status` for nodes whose timeout or reboot fields an event may have changed; one request at a time.
  let statusBusy = false;
  const refresh = async (): Promise<void> => {
    if (statusBusy || fleet.stale.size === 0 || !link.open) return;
    statusBusy = true;
    const ids = [...fleet.stale].slice(0, STATUS_BATCH);
    for (const id of ids) fleet.stale.delete(id);
    try {
      const r = await link.request('status', { nodes: ids });
      skew = r.now - Date.now();
      fleet.status(r.seq, r.nodes as NodeView[]);
    } catch (err) {
      const code = err instanceof RequestError ? err.code : '';
      // A node removed from the inventory, or no longer this token's to see: it leaves the page.
      const gone = code === 'E_UNKNOWN_NODE' || code === 'E_FORBIDDEN' ? /node (\S+)/.exec((err as Error).message)?.[1] : undefined;
      if (gone !== undefined && ids.includes(gone)) fleet.remove(gone);
      // The others are read again (after the reconnection, if the link dropped). Any other
      // error drops the batch rather than asking again at once: their next event asks again.
      if (code === 'E_CLOSED' || (gone !== undefined && ids.includes(gone))) {
        for (const id of ids) if (id !== gone) fleet.stale.add(id);
      } else console.error('stated: status', err);
    } finally {
      statusBusy = false;
      schedule();
    }
  };

  function render(): void {
    frame = 0;
    renders++;
    document.body.dataset.renders = String(renders);
    const t = now();
    if (fleet.panels) panels.renderNodes(t);
    grid.render();
    if (fleet.lists) panels.renderLists();
    if (boots.changed) panels.renderBoots();
    if (waitsChanged) panels.renderWaits(waits, t);
    fleet.panels = fleet.lists = boots.changed = waitsChanged = false;
    byId('link').dataset.seq = String(fleet.lastSeq);
    if (link.open) setLink(`live · seq ${fleet.lastSeq}`, 'live');
    void refresh();
  }
  // Time left moves without events: redraw the timeouts (only) each second.
  setInterval(() => {
    if (fleet.timed.size > 0) panels.renderTimeouts(now());
    if (typeof waits !== 'string' && waits.length > 0) {
      waitsChanged = true; // their age
      schedule();
    }
  }, 1000);

  /**
   * What no event announces — a wait opened or ended, an agent taking an action
   * that waited for it — is read again when the daemon's heartbeat says the
   * stream is idle (SPEC §3: updated over the WebSocket, never by polling).
   */
  const unannounced = (): void => {
    if (!waitsGone) void loadWaits();
    for (const id of fleet.rebooting) if (fleet.nodes.get(id)?.reboot.inFlight) fleet.stale.add(id);
    if (fleet.stale.size > 0) void refresh();
  };

  const onEvent = (seq: number, time: number, e: StatedEvent): void => {
    const live = seq > fleet.lastSeq && seq > fleet.snapshotSeq;
    const ids = fleet.event(seq, time, e);
    if (live) {
      const type = fleet.nodes.get(e.objname)?.type;
      if (type && e.objtype === 'TBNODESTATE') boots.state(e.objname, type, e.eventtype, time);
      if (type && e.objtype === 'TBFAILED') boots.failed(type, e.reason?.code ?? e.eventtype, time);
      // (Not again after a 404: that daemon has no GET /v1/waits; a reconnection asks once more.)
      if (!waitsGone && e.objtype !== 'NOTIFY') void loadWaits();
      history.event(seq, time, e);
    }
    schedule();
  };

  let loaded = false;
  const loadNodes = async (): Promise<void> => {
    const r = await getJson('/v1/nodes', token);
    if (r.status === 401) throw new RequestError('E_UNAUTHORIZED', 'token refused');
    if (r.status !== 200) throw new RequestError(r.body?.error?.code ?? 'E_INTERNAL', r.body?.error?.message ?? `GET /v1/nodes: ${r.status}`);
    fleet.load(r.body.seq, r.body.nodes as NodeView[]);
    loaded = true;
    schedule();
  };

  /** Whether a subscription was made before: the next one resumes from the last seq. */
  let resumed = false;
  const subscribe = async (): Promise<void> => {
    // First time: a little of the past too, for the recent lists; after a drop: from the last seq seen.
    const first = !resumed;
    const since = first ? Math.max(0, fleet.snapshotSeq - REPLAY) : fleet.lastSeq;
    try {
      await link.request('subscribe', { filter: {}, since });
    } catch (err) {
      if (!(err instanceof RequestError) || err.code !== 'E_HISTORY_COMPACTED') throw err;
      // The log no longer reaches back that far: start from a fresh snapshot.
      if (!first) await loadNodes();
      await link.request('subscribe', { filter: {}, since: fleet.snapshotSeq });
    }
    resumed = true;
  };

  const refused = (why: string): void => {
    link.stop();
    dropToken();
    setLink(why, 'down');
  };

  const link: Link = new Link(`${location.protocol === 'https:' ? 'wss' : 'ws'}://${location.host}/v1/ws?token=${encodeURIComponent(token)}`,
    3 * meta('stated-heartbeat', 15) * 1000, {
      opened: () => {
        void (async () => {
          if (!loaded) await loadNodes();
          await subscribe();
          link.settled();
          void loadStats();
          void loadWaits();
          schedule();
        })().catch((err: unknown) => {
          if (err instanceof RequestError && err.code === 'E_UNAUTHORIZED') return refused('token refused: reload with ?token=…');
          // Not subscribed, so not live: start over on a new connection (after the usual back-off).
          console.error('stated: resume', err);
          link.drop();
        });
      },
      push: (m: Push) => {
        if (m.type === 'event') onEvent(m.seq as number, m.time as number, m.event as StatedEvent);
        else if (m.type === 'heartbeat') unannounced();
        else if (m.type === 'ended') {
          // Retention overtook our replay: a fresh snapshot, then live from it.
          loaded = false;
          void loadNodes().then(subscribe).catch((err: unknown) => {
            console.error('stated: reload', err);
            link.drop();
          });
        }
      },
      closed: (code, _reason, wasOpen) => {
        if (code === 4001) return refused('token revoked');
        setLink('reconnecting…', 'down');
        // A connection refused before it opened: a daemon that is down, or a token that is no longer good.
        if (!wasOpen) {
          void getJson('/v1/nodes/-', token).then((r) => { if (r.status === 401) refused('token refused: reload with ?token=…'); }, () => {});
        }
      },
    });
  link.start();
}

main();
