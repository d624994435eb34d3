/** The benchmark's workload: N nodes, each walking NORMALv2's boot cycle, round robin. */

/** NORMALv2's boot cycle from ISUP (every step a valid transition, no NOTIFY). */
export const BOOT_CYCLE = ['SHUTDOWN', 'PXEBOOTING', 'BOOTING', 'TBSETUP', 'ISUP'] as const;

/** Node names pc1..pcN. */
export function nodeNames(n: number): string[] {
  return Array.from({ length: n }, (_, i) => `pc${i + 1}`);
}

/** Event i (0-based): node pc(i mod N + 1) takes its next step; every node starts in ISUP. */
export function eventAt(i: number, nodes: number): { node: number; state: string } {
  const node = i % nodes;
  const round = Math.floor(i / nodes);
  return { node, state: BOOT_CYCLE[round % BOOT_CYCLE.length]! };
}
