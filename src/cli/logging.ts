import { UserError } from './command';
import { createLogger, type LogFormat, type Logger } from '../log';

export function loggerFrom(format: string | undefined, level: string | undefined, name: string): Logger {
  if (format !== undefined && format !== 'json' && format !== 'pretty') throw new UserError(`--log-format takes json or pretty, got '${format}'`);
  if (level !== undefined && !['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'].includes(level)) {
    throw new UserError(`--log-level takes fatal, error, warn, info, debug, trace or silent, got '${level}'`);
  }
  return createLogger({ format: format as LogFormat | undefined, level, name });
}

/** Resolves on SIGTERM or SIGINT. */
export function untilSignal(): Promise<NodeJS.Signals> {
  return new Promise((resolve) => {
    const on = (sig: NodeJS.Signals) => {
      process.off('SIGTERM', on);
      process.off('SIGINT', on);
      resolve(sig);
    };
    process.on('SIGTERM', on);
    process.on('SIGINT', on);
  });
}
