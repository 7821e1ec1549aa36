// What a verifying workload does, and its parsing (pure): a spec given as JSON (command line,
// tests) becomes a checked WorkloadSpec or one WorkloadSpecError line.

export type WorkloadPattern = 'sequential' | 'random';

export interface WorkloadMix {
  readonly read: number;
  readonly write: number;
  readonly flush: number;
  readonly barrier: number;
  readonly discard: number;
}

export interface WorkloadSpec {
  readonly pattern: WorkloadPattern;
  /** Relative weights of the operations. */
  readonly mix: WorkloadMix;
  /** Request sizes in bytes (multiples of 512), picked uniformly. */
  readonly sizes: readonly number[];
  /** Requests kept in flight. */
  readonly queueDepth: number;
  /** Stop issuing after this many requests (0: no limit; durationMs must then be set). */
  readonly ops: number;
  /** Stop issuing after this long (0: no limit). */
  readonly durationMs: number;
  /** The sectors the workload touches. sectors 0: to the end of the disk. */
  readonly region: { readonly start: number; readonly sectors: number };
  readonly seed: number;
  /** Check every read against what was written (costs guest CPU). */
  readonly verify: boolean;
  /** What unwritten sectors hold: zeros (a fresh sparse image) or unknown (not checked). */
  readonly initial: 'zero' | 'unknown';
  /** Discarded sectors read back as zeros (a file with punched holes) rather than unknown. */
  readonly discardZeroes: boolean;
  /** Requests under 4 KiB may start inside a page (first_sect > 0). */
  readonly offsetInPage: boolean;
  /** No response for this long while requests are in flight: give up, count them lost. */
  readonly stallTimeoutMs: number;
  /** onProgress period. */
  readonly progressEveryMs: number;
}

/** A spec as callers write it: any field may be left out (defaults: DEFAULT_WORKLOAD). */
export type WorkloadSpecInput = Partial<Omit<WorkloadSpec, 'mix' | 'region'>> & {
  readonly mix?: Partial<WorkloadMix>;
  readonly region?: Partial<WorkloadSpec['region']>;
};

export class WorkloadSpecError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'WorkloadSpecError';
  }
}

export const DEFAULT_WORKLOAD: WorkloadSpec = {
  pattern: 'random',
  mix: { read: 1, write: 1, flush: 0, barrier: 0, discard: 0 },
  sizes: [4096],
  queueDepth: 1,
  ops: 1000,
  durationMs: 0,
  region: { start: 0, sectors: 0 },
  seed: 1,
  verify: true,
  initial: 'zero',
  discardZeroes: true,
  offsetInPage: false,
  stallTimeoutMs: 30_000,
  progressEveryMs: 1000,
};

const KEYS = new Set(Object.keys(DEFAULT_WORKLOAD));

/** Checks a partial spec (from JSON or code) and fills in the defaults. */
export function parseWorkloadSpec(input: unknown): WorkloadSpec {
  if (typeof input !== 'object' || input === null || Array.isArray(input)) throw new WorkloadSpecError('workload spec must be an object');
  const o = input as Record<string, unknown>;
  for (const k of Object.keys(o)) if (!KEYS.has(k)) throw new WorkloadSpecError(`workload spec: unknown key ${JSON.stringify(k)}`);
  const d = DEFAULT_WORKLOAD;
  const pattern = o.pattern ?? d.pattern;
  if (pattern !== 'sequential' && pattern !== 'random') throw new WorkloadSpecError(`workload pattern must be sequential or random, got ${JSON.stringify(pattern)}`);
  const mix = parseMix(o.mix ?? d.mix);
  const sizes = o.sizes ?? d.sizes;
  if (!Array.isArray(sizes) || sizes.length === 0) throw new WorkloadSpecError('workload sizes must be a non-empty list of byte counts');
  for (const s of sizes) {
    if (!Number.isInteger(s) || (s as number) < 512 || (s as number) % 512 !== 0 || (s as number) > 16 << 20) {
      throw new WorkloadSpecError(`workload size ${JSON.stringify(s)} is not a multiple of 512 between 512 B and 16 MiB`);
    }
  }
  const queueDepth = count(o.queueDepth, d.queueDepth, 'queueDepth', 1, 4096);
  const ops = count(o.ops, d.ops, 'ops', 0, Number.MAX_SAFE_INTEGER);
  const durationMs = count(o.durationMs, d.durationMs, 'durationMs', 0, 24 * 3600_000);
  if (ops === 0 && durationMs === 0) throw new WorkloadSpecError('workload needs ops or durationMs');
  const regionIn = (o.region ?? d.region) as Record<string, unknown>;
  if (typeof regionIn !== 'object' || regionIn === null) throw new WorkloadSpecError('workload region must be {start, sectors}');
  const region = {
    start: count(regionIn.start, 0, 'region.start', 0, Number.MAX_SAFE_INTEGER),
    sectors: count(regionIn.sectors, 0, 'region.sectors', 0, Number.MAX_SAFE_INTEGER),
  };
  const initial = o.initial ?? d.initial;
  if (initial !== 'zero' && initial !== 'unknown') throw new WorkloadSpecError(`workload initial must be zero or unknown`);
  return {
    pattern,
    mix,
    sizes: sizes as number[],
    queueDepth,
    ops,
    durationMs,
    region,
    seed: count(o.seed, d.seed, 'seed', 0, 0xffffffff),
    verify: flag(o.verify, d.verify, 'verify'),
    initial,
    discardZeroes: flag(o.discardZeroes, d.discardZeroes, 'discardZeroes'),
    offsetInPage: flag(o.offsetInPage, d.offsetInPage, 'offsetInPage'),
    stallTimeoutMs: count(o.stallTimeoutMs, d.stallTimeoutMs, 'stallTimeoutMs', 1, 24 * 3600_000),
    progressEveryMs: count(o.progressEveryMs, d.progressEveryMs, 'progressEveryMs', 1, 24 * 3600_000),
  };
}

function parseMix(v: unknown): WorkloadMix {
  if (typeof v !== 'object' || v === null) throw new WorkloadSpecError('workload mix must be an object of weights');
  const o = v as Record<string, unknown>;
  const names = ['read', 'write', 'flush', 'barrier', 'discard'] as const;
  for (const k of Object.keys(o)) if (!(names as readonly string[]).includes(k)) throw new WorkloadSpecError(`workload mix: unknown operation ${JSON.stringify(k)}`);
  const w = (k: (typeof names)[number]) => {
    const x = o[k] ?? 0;
    if (typeof x !== 'number' || !Number.isFinite(x) || x < 0) throw new WorkloadSpecError(`workload mix ${k} must be a weight >= 0`);
    return x;
  };
  const mix = { read: w('read'), write: w('write'), flush: w('flush'), barrier: w('barrier'), discard: w('discard') };
  if (mix.read + mix.write + mix.flush + mix.barrier + mix.discard <= 0) throw new WorkloadSpecError('workload mix has no operation');
  return mix;
}

function count(v: unknown, dflt: number, name: string, min: number, max: number): number {
  const x = v ?? dflt;
  if (typeof x !== 'number' || !Number.isInteger(x) || x < min || x > max) {
    throw new WorkloadSpecError(`workload ${name} must be an integer in ${min}..${max}, got ${JSON.stringify(v)}`);
  }
  return x;
}

function flag(v: unknown, dflt: boolean, name: string): boolean {
  const x = v ?? dflt;
  if (typeof x !== 'boolean') throw new WorkloadSpecError(`workload ${name} must be true or false`);
  return x;
}
