/**
 * The node grid, the counts per state and the filters. One tile per node,
 * created once and then only touched when its node changed: with 5,000 nodes
 * a frame costs what changed in it, not the fleet.
 */
import { isLight, stateColour } from './colors.ts';
import { byId, byName, el, fill } from './dom.ts';
import type { Fleet } from './fleet.ts';
import type { NodeView } from '../../views.ts';

type Field = 'project' | 'type' | 'mode' | 'state';
const FIELDS: Field[] = ['project', 'type', 'mode', 'state'];

export class Grid {
  private readonly tiles = new Map<string, HTMLElement>();
  private readonly root = byId('grid');
  private readonly selects = new Map<Field, HTMLSelectElement>(FIELDS.map((f) => [f, byId<HTMLSelectElement>(`f-${f}`)]));
  private readonly nameBox = byId<HTMLInputElement>('f-name');
  private readonly options = new Map<Field, string>();
  private shown = 0;

  constructor(private readonly fleet: Fleet, open: (node: string) => void, changed: () => void) {
    this.root.addEventListener('click', (ev) => {
      const tile = (ev.target as Element).closest<HTMLElement>('.tile');
      if (tile?.dataset.node) open(tile.dataset.node);
    });
    const refilter = (): void => {
      this.refilter();
      changed();
    };
    for (const s of this.selects.values()) s.addEventListener('change', refilter);
    this.nameBox.addEventListener('input', refilter);
    byId('counts').addEventListener('click', (ev) => {
      const chip = (ev.target as Element).closest<HTMLElement>('.chip');
      if (!chip?.dataset.state) return;
      const s = this.selects.get('state')!;
      s.value = s.value === chip.dataset.state ? '' : chip.dataset.state;
      refilter();
    });
  }

  private matches(n: NodeView): boolean {
    for (const [f, s] of this.selects) if (s.value !== '' && (n[f] ?? '-') !== s.value) return false;
    const name = this.nameBox.value.trim();
    return name === '' || n.node.includes(name);
  }

  /** Brings the grid up to date with the fleet; once per frame. */
  render(): void {
    const f = this.fleet;
    if (f.structure) {
      for (const [id, tile] of this.tiles) if (!f.nodes.has(id)) { tile.remove(); this.tiles.delete(id); }
      const frag = document.createDocumentFragment();
      for (const id of [...f.nodes.keys()].sort(byName)) {
        let tile = this.tiles.get(id);
        if (!tile) {
          tile = el('button', { class: 'tile', type: 'button', 'data-node': id }, el('b', {}, id), el('span'), el('span'));
          this.tiles.set(id, tile);
        }
        frag.append(tile);
        f.redraw.add(id);
      }
      this.root.append(frag);
    }
    if (f.structure || f.redraw.size > 0) this.updateOptions();
    for (const id of f.redraw) {
      const n = f.nodes.get(id);
      const tile = this.tiles.get(id);
      if (n && tile) this.draw(tile, n);
    }
    if (f.structure || f.redraw.size > 0) this.countShown();
    f.redraw.clear();
    f.structure = false;
    this.renderCounts();
  }

  private draw(tile: HTMLElement, n: NodeView): void {
    const state = n.state ?? '-';
    tile.style.background = stateColour(n.state);
    tile.classList.toggle('dark', isLight(n.state));
    tile.classList.toggle('busy', this.fleet.rebooting.has(n.node));
    tile.dataset.state = state;
    const [, line1, line2] = tile.children;
    line1!.textContent = `${state} · ${n.mode}`;
    line2!.textContent = `${n.type} · ${n.project ?? '-'}`;
    tile.title = `${n.node}: ${n.mode}/${state}, type ${n.type}, project ${n.project ?? '-'}${n.nextMode ? `, next mode ${n.nextMode}` : ''}`;
    tile.hidden = !this.matches(n);
  }

  private refilter(): void {
    for (const [id, tile] of this.tiles) {
      const n = this.fleet.nodes.get(id);
      if (n) tile.hidden = !this.matches(n);
    }
    this.countShown();
  }

  private countShown(): void {
    let shown = 0;
    for (const tile of this.tiles.values()) if (!tile.hidden) shown++;
    if (shown === this.shown && this.fleet.nodes.size === Number(this.root.dataset.total)) return;
    this.shown = shown;
    this.root.dataset.total = String(this.fleet.nodes.size);
    byId('shown').textContent = `${shown} of ${this.fleet.nodes.size} nodes shown`;
  }

  /** The filters' choices: what the fleet has now (a chosen value stays while no node has it). */
  private updateOptions(): void {
    for (const [field, select] of this.selects) {
      const values = this.fleet.values(field);
      if (select.value !== '' && !values.includes(select.value)) values.push(select.value);
      const key = values.join('\n');
      if (this.options.get(field) === key) continue;
      this.options.set(field, key);
      const keep = select.value;
      fill(select, el('option', { value: '' }, `all`), ...values.map((v) => el('option', { value: v }, v)));
      select.value = keep;
    }
  }

  private renderCounts(): void {
    const counts = [...this.fleet.counts].sort((a, b) => b[1] - a[1] || a[0].localeCompare(b[0]));
    const chosen = this.selects.get('state')!.value;
    const root = byId('counts');
    const key = counts.map(([s, n]) => `${s}=${n}`).join(',') + `|${chosen}`;
    if (root.dataset.key === key) return;
    root.dataset.key = key;
    fill(root, ...counts.map(([state, n]) => {
      const sw = el('i', { class: 'swatch' });
      sw.style.background = stateColour(state === '-' ? null : state);
      return el('button', { class: `chip${chosen === state ? ' on' : ''}`, type: 'button', 'data-state': state, title: `show only ${state}` }, sw, `${state} ${n}`);
    }));
  }
}
