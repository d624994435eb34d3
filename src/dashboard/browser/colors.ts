/**
 * A colour per state, grouped by what the state means to an operator: up
 * (green), going down (amber), booting (blues), reloading (violet), failed
 * (reds), off (slate). A state the tables add later gets a stable hue of its
 * own. The tile also prints the state, so colour is never the only cue.
 */
const FIXED: Record<string, string> = {
  ISUP: '#2e9d4f',
  ALWAYSUP: '#2e9d4f',
  SHUTDOWN: '#d08b1a',
  PXEBOOTING: '#4aa3df',
  GPXEBOOTING: '#4aa3df',
  PXEBOOTED: '#3b8fd0',
  PXEWAIT: '#7fb8de',
  PXEWAKEUP: '#5a9fd0',
  PXELIMBO: '#7fb8de',
  BOOTING: '#2f6fc6',
  TBSETUP: '#4552b8',
  RELOADSETUP: '#8e5bc8',
  RELOADING: '#7c3fbf',
  RELOADDONE: '#6a2fa8',
  RELOADDONEV2: '#6a2fa8',
  TBFAILED: '#c62828',
  WEDGED: '#8b1a1a',
  POWEROFF: '#4b5563',
};

const UNKNOWN = '#9ca3af';

/** The colour of a state (null: the node never reported one). */
export function stateColour(state: string | null): string {
  if (state === null) return UNKNOWN;
  const c = FIXED[state];
  if (c) return c;
  let h = 0;
  for (let i = 0; i < state.length; i++) h = (h * 31 + state.charCodeAt(i)) >>> 0;
  return `hsl(${h % 360} 45% 45%)`;
}

/** States light enough that dark text reads better on them. */
export function isLight(state: string | null): boolean {
  return state === null || state === 'PXEWAIT' || state === 'PXELIMBO';
}
