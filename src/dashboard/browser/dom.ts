/** Building DOM nodes without innerHTML: every text the daemon sends lands as text, never markup. */

type Child = Node | string | number | null | undefined | false;

/** An element with attributes (`class`, `title`, `data-*`, ...) and children. */
export function el<K extends keyof HTMLElementTagNameMap>(tag: K, attrs: Record<string, string> = {}, ...children: Child[]): HTMLElementTagNameMap[K] {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) e.setAttribute(k, v);
  for (const c of children) if (c !== null && c !== undefined && c !== false) e.append(typeof c === 'number' ? String(c) : c);
  return e;
}

/** Replaces an element's children. */
export function fill(parent: Element, ...children: Child[]): void {
  parent.replaceChildren(...children.filter((c): c is Node | string | number => c !== null && c !== undefined && c !== false).map((c) => (typeof c === 'number' ? String(c) : c)));
}

export function byId<T extends HTMLElement = HTMLElement>(id: string): T {
  const e = document.getElementById(id);
  if (!e) throw new Error(`dashboard: no #${id} in the page`);
  return e as T;
}

/** Node names in human order: sim2 before sim10. */
export const byName = new Intl.Collator(undefined, { numeric: true }).compare;
