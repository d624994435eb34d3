/**
 * The boot phase machines Emulab's stated hard-codes around its tables (SPEC
 * §4.6): the PXE phase every local node passes through (mode PXEKERNEL,
 * entered by the PXEBOOT trigger on PXEBOOTING, left by the BOOTING trigger)
 * and secure boot (SECUREBOOT/SECURELOAD, entered by the SECUREBOOT trigger
 * on GPXEBOOTING). Pure decisions on a node; the engine applies them.
 */
import type { NodeState } from './types.ts';

export const PXEKERNEL = 'PXEKERNEL';
export const SECUREBOOT = 'SECUREBOOT';
export const SECURELOAD = 'SECURELOAD';
export const SECVIOLATION = 'SECVIOLATION';

/** The triggers that move a node between machines (Emulab: forced opModeTransition). */
export type PhaseTrigger = 'PXEBOOT' | 'BOOTING' | 'SECUREBOOT';

export function isPhaseTrigger(name: string): name is PhaseTrigger {
  return name === 'PXEBOOT' || name === 'BOOTING' || name === 'SECUREBOOT';
}

/** Modes a node passes through on its way to what it boots; never where a boot returns to. */
export function isPhaseMode(mode: string): boolean {
  return mode === PXEKERNEL || mode === SECUREBOOT || mode === SECURELOAD;
}

/** Modes in which a node is reloading its disk (RELOAD, RELOAD-*, WIMRELOAD, SECURELOAD). */
export function isReloadMode(mode: string): boolean {
  return mode === 'RELOAD' || mode.startsWith('RELOAD-') || mode === 'WIMRELOAD' || mode === SECURELOAD;
}

/** Secure-boot modes, where Emulab turns an invalid transition into SECVIOLATION. */
export function isSecureMode(mode: string): boolean {
  return mode === SECUREBOOT || mode === SECURELOAD;
}

/**
 * Where a phase trigger moves node `n`, which just entered its state from
 * `from`: a mode, `null` to stay, or `'lost'` when a node leaving PXEKERNEL
 * has nowhere to go (no next op mode, no remembered mode).
 */
export function phaseTarget(trigger: PhaseTrigger, n: NodeState, from: string | null): string | null | 'lost' {
  switch (trigger) {
    case 'PXEBOOT':
      return n.mode === PXEKERNEL ? null : PXEKERNEL;
    case 'BOOTING':
      // Emulab asks bootinfo what the node boots; stated knows it as the next
      // op mode, else the mode the node came from.
      if (n.mode === PXEKERNEL) return n.nextMode ?? n.phaseFrom ?? 'lost';
      // Emulab: BOOTING straight from ISUP skipped SHUTDOWN and with it the
      // mode transition; catch it up.
      if (from === 'ISUP' && n.nextMode !== null && n.nextMode !== n.mode) return n.nextMode;
      return null;
    case 'SECUREBOOT': {
      // Emulab: the next op mode, else the current one; SECURELOAD only
      // straight from SHUTDOWN (a reload about to start), else SECUREBOOT.
      const next = n.nextMode ?? n.mode;
      const target = next === SECURELOAD && from === 'SHUTDOWN' ? SECURELOAD : SECUREBOOT;
      return target === n.mode ? null : target;
    }
  }
}

/**
 * Where a closed reload sends the node (SPEC §4.4 RELOADDONE): the mode it
 * left for the reload, skipping reload and phase modes; NORMALv2 when none
 * is known.
 */
export function reloadReturn(n: NodeState): string {
  for (const m of [n.prevMode, n.phaseFrom]) {
    if (m !== null && !isReloadMode(m) && !isPhaseMode(m)) return m;
  }
  return 'NORMALv2';
}
