// Structured logs (pino): JSON for journald and log shippers, a readable line on a terminal.
import pino from 'pino';

export type Logger = pino.Logger;
export type LogFormat = 'json' | 'pretty';

export interface LogOptions {
  level?: string;
  /** Default: pretty on a TTY, JSON otherwise. */
  format?: LogFormat;
  /** Default: stderr. */
  fd?: number;
  name?: string;
}

export function createLogger(opts: LogOptions = {}): Logger {
  const fd = opts.fd ?? 2;
  const format = opts.format ?? (process.stderr.isTTY && fd === 2 ? 'pretty' : 'json');
  const base = { level: opts.level ?? process.env.XENBLKD_LOG_LEVEL ?? 'info', name: opts.name };
  if (format === 'pretty') {
    // Loaded only for a terminal: a daemon under systemd logs JSON and starts faster without it.
    // eslint-disable-next-line @typescript-eslint/no-require-imports
    const pretty = require('pino-pretty') as typeof import('pino-pretty');
    return pino(base, pretty({ destination: fd, sync: true, colorize: process.stderr.isTTY, translateTime: 'HH:MM:ss.l', ignore: 'pid,hostname' }));
  }
  // sync: a line logged just before a SIGKILL must not be lost in a buffer.
  return pino(base, pino.destination({ fd, sync: true }));
}

export const silentLogger: Logger = pino({ level: 'silent' });
