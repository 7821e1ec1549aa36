// Structured logs (pino): JSON for journald and log shippers, a readable line on a terminal.
import pino from 'pino';
import pretty from 'pino-pretty';

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
    return pino(base, pretty({ destination: fd, sync: true, colorize: process.stderr.isTTY, translateTime: 'HH:MM:ss.l', ignore: 'pid,hostname' }));
  }
  // sync: a line logged just before a SIGKILL must not be lost in a buffer.
  return pino(base, pino.destination({ fd, sync: true }));
}

export const silentLogger: Logger = pino({ level: 'silent' });
