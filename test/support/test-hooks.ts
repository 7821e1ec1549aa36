// The test hooks, read from the environment by the test entries only (hooked-cli.ts,
// hooked-dataplane.ts, bundled into dist/test/ by scripts/bundle.js): the shipped programs never
// read these variables, so a stray one cannot kill a production daemon.
import { CrashHooks, parseCrashSpec } from '../../src/effects/dataplane/crash-points';
import type { Logger } from '../../src/log';

/** <point>[:<n>] or slot/<k>[:<n>]: SIGKILL at the nth time a dataplane reaches the point. */
export const CRASH_ENV = 'XENBLKD_CRASH_AT';
/** Milliseconds to busy-wait inside each publication (see CrashHooks), so random kills land there. */
export const STALL_ENV = 'XENBLKD_STALL_PUBLICATION_MS';
/** N: log every persisted event with its number and SIGKILL right after the Nth (0: only count). */
export const KILL_AFTER_EVENTS_ENV = 'XENBLKD_KILL_AFTER_EVENTS';

/** Throws a one-line Error naming the variable when its value is malformed. */
export function crashHooksFromEnv(env: NodeJS.ProcessEnv = process.env): CrashHooks | undefined {
  let spec;
  try {
    spec = parseCrashSpec(env[CRASH_ENV]);
  } catch (e) {
    throw new Error(`${CRASH_ENV}=${(e as Error).message}`);
  }
  const stall = env[STALL_ENV];
  if (stall !== undefined && !/^[0-9]+(\.[0-9]+)?$/.test(stall)) throw new Error(`${STALL_ENV}=${stall}: expected milliseconds`);
  const stallMs = stall === undefined ? 0 : Number(stall);
  return spec === null && stallMs === 0 ? undefined : new CrashHooks(spec, undefined, stallMs);
}

export function killAfterEventsFromEnv(env: NodeJS.ProcessEnv = process.env): ((logger: Logger) => () => void) | undefined {
  const text = env[KILL_AFTER_EVENTS_ENV];
  if (text === undefined) return undefined;
  if (!/^(0|[1-9][0-9]*)$/.test(text)) throw new Error(`${KILL_AFTER_EVENTS_ENV}=${text}: expected a number of events`);
  const n = Number(text);
  return (logger) => {
    let count = 0;
    return () => {
      count += 1;
      logger.info({ persisted: count }, 'event persisted');
      if (count === n) process.kill(process.pid, 'SIGKILL');
    };
  };
}
