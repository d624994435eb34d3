/**
 * The one catalogue of stated's error codes. Every error a client can see is
 * declared here with its HTTP status; the README lists the same codes and a
 * test checks that the two agree.
 */
export const ERRORS = {
  E_BAD_REQUEST: { status: 400, message: 'malformed request' },
  E_BAD_EVENT: { status: 400, message: 'malformed event' },
  E_BAD_NAME: { status: 400, message: 'bad name: allowed are [A-Za-z0-9_./-]{1,64}' },
  E_UNKNOWN_OP: { status: 400, message: 'unknown op' },
  E_TOO_MANY: { status: 400, message: 'list too long' },
  E_UNAUTHORIZED: { status: 401, message: 'no or bad token' },
  E_FORBIDDEN: { status: 403, message: 'not allowed for this token' },
  E_UNKNOWN_NODE: { status: 404, message: 'unknown node' },
  E_UNKNOWN_WAIT: { status: 404, message: 'unknown wait' },
  E_UNKNOWN_SUB: { status: 404, message: 'unknown subscription' },
  E_NOT_FOUND: { status: 404, message: 'no such path' },
  E_CONFLICT: { status: 409, message: 'conflicts with existing state' },
  E_NO_DRIVER: { status: 409, message: 'no driver can reach the node' },
  E_HISTORY_COMPACTED: { status: 410, message: 'requested history is no longer retained' },
  E_TOO_LARGE: { status: 413, message: 'message too large' },
  E_BAD_DEFINITION: { status: 422, message: 'machine definition refused' },
  E_SLOW_CONSUMER: { status: 429, message: 'subscriber fell too far behind' },
  E_INTERNAL: { status: 500, message: 'internal error' },
  E_UNAVAILABLE: { status: 503, message: 'daemon is shutting down' },
  E_CONNECT: { status: 503, message: 'cannot reach the daemon' },
  E_USAGE: { status: 400, message: 'usage error' },
  E_UNKNOWN_NAME: { status: 400, message: 'not a mode, state or trigger the loaded definitions know' },
  E_LOCKED: { status: 423, message: 'the database is in use by another daemon' },
  E_LISTEN: { status: 500, message: 'cannot listen on the address' },
  E_DB: { status: 500, message: 'the database cannot be opened' },
  E_DISK_FULL: { status: 507, message: "the database's file system is full; nothing was applied" },
} as const;

export type ErrorCode = keyof typeof ERRORS;

/** An error with a stable code; what crosses the wire is `{code, message}`. */
export class StatedError extends Error {
  readonly code: ErrorCode;
  readonly detail: unknown;
  constructor(code: ErrorCode, message?: string, detail?: unknown) {
    super(message ?? ERRORS[code].message);
    this.code = code;
    this.detail = detail;
  }
  get status(): number {
    return ERRORS[this.code].status;
  }
  toJSON(): { code: ErrorCode; message: string; detail?: unknown } {
    return this.detail === undefined
      ? { code: this.code, message: this.message }
      : { code: this.code, message: this.message, detail: this.detail };
  }
}

/** Wraps anything thrown into a StatedError, keeping codes that are already ours. */
export function asStatedError(err: unknown): StatedError {
  if (err instanceof StatedError) return err;
  const msg = err instanceof Error ? err.message : String(err);
  // SQLITE_FULL, on the core's connection or reported by the writer thread as
  // text: the operator's to fix, and the daemon writes again once space frees.
  if ((err as { code?: unknown } | null)?.code === 'SQLITE_FULL' || msg.includes('database or disk is full')) {
    return new StatedError('E_DISK_FULL', `the database's file system is full; nothing was applied (${msg})`);
  }
  return new StatedError('E_INTERNAL', msg);
}
