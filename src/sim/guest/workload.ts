// The verifying workload: keeps a guest block queue busy with reads, writes, flushes, barriers
// and discards, checks every read against the generation of each sector, and checks that every
// request id gets exactly one response. Reports throughput, latency, errors and stalls.
import { performance } from 'node:perf_hooks';
import { BLKIF_RSP_EOPNOTSUPP, BLKIF_RSP_OKAY } from '../../blkif/constants';
import { LatencyHistogram } from '../../effects/dataplane/latency-histogram';
import type { GuestBlockQueue, GuestOp, GuestRequest } from './block-queue';
import { checkSector, describeSector, fillSector, isZeroSector } from './pattern';
import { DiskModel, GEN_UNKNOWN as UNKNOWN, GEN_ZERO as ZERO } from './disk-model';
import { Rng } from './rng';
import { parseWorkloadSpec, WorkloadSpecError, type WorkloadSpec, type WorkloadSpecInput } from './workload-spec';

export interface WorkloadReport {
  /** false in progress reports. */
  readonly done: boolean;
  /** Requests answered. */
  readonly ops: number;
  readonly reads: number;
  readonly writes: number;
  readonly flushes: number;
  readonly barriers: number;
  readonly discards: number;
  readonly bytesRead: number;
  readonly bytesWritten: number;
  readonly elapsedMs: number;
  readonly iops: number;
  /** (bytes read + written) / elapsed, in 10^6 bytes per second. */
  readonly mbPerSec: number;
  readonly latencyUs: { readonly p50: number; readonly p90: number; readonly p99: number; readonly p999: number; readonly max: number };
  /** Responses with a status other than OKAY. */
  readonly errors: number;
  /** Sectors read back with content other than what was written last. */
  readonly mismatches: number;
  readonly checkedSectors: number;
  /** Sectors read while a write to them was in flight, or of unknown content. */
  readonly uncheckedSectors: number;
  /** Requests never answered (in flight when the workload gave up after stallTimeoutMs). */
  readonly lost: number;
  /** Responses for ids not in flight: answered twice, or never asked. */
  readonly duplicated: number;
  /** Responses echoing another operation than the request's. */
  readonly badOperations: number;
  /** Longest time with requests in flight and no response. */
  readonly longestStallMs: number;
  /** The first few mismatches and errors, one line each. */
  readonly notes: readonly string[];
}

export type ProgressHandler = (report: WorkloadReport) => void;

const MAX_SAMPLES = 1 << 22;
const MAX_NOTES = 8;

export interface RunOptions {
  onProgress?: ProgressHandler;
  /**
   * The disk's content as earlier runs left it (and as this run leaves it). Its region must be
   * the spec's region. Default: a fresh model, initial content per spec.initial.
   */
  model?: DiskModel;
  /** Stops issuing new requests; the run resolves once those in flight are answered. */
  signal?: AbortSignal;
}

/** Runs a workload on a started queue; resolves when every request issued is answered (or lost). */
export async function runWorkload(
  queue: GuestBlockQueue,
  spec: WorkloadSpecInput,
  options: RunOptions | ProgressHandler = {},
): Promise<WorkloadReport> {
  const full = parseWorkloadSpec(spec);
  const o = typeof options === 'function' ? { onProgress: options } : options;
  return new WorkloadRun(queue, full, o).run();
}

type Kind = 0 | 1 | 2 | 3 | 4;
const KIND_OPS: GuestOp[] = ['read', 'write', 'flush', 'barrier', 'discard'];

class WorkloadRun {
  private readonly rng: Rng;
  private readonly regionStart: number;
  private readonly regionSectors: number;
  private readonly align: number;
  private readonly sizes: number[];
  private readonly cumulative: Float64Array;
  private readonly model: DiskModel;
  private readonly gen: Uint32Array;
  private readonly busy: Uint16Array;
  private readonly lastDone: Float64Array;
  private readonly onProgress: ProgressHandler | undefined;
  private readonly tagSerial: Float64Array;
  private readonly tagGen: Uint32Array;
  private readonly samples: Float64Array;
  private nSamples = 0;
  private readonly hist = new LatencyHistogram();
  private cursor: number;
  private issued = 0;
  private inFlight = 0;
  private stopping = false;
  private finished = false;
  private t0 = 0;
  private deadline = Infinity;
  private lastProgress = 0;
  private longestStall = 0;
  private readonly dupes0: number;
  private readonly badOps0: number;
  private resolve!: (r: WorkloadReport) => void;
  private timer: NodeJS.Timeout | null = null;
  private lastReportAt = 0;
  private readonly c = { ops: 0, reads: 0, writes: 0, flushes: 0, barriers: 0, discards: 0, bytesRead: 0, bytesWritten: 0, errors: 0, mismatches: 0, checked: 0, unchecked: 0 };
  private readonly notes: string[] = [];

  constructor(
    private readonly queue: GuestBlockQueue,
    private readonly spec: WorkloadSpec,
    private readonly options: RunOptions,
  ) {
    this.onProgress = options.onProgress;
    const disk = queue.disk;
    this.rng = new Rng(spec.seed);
    this.align = Math.max(1, disk.sectorSize / 512);
    this.regionStart = spec.region.start;
    this.regionSectors = spec.region.sectors || disk.sectors - spec.region.start;
    if (this.regionStart % this.align !== 0) throw new WorkloadSpecError(`region start ${this.regionStart} not aligned to the ${disk.sectorSize}-byte sector`);
    if (this.regionSectors <= 0 || this.regionStart + this.regionSectors > disk.sectors) {
      throw new WorkloadSpecError(`region ${this.regionStart}+${this.regionSectors} outside a disk of ${disk.sectors} sectors`);
    }
    this.sizes = spec.sizes.map((b) => b / 512);
    for (const s of this.sizes) {
      if (s % this.align !== 0) throw new WorkloadSpecError(`size ${s * 512} is not a multiple of the ${disk.sectorSize}-byte sector`);
      if (s > queue.maxSectors(0)) throw new WorkloadSpecError(`size ${s * 512} exceeds what one request carries here (${queue.maxSectors(0) * 512} bytes)`);
      if (s > this.regionSectors) throw new WorkloadSpecError(`size ${s * 512} exceeds the region`);
    }
    const ro = disk.info.readOnly;
    const m = spec.mix;
    const weights = [m.read, ro ? 0 : m.write, disk.flushCache ? m.flush : 0, disk.barrier ? m.barrier : 0, disk.discard && !ro ? m.discard : 0];
    this.cumulative = new Float64Array(5);
    let sum = 0;
    for (let i = 0; i < 5; i++) this.cumulative[i] = sum += weights[i];
    if (sum <= 0) throw new WorkloadSpecError('no operation of the mix is offered by this disk');
    const model = options.model ?? new DiskModel(this.regionStart, this.regionSectors, spec.initial);
    if (model.start !== this.regionStart || model.sectors !== this.regionSectors) {
      throw new WorkloadSpecError(`disk model covers ${model.sectors} sectors at ${model.start}, the region ${this.regionSectors} at ${this.regionStart}`);
    }
    this.model = model;
    this.gen = model.gen;
    this.busy = model.busy;
    this.lastDone = model.lastDone;
    this.tagSerial = new Float64Array(queue.maxRequests);
    this.tagGen = new Uint32Array(queue.maxRequests);
    this.samples = new Float64Array(Math.min(MAX_SAMPLES, spec.ops > 0 ? spec.ops : MAX_SAMPLES));
    this.cursor = this.regionStart;
    this.dupes0 = queue.duplicates;
    this.badOps0 = queue.mismatchedOperations;
  }

  run(): Promise<WorkloadReport> {
    return new Promise((resolve) => {
      this.resolve = resolve;
      this.queue.onComplete = (r, status) => this.onComplete(r, status);
      this.t0 = performance.now();
      this.lastProgress = this.t0;
      this.lastReportAt = this.t0;
      if (this.spec.durationMs > 0) this.deadline = this.t0 + this.spec.durationMs;
      this.timer = setInterval(() => this.tick(), Math.min(this.spec.progressEveryMs, 100));
      this.options.signal?.addEventListener('abort', () => {
        this.stopping = true;
        if (this.inFlight === 0) this.finish();
      });
      this.issue();
      if (this.inFlight === 0) this.finish();
    });
  }

  private issue(): void {
    const q = this.queue;
    const qd = this.spec.queueDepth;
    while (!this.stopping && this.inFlight < qd && q.free > 0) {
      if ((this.spec.ops > 0 && this.issued >= this.spec.ops) || performance.now() >= this.deadline) {
        this.stopping = true;
        break;
      }
      this.issueOne();
    }
  }

  private issueOne(): void {
    const pick = this.rng.next() * this.cumulative[4];
    let kind = 0 as Kind;
    while (pick >= this.cumulative[kind]) kind++;
    let sector = 0;
    let n = 0;
    let firstSect = 0;
    if (kind === 2 || kind === 3) {
      n = 0;
    } else {
      n = this.sizes[this.sizes.length === 1 ? 0 : this.rng.below(this.sizes.length)];
      sector = this.place(n, kind !== 0);
      if (sector < 0) {
        kind = 0; // every place overlaps a write in flight: read instead
        sector = this.place(n, false);
      }
      if (this.spec.offsetInPage && n < 8 && kind !== 4) firstSect = this.rng.below((8 - n) / this.align + 1) * this.align;
    }
    const op = KIND_OPS[kind];
    const r = this.queue.prepare(op, sector, n, firstSect)!;
    const tag = r.tag;
    this.tagSerial[tag] = this.model.serial++;
    if (kind === 1) {
      const g = this.model.nextGeneration();
      this.tagGen[tag] = g;
      for (let k = 0; k < n; k++) {
        if (this.spec.verify) fillSector(r.wordsOfSector(k), r.offsetOfSector(k), sector + k, g);
        this.busy[sector + k - this.regionStart]++;
      }
    } else if (kind === 4) {
      for (let k = 0; k < n; k++) this.busy[sector + k - this.regionStart]++;
    }
    if (this.inFlight === 0) this.lastProgress = performance.now();
    this.inFlight++;
    this.issued++;
    this.queue.submit(r);
  }

  /** A start sector for n sectors; writes avoid ranges with writes in flight (-1: none found). */
  private place(n: number, exclusive: boolean): number {
    const span = this.regionSectors - n;
    for (let attempt = 0; attempt < 8; attempt++) {
      let s: number;
      if (this.spec.pattern === 'sequential') {
        if (this.cursor + n > this.regionStart + this.regionSectors) this.cursor = this.regionStart;
        s = this.cursor;
        this.cursor += n;
      } else {
        const unit = Math.min(n, 8);
        const a = Math.max(this.align, unit - (unit % this.align));
        s = this.regionStart + this.rng.below(Math.floor(span / a) + 1) * a;
      }
      if (!exclusive || this.free(s, n)) return s;
      if (this.spec.pattern === 'sequential') return -1;
    }
    return -1;
  }

  private free(s: number, n: number): boolean {
    const b = this.busy;
    for (let i = s - this.regionStart, end = i + n; i < end; i++) if (b[i] !== 0) return false;
    return true;
  }

  private onComplete(r: GuestRequest, status: number): void {
    const now = performance.now();
    const lat = now - r.submittedAt;
    if (this.nSamples < this.samples.length) this.samples[this.nSamples++] = lat;
    this.hist.record(lat * 1000);
    const stall = now - this.lastProgress;
    if (stall > this.longestStall) this.longestStall = stall;
    this.lastProgress = now;
    this.inFlight--;
    const c = this.c;
    c.ops++;
    const ok = status === BLKIF_RSP_OKAY;
    if (!ok) {
      c.errors++;
      this.note(`${r.op} of ${r.nrSectors} sectors at ${r.sector}: status ${status}`);
    }
    const base = r.sector - this.regionStart;
    switch (r.op) {
      case 'read':
        c.reads++;
        if (ok) {
          c.bytesRead += r.nrSectors * 512;
          if (this.spec.verify) this.check(r, this.tagSerial[r.tag]);
        }
        break;
      case 'write': {
        c.writes++;
        if (ok) c.bytesWritten += r.nrSectors * 512;
        const g = ok ? this.tagGen[r.tag] : UNKNOWN;
        for (let k = 0; k < r.nrSectors; k++) {
          this.gen[base + k] = g;
          this.busy[base + k]--;
          this.lastDone[base + k] = this.model.serial;
        }
        break;
      }
      case 'discard': {
        c.discards++;
        const g = ok ? (this.spec.discardZeroes ? ZERO : UNKNOWN) : status === BLKIF_RSP_EOPNOTSUPP ? -1 : UNKNOWN;
        for (let k = 0; k < r.nrSectors; k++) {
          if (g !== -1) this.gen[base + k] = g;
          this.busy[base + k]--;
          this.lastDone[base + k] = this.model.serial;
        }
        break;
      }
      case 'flush':
        c.flushes++;
        break;
      case 'barrier':
        c.barriers++;
        break;
    }
    if (!this.finished) {
      this.issue();
      if (this.stopping && this.inFlight === 0) this.finish();
    }
  }

  /** Checks each sector no write overlapped during the read's lifetime. */
  private check(r: GuestRequest, readSerial: number): void {
    const c = this.c;
    const base = r.sector - this.regionStart;
    const zeroInitial = this.model.initial === 'zero';
    for (let k = 0; k < r.nrSectors; k++) {
      const i = base + k;
      if (i < 0 || i >= this.regionSectors || this.busy[i] !== 0 || this.lastDone[i] > readSerial) {
        c.unchecked++;
        continue;
      }
      const g = this.gen[i];
      const words = r.wordsOfSector(k);
      const off = r.offsetOfSector(k);
      let good: boolean;
      if (g === UNKNOWN) {
        c.unchecked++;
        continue;
      } else if (g === ZERO || (g === 0 && zeroInitial)) good = isZeroSector(words, off);
      else if (g === 0) {
        c.unchecked++;
        continue;
      } else good = checkSector(words, off, r.sector + k, g);
      c.checked++;
      if (!good) {
        c.mismatches++;
        const want = g === ZERO || g === 0 ? 'zeros' : `generation ${g}`;
        this.note(`sector ${r.sector + k}: expected ${want}, read ${describeSector(words, off)}`);
      }
    }
  }

  private note(line: string): void {
    if (this.notes.length < MAX_NOTES) this.notes.push(line);
  }

  private tick(): void {
    const now = performance.now();
    if (!this.stopping && now >= this.deadline) {
      this.stopping = true;
      if (this.inFlight === 0) return this.finish();
    }
    if (this.inFlight > 0 && now - this.lastProgress > this.spec.stallTimeoutMs) {
      this.stopping = true;
      return this.finish();
    }
    if (this.onProgress && now - this.lastReportAt >= this.spec.progressEveryMs) {
      this.lastReportAt = now;
      this.onProgress(this.report(false, now));
    }
  }

  private finish(): void {
    if (this.finished) return;
    this.finished = true;
    if (this.timer) clearInterval(this.timer);
    this.queue.onComplete = () => {};
    const now = performance.now();
    if (this.inFlight > 0) {
      const stall = now - this.lastProgress;
      if (stall > this.longestStall) this.longestStall = stall;
    }
    this.resolve(this.report(true, now));
  }

  private report(done: boolean, now: number): WorkloadReport {
    const c = this.c;
    const elapsedMs = now - this.t0;
    const secs = elapsedMs / 1000;
    let latencyUs: WorkloadReport['latencyUs'];
    if (done) {
      const s = this.samples.slice(0, this.nSamples).sort();
      const q = (p: number) => (s.length === 0 ? 0 : s[Math.min(s.length - 1, Math.floor(p * s.length))] * 1000);
      latencyUs = { p50: q(0.5), p90: q(0.9), p99: q(0.99), p999: q(0.999), max: s.length === 0 ? 0 : s[s.length - 1] * 1000 };
    } else {
      const h = this.hist;
      latencyUs = { p50: h.quantileUs(0.5), p90: h.quantileUs(0.9), p99: h.quantileUs(0.99), p999: h.quantileUs(0.999), max: h.maxUs };
    }
    return {
      done,
      ops: c.ops,
      reads: c.reads,
      writes: c.writes,
      flushes: c.flushes,
      barriers: c.barriers,
      discards: c.discards,
      bytesRead: c.bytesRead,
      bytesWritten: c.bytesWritten,
      elapsedMs,
      iops: secs > 0 ? c.ops / secs : 0,
      mbPerSec: secs > 0 ? (c.bytesRead + c.bytesWritten) / 1e6 / secs : 0,
      latencyUs,
      errors: c.errors,
      mismatches: c.mismatches,
      checkedSectors: c.checked,
      uncheckedSectors: c.unchecked,
      lost: done ? this.inFlight : 0,
      duplicated: this.queue.duplicates - this.dupes0,
      badOperations: this.queue.mismatchedOperations - this.badOps0,
      longestStallMs: Math.max(this.longestStall, this.inFlight > 0 ? now - this.lastProgress : 0),
      notes: [...this.notes],
    };
  }
}
