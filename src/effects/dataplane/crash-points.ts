// Test hooks that SIGKILL the process at chosen points of the request path, so that every
// recovery path runs in every test run: XENBLKD_CRASH_AT=<point>[:<n>] kills at the n-th time
// (default 1st) the point is reached. Parsing is pure; an unset variable costs one comparison.

export const CRASH_POINTS = [
  /** A batch was consumed from the ring, nothing executed yet. */
  'after-consume',
  /** Storage I/O of a batch was issued, not completed. */
  'mid-io',
  /** The publication journal holds the batch; no response slot written. */
  'after-journal',
  /** Half of the batch's response slots are written. */
  'mid-slots',
  /** Every response slot of the batch is written; rsp_prod not advanced. */
  'after-slots',
  /** rsp_prod advanced; the frontend not notified. */
  'after-publish',
] as const;

export type CrashPoint = (typeof CRASH_POINTS)[number];

export interface CrashSpec {
  readonly point: CrashPoint;
  readonly nth: number;
}

export const CRASH_ENV = 'XENBLKD_CRASH_AT';

/** Parses the variable's value; null for unset or empty. Throws a one-line Error when malformed. */
export function parseCrashSpec(text: string | undefined): CrashSpec | null {
  if (text === undefined || text === '') return null;
  const m = /^([a-z-]+)(?::([1-9][0-9]{0,8}))?$/.exec(text);
  const point = m?.[1] as CrashPoint | undefined;
  if (!m || !point || !CRASH_POINTS.includes(point)) {
    throw new Error(`${CRASH_ENV}=${text}: expected <point>[:<n>] with point one of ${CRASH_POINTS.join(', ')}`);
  }
  return { point, nth: m[2] === undefined ? 1 : Number(m[2]) };
}

export class CrashHooks {
  private seen = 0;

  constructor(
    private readonly spec: CrashSpec | null,
    /** What dying means; the default kills this process with SIGKILL. */
    private readonly die: (point: CrashPoint) => void = killSelf,
  ) {}

  static fromEnv(env: NodeJS.ProcessEnv = process.env): CrashHooks {
    return new CrashHooks(parseCrashSpec(env[CRASH_ENV]));
  }

  get armed(): boolean {
    return this.spec !== null;
  }

  at(point: CrashPoint): void {
    const s = this.spec;
    if (s === null || s.point !== point) return;
    if (++this.seen === s.nth) this.die(point);
  }
}

function killSelf(): void {
  process.kill(process.pid, 'SIGKILL');
  // The signal is delivered before kill returns; never run past the point regardless.
  const cell = new Int32Array(new SharedArrayBuffer(4));
  for (;;) Atomics.wait(cell, 0, 0, 1000);
}
