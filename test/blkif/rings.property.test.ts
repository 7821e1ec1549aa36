// A front ring and a back ring over the same memory, driven by random interleavings, with
// backend crashes at every point of a publication (journal replay as ARCHITECTURE.md describes).
// Properties: every request is answered exactly once, in order; no wakeup is ever missed.
import fc from 'fast-check';
import {
  BackRing,
  BLKIF_OP_DISCARD,
  BLKIF_OP_FLUSH_DISKCACHE,
  BLKIF_OP_INDIRECT,
  BLKIF_OP_READ,
  BLKIF_OP_WRITE,
  BlkifRequestCopy,
  BlkifResponseCopy,
  FrontRing,
  unpublishedTail,
  X86_32_ABI,
  X86_64_ABI,
  type BlkifAbi,
} from '../../src/blkif';
import { headerAt, ringMemory } from './support/ring-memory';

type CrashPoint = 'idle' | 'journaled' | 'some-slots-written' | 'slots-written' | 'published';
type Action =
  | { t: 'produce'; n: number }
  | { t: 'push' }
  | { t: 'bconsume'; n: number }
  | { t: 'banswer'; n: number }
  | { t: 'bsleep' }
  | { t: 'fconsume'; n: number }
  | { t: 'fsleep' }
  | { t: 'crash'; at: CrashPoint; n: number };

const OPS = [BLKIF_OP_READ, BLKIF_OP_WRITE, BLKIF_OP_FLUSH_DISKCACHE, BLKIF_OP_DISCARD, BLKIF_OP_INDIRECT, 9];
const idHiOf = (id: number) => (id ^ 0x5a5a5a5a) >>> 0;
const statusOf = (id: number) => (id % 3) - 1;
const opOf = (id: number) => OPS[id % OPS.length];

interface Journal {
  start: number;
  ids: number[];
}

class Harness {
  readonly mem: Uint8Array;
  readonly front: FrontRing;
  back: BackRing;
  produced = 0;
  /** Next id the backend must consume. */
  cursor = 0;
  /** Responses published (ids 0..published-1). */
  published = 0;
  /** Responses the front has consumed. */
  seen = 0;
  backQueue: number[] = [];
  backAwake = true;
  frontAwake = true;
  private readonly copy = new BlkifRequestCopy();
  private readonly req = new BlkifRequestCopy();
  private readonly rsp = new BlkifResponseCopy();

  constructor(
    readonly abi: BlkifAbi,
    readonly pages: number,
    readonly start: number,
  ) {
    this.mem = ringMemory(pages);
    this.pushedProd = start;
    headerAt(this.mem, start);
    this.front = FrontRing.attach(this.mem, abi, pages, start);
    this.back = BackRing.attach(this.mem, abi, pages);
  }

  index(id: number): number {
    return (this.start + id) >>> 0;
  }

  produce(n: number): void {
    const k = Math.min(n, this.front.freeRequests());
    for (let i = 0; i < k; i++) {
      const id = this.produced++;
      const r = this.req;
      r.clear();
      r.operation = opOf(id);
      r.idLo = id;
      r.idHi = idHiOf(id);
      r.nrSegments = 1;
      r.segCount = 1;
      r.indirectOp = BLKIF_OP_READ;
      expect(this.front.writeRequest(r)).toBe(this.index(id));
    }
  }

  push(): void {
    const before = this.front.reqProdPvt;
    const newOnes = (before - this.backVisibleProd()) >>> 0;
    const notify = this.front.pushRequests();
    // A sleeping backend must be woken by the push that gives it work.
    if (!this.backAwake && newOnes > 0) expect(notify).toBe(true);
    if (notify) this.backAwake = true;
  }

  private pushedProd: number;
  private backVisibleProd(): number {
    const p = this.pushedProd;
    this.pushedProd = this.front.reqProdPvt;
    return p;
  }

  bconsume(n: number): void {
    if (!this.backAwake) return;
    for (let i = 0; i < n; i++) {
      if (!this.back.consumeRequest(this.copy)) break;
      const id = this.cursor++;
      expect(this.copy.idLo).toBe(id);
      expect(this.copy.idHi).toBe(idHiOf(id));
      expect(this.copy.operation).toBe(opOf(id));
      this.backQueue.push(id);
    }
  }

  bsleep(): void {
    if (this.backAwake && !this.back.finalCheckForRequests()) this.backAwake = false;
  }

  /** Journal, write slots, publish: stopping after `stopAfter` steps emulates a kill. */
  answer(n: number, stopAfter?: CrashPoint): Journal | null {
    const k = Math.min(n, this.backQueue.length);
    if (k === 0) return null;
    const journal: Journal = { start: this.back.rspProdPvt, ids: this.backQueue.slice(0, k) };
    expect(journal.start).toBe(this.index(this.published));
    if (stopAfter === 'journaled') return journal;
    const upto = stopAfter === 'some-slots-written' ? Math.floor(k / 2) : k;
    for (let j = 0; j < upto; j++) this.writeSlot(journal, j);
    if (stopAfter === 'some-slots-written' || stopAfter === 'slots-written') return journal;
    const notify = this.back.publishResponses(k);
    if (!this.frontAwake) expect(notify).toBe(true);
    if (notify) this.frontAwake = true;
    this.published += k;
    this.backQueue.splice(0, k);
    return journal;
  }

  private writeSlot(j: Journal, k: number): void {
    const id = j.ids[k];
    const op = opOf(id) === BLKIF_OP_INDIRECT ? BLKIF_OP_READ : opOf(id);
    this.back.writeResponse(j.start + k, id, idHiOf(id), op, statusOf(id));
  }

  crash(at: CrashPoint, n: number): void {
    const journal = at === 'idle' ? null : this.answer(n, at);
    // The process dies: ring object, queue and private indexes are gone. A new one attaches.
    this.back = BackRing.attach(this.mem, this.abi, this.pages);
    this.backQueue = [];
    if (journal !== null) {
      const tail = unpublishedTail(journal.start, journal.ids.length, this.back.rspProdPvt);
      if (at === 'published') expect(tail).toBe(0);
      else expect(tail).toBe(journal.ids.length);
      this.back.markConsumed(tail);
      for (let k = journal.ids.length - tail; k < journal.ids.length; k++) this.writeSlot(journal, k);
      this.back.publishResponses(tail);
      this.published += tail;
    }
    expect(this.back.rspProdPvt).toBe(this.index(this.published));
    this.cursor = this.published;
    // After a restart the backend scans the ring and notifies the frontend once.
    this.backAwake = true;
    this.frontAwake = true;
  }

  fconsume(n: number): void {
    if (!this.frontAwake) return;
    for (let i = 0; i < n; i++) {
      if (!this.front.consumeResponse(this.rsp)) break;
      const id = this.seen++;
      expect(this.rsp.idLo).toBe(id);
      expect(this.rsp.idHi).toBe(idHiOf(id));
      expect(this.rsp.status).toBe(statusOf(id));
      expect(this.rsp.operation).toBe(opOf(id) === BLKIF_OP_INDIRECT ? BLKIF_OP_READ : opOf(id));
    }
  }

  fsleep(): void {
    if (this.frontAwake && !this.front.finalCheckForResponses()) this.frontAwake = false;
  }

  /** Runs both ends on their notifications only, until both sleep. */
  drain(): void {
    this.push();
    for (let guard = 0; guard < 10_000; guard++) {
      this.bconsume(Infinity);
      this.answer(Infinity);
      this.bsleep();
      this.fconsume(Infinity);
      this.fsleep();
      if (!this.backAwake && !this.frontAwake && this.backQueue.length === 0) return;
    }
    throw new Error('did not settle');
  }
}

const action: fc.Arbitrary<Action> = fc.oneof(
  fc.record({ t: fc.constant('produce' as const), n: fc.integer({ min: 1, max: 40 }) }),
  fc.record({ t: fc.constant('push' as const) }),
  fc.record({ t: fc.constant('bconsume' as const), n: fc.integer({ min: 1, max: 40 }) }),
  fc.record({ t: fc.constant('banswer' as const), n: fc.integer({ min: 1, max: 40 }) }),
  fc.record({ t: fc.constant('bsleep' as const) }),
  fc.record({ t: fc.constant('fconsume' as const), n: fc.integer({ min: 1, max: 40 }) }),
  fc.record({ t: fc.constant('fsleep' as const) }),
  fc.record({
    t: fc.constant('crash' as const),
    at: fc.constantFrom<CrashPoint>('idle', 'journaled', 'some-slots-written', 'slots-written', 'published'),
    n: fc.integer({ min: 1, max: 40 }),
  }),
);

function run(h: Harness, actions: Action[]): void {
  for (const a of actions) {
    switch (a.t) {
      case 'produce':
        h.produce(a.n);
        break;
      case 'push':
        h.push();
        break;
      case 'bconsume':
        h.bconsume(a.n);
        break;
      case 'banswer':
        h.answer(a.n);
        break;
      case 'bsleep':
        h.bsleep();
        break;
      case 'fconsume':
        h.fconsume(a.n);
        break;
      case 'fsleep':
        h.fsleep();
        break;
      case 'crash':
        h.crash(a.at, a.n);
        break;
    }
  }
  h.drain();
  expect(h.back.fault).toBeNull();
  expect(h.front.fault).toBeNull();
  expect(h.seen).toBe(h.produced);
  expect(h.published).toBe(h.produced);
}

describe('front ring + back ring interleavings', () => {
  it('never lose, duplicate or reorder a request or a response, across crashes and the u32 wrap', () => {
    fc.assert(
      fc.property(
        fc.constantFrom(X86_64_ABI, X86_32_ABI),
        fc.constantFrom(1, 2, 4),
        fc.oneof(fc.constant(0), fc.constant(0xffffffd0), fc.integer({ min: 0, max: 0xffffffff })),
        fc.array(action, { maxLength: 120 }),
        (abi, pages, start, actions) => run(new Harness(abi, pages, start), actions),
      ),
      { numRuns: 400 },
    );
  });
});
