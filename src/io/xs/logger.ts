// The logging surface the xenstore layer needs: a subset of pino's, so a pino logger fits as is.

type LogFn = (objOrMsg: object | string, msg?: string) => void;

export interface XsLogger {
  debug: LogFn;
  info: LogFn;
  warn: LogFn;
  error: LogFn;
}

const nop: LogFn = () => {};

export const silentLogger: XsLogger = { debug: nop, info: nop, warn: nop, error: nop };
