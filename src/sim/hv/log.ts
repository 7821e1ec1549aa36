// The hypervisor service logs one line per refused request or dropped connection.
import pino from 'pino';

export interface HvLogger {
  info(msg: string): void;
  warn(msg: string): void;
}

export function defaultHvLogger(): HvLogger {
  return pino({ name: 'sim-hv', level: process.env.XENBLKD_LOG_LEVEL ?? 'info' }, pino.destination(2));
}
