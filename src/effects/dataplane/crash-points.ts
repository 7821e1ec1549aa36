// The points of the request path where a crash test may kill the process, so that every recovery
// path runs in every test run. The daemon never arms them: only the test entries (test/support)
// build armed CrashHooks and pass them in; the shipped programs use CrashHooks.none, which costs
// one field test per point.
import { performance } from 'node:perf_hooks';

export const CRASH_POINTS = [
  /** A batch was consumed from the ring, nothing executed yet. */
  'after-consume',
  /** Storage I/O of a batch was issued, not completed. */
  'mid-io',
  /** The batch's responses are known; the journal record not written. */
  'before-journal',
  /** Half of the journal record is written (a torn record); no response slot written. */
  'torn-journal',
  /** The publication journal holds the batch; no response slot written. */
  'after-journal',
  /** Slots 0..k-1 of the batch are written, slot k not (a spec names k: slot/<k>). */
  'slot',
  /** All but the last slot of a batch of two or more are written. */
  'last-slot',
  /** Every response slot of the batch is written; rsp_prod not advanced. */
  'after-slots',
  /** rsp_prod advanced; the frontend not notified. */
  'after-publish',
] as const;

export type CrashPoint = (typeof CRASH_POINTS)[number];

export interface CrashSpec {
  readonly point: CrashPoint;
  /** The hit that kills (1: the first time the point is reached). */
  readonly nth: number;
  /** For 'slot': the slot of the batch (1..). */
  readonly slot?: number;
}

/** Parses `<point>[:<n>]` or `slot/<k>[:<n>]`; null for empty. Throws a one-line Error when malformed. */
export function parseCrashSpec(text: string | undefined): CrashSpec | null {
  if (text === undefined || text === '') return null;
  const m = /^([a-z-]+)(?:\/([1-9][0-9]{0,3}))?(?::([1-9][0-9]{0,8}))?$/.exec(text);
  const point = m?.[1] as CrashPoint | undefined;
  if (!m || !point || !CRASH_POINTS.includes(point) || (point === 'slot') !== (m[2] !== undefined)) {
    throw new Error(`${text}: expected <point>[:<n>] or slot/<k>[:<n>] with point one of ${CRASH_POINTS.join(', ')}`);
  }
  const nth = m[3] === undefined ? 1 : Number(m[3]);
  return m[2] === undefined ? { point, nth } : { point, nth, slot: Number(m[2]) };
}

export class CrashHooks {
  /** Never fires. */
  static readonly none = new CrashHooks(null);

  /** Checked before any call on the hot path. */
  readonly armed: boolean;
  private seen = 0;

  constructor(
    private readonly spec: CrashSpec | null,
    /** What dying means; the default kills this process with SIGKILL. */
    private readonly onDie: (point: CrashPoint) => void = killSelf,
    /**
     * Busy-waits this long after the journal record and again mid-slots of every batch: widens
     * the publication window so that kills from outside at random moments land in it.
     */
    private readonly stallMs = 0,
  ) {
    this.armed = spec !== null || stallMs > 0;
  }

  /** Dies if this is the spec's nth time at `point`. */
  at(point: CrashPoint): void {
    if (this.stallMs > 0 && point === 'after-journal') this.stall();
    if (this.due(point)) this.die(point);
  }

  /** Before writing slot k (0-based) of a batch of n responses. */
  atSlot(k: number, n: number): void {
    if (this.stallMs > 0 && n >= 2 && k === n >> 1) this.stall();
    const s = this.spec;
    if (s === null) return;
    if ((s.point === 'slot' && s.slot === k) || (s.point === 'last-slot' && n >= 2 && k === n - 1)) this.at(s.point);
  }

  /** Counts a hit of `point`: true when it is the one that kills (the caller then calls die). */
  due(point: CrashPoint): boolean {
    const s = this.spec;
    return s !== null && s.point === point && ++this.seen === s.nth;
  }

  die(point: CrashPoint): void {
    this.onDie(point);
  }

  private stall(): void {
    const until = performance.now() + this.stallMs;
    while (performance.now() < until);
  }
}

function killSelf(): void {
  process.kill(process.pid, 'SIGKILL');
  // The signal is delivered before kill returns; never run past the point regardless.
  const cell = new Int32Array(new SharedArrayBuffer(4));
  for (;;) Atomics.wait(cell, 0, 0, 1000);
}
