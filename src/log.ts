/**
 * The daemon's log lines (SPEC §1): `ISO-8601 LEVEL message` by default, or
 * one JSON object a line (`--log-format json`) for journald or Loki.
 */
export type LogLevel = 'debug' | 'info' | 'warn' | 'error';
export type LogFormat = 'text' | 'json';
/** What every module logs through; the level defaults to one read off the message. */
export type Log = (message: string, level?: LogLevel) => void;

/** A message's level when its caller gave none: an error code, a notification, or plain news. */
function levelOf(msg: string): LogLevel {
  if (/^E_[A-Z_]+:/.test(msg)) return 'error';
  if (/^(NOTIFY|TBFAILED) /.test(msg)) return 'warn';
  return 'info';
}

/** A Log that writes formatted lines with write (stdout by default). */
export function makeLog(format: LogFormat, write: (line: string) => void = (l) => process.stdout.write(l)): Log {
  return (message, level) => {
    // Callers written before levels existed prefix `stated: `; the line says who it is already.
    const msg = message.startsWith('stated: ') ? message.slice(8) : message;
    const lv = level ?? levelOf(msg);
    const time = new Date().toISOString();
    write(format === 'json'
      ? `${JSON.stringify({ time, level: lv, msg })}\n`
      : `${time} ${lv.toUpperCase().padEnd(5)} ${msg}\n`);
  };
}

/** Parses `--log-format`. */
export function logFormat(v: string | undefined): LogFormat | null {
  return v === undefined || v === 'text' ? 'text' : v === 'json' ? 'json' : null;
}
