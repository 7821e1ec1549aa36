// The production publication (Publisher: journal record, response slots, rsp_prod), the
// production journal file and the production republish, against a front ring over the same
// memory, driven by random interleavings with kills at every step of a publication: before the
// record, in the middle of its write (torn), after it, before each response slot, after the
// slots, after rsp_prod, and between publications. A kill throws out of the Publisher at that
// instant; the "next process" attaches a new BackRing to the same memory, opens the journal file
// again and runs republish. Properties: every request is answered exactly once, in order, with its
// own status; the restarted backend re-reads exactly the unanswered requests; a republish happens
// exactly when the kill fell between the record and rsp_prod.
import fc from 'fast-check';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import {
  BackRing,
  BLKIF_OP_DISCARD,
  BLKIF_OP_FLUSH_DISKCACHE,
  BLKIF_OP_READ,
  BLKIF_OP_WRITE,
  BlkifRequestCopy,
  BlkifResponseCopy,
  FrontRing,
  X86_32_ABI,
  X86_64_ABI,
  type BlkifAbi,
} from '../../src/blkif';
import { CrashHooks, type CrashPoint } from '../../src/effects/dataplane/crash-points';
import { PublicationJournal } from '../../src/effects/dataplane/journal';
import { Publisher } from '../../src/effects/dataplane/publisher';
import { republish } from '../../src/effects/dataplane/republish';
import { headerAt, ringMemory } from '../blkif/support/ring-memory';

type KillAt = { point: Exclude<CrashPoint, 'after-consume' | 'mid-io'>; slot?: number } | { point: 'between' };
type Action =
  | { t: 'produce'; n: number }
  | { t: 'push' }
  | { t: 'bconsume'; n: number }
  | { t: 'banswer'; n: number }
  | { t: 'bsleep' }
  | { t: 'fconsume'; n: number }
  | { t: 'fsleep' }
  | { t: 'kill'; at: KillAt; n: number };

/** Kills that leave the batch journaled and not (fully) published: the next process re-publishes it. */
const REPUBLISHING = new Set(['after-journal', 'slot', 'last-slot', 'after-slots']);
const OPS = [BLKIF_OP_READ, BLKIF_OP_WRITE, BLKIF_OP_FLUSH_DISKCACHE, BLKIF_OP_DISCARD, 9];
const idHiOf = (id: number) => (id ^ 0x5a5a5a5a) >>> 0;
const statusOf = (id: number) => (id % 3) - 1;
const opOf = (id: number) => OPS[id % OPS.length];

class Killed extends Error {}

const stats = { kills: 0, republished: 0, byPoint: new Map<string, number>() };

class Harness {
  readonly mem: Uint8Array;
  readonly front: FrontRing;
  back: BackRing;
  journal: PublicationJournal;
  produced = 0;
  cursor = 0;
  published = 0;
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
    readonly file: string,
  ) {
    this.mem = ringMemory(pages);
    headerAt(this.mem, start);
    this.front = FrontRing.attach(this.mem, abi, pages, start);
    this.back = BackRing.attach(this.mem, abi, pages);
    this.journal = PublicationJournal.open(file, this.back.entries, 7).journal;
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
      expect(this.front.writeRequest(r)).toBe(this.index(id));
    }
  }

  push(): void {
    if (this.front.pushRequests()) this.backAwake = true;
  }

  bconsume(n: number): void {
    if (!this.backAwake) return;
    for (let i = 0; i < n; i++) {
      if (!this.back.consumeRequest(this.copy)) break;
      // Exactly the next unanswered request: never a response slot read back as a request.
      const id = this.cursor++;
      expect([this.copy.idLo, this.copy.idHi, this.copy.operation]).toEqual([id, idHiOf(id), opOf(id)]);
      this.backQueue.push(id);
    }
  }

  bsleep(): void {
    if (this.backAwake && !this.back.finalCheckForRequests()) this.backAwake = false;
  }

  /** Publishes the first n consumed requests' responses through the production Publisher. */
  answer(n: number, crash: CrashHooks = CrashHooks.none): number {
    const k = Math.min(n, this.backQueue.length);
    if (k === 0) return 0;
    const pub = new Publisher(this.back, this.journal, crash, () => {
      throw new Error(`journal write failed: ${this.journal.lastError?.message}`);
    });
    for (let j = 0; j < k; j++) {
      const id = this.backQueue[j];
      pub.set(j, id, idHiOf(id), opOf(id), statusOf(id));
    }
    const start = this.back.rspProdPvt;
    expect(start).toBe(this.index(this.published));
    if (pub.publish(start, k)) this.frontAwake = true;
    this.published += k;
    this.backQueue.splice(0, k);
    return k;
  }

  /** Kills the backend at `at` of a publication of up to n responses, then restarts it. */
  kill(at: KillAt, n: number): void {
    let died: string | null = null;
    let batch = 0;
    if (at.point !== 'between') {
      // A batch to publish: what the backend holds, else new requests.
      if (this.backQueue.length === 0) {
        this.produce(n);
        this.push();
        this.bconsume(n);
      }
      batch = Math.min(n, this.backQueue.length);
      const crash = new CrashHooks({ point: at.point, nth: 1, slot: at.slot }, (p) => {
        throw new Killed(p);
      });
      try {
        this.answer(n, crash);
      } catch (e) {
        if (!(e instanceof Killed)) throw e;
        died = e.message;
      }
    }
    // The process is gone: its ring object, queue, indexes and open journal with it.
    this.journal.close(false);
    this.back = BackRing.attach(this.mem, this.abi, this.pages);
    this.journal = PublicationJournal.open(this.file, this.back.entries, 7).journal;
    const again = republish(this.back, this.journal);
    stats.kills++;
    const label = at.point === 'slot' ? `slot/${at.slot}` : at.point;
    stats.byPoint.set(label, (stats.byPoint.get(label) ?? 0) + (died === null ? 0 : 1));
    if (died !== null && REPUBLISHING.has(died)) {
      expect([died, again]).toEqual([died, batch]);
      stats.republished++;
    } else if (died === 'torn-journal') {
      // A torn record passes its check only where the bytes the write did not reach already held
      // what it meant to write (the same batch, torn once before): it is then the batch's true
      // answer, and the front end's checks below see it answered once.
      expect([died, [0, batch].includes(again)]).toEqual([died, true]);
    } else expect([died, again]).toEqual([died, 0]);
    if (died === 'after-publish') this.published += batch;
    else this.published += again;
    expect(this.back.rspProdPvt).toBe(this.index(this.published));
    this.backQueue = [];
    this.cursor = this.published;
    this.backAwake = true;
    this.frontAwake = true;
  }

  fconsume(n: number): void {
    if (!this.frontAwake) return;
    for (let i = 0; i < n; i++) {
      if (!this.front.consumeResponse(this.rsp)) break;
      const id = this.seen++;
      expect([this.rsp.idLo, this.rsp.idHi, this.rsp.operation, this.rsp.status]).toEqual([id, idHiOf(id), opOf(id), statusOf(id)]);
    }
  }

  fsleep(): void {
    if (this.frontAwake && !this.front.finalCheckForResponses()) this.frontAwake = false;
  }

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

const killAt: fc.Arbitrary<KillAt> = fc.oneof(
  fc.constantFrom<KillAt>(
    { point: 'between' },
    { point: 'before-journal' },
    { point: 'torn-journal' },
    { point: 'after-journal' },
    { point: 'last-slot' },
    { point: 'after-slots' },
    { point: 'after-publish' },
  ),
  fc.integer({ min: 1, max: 12 }).map((slot): KillAt => ({ point: 'slot', slot })),
);

const action: fc.Arbitrary<Action> = fc.oneof(
  fc.record({ t: fc.constant('produce' as const), n: fc.integer({ min: 1, max: 40 }) }),
  fc.record({ t: fc.constant('push' as const) }),
  fc.record({ t: fc.constant('bconsume' as const), n: fc.integer({ min: 1, max: 40 }) }),
  fc.record({ t: fc.constant('banswer' as const), n: fc.integer({ min: 1, max: 40 }) }),
  fc.record({ t: fc.constant('bsleep' as const) }),
  fc.record({ t: fc.constant('fconsume' as const), n: fc.integer({ min: 1, max: 40 }) }),
  fc.record({ t: fc.constant('fsleep' as const) }),
  fc.record({ t: fc.constant('kill' as const), at: killAt, n: fc.integer({ min: 1, max: 40 }) }),
);

function run(h: Harness, actions: Action[]): void {
  for (const a of actions) {
    if (a.t === 'produce') h.produce(a.n);
    else if (a.t === 'push') h.push();
    else if (a.t === 'bconsume') h.bconsume(a.n);
    else if (a.t === 'banswer') h.answer(a.n);
    else if (a.t === 'bsleep') h.bsleep();
    else if (a.t === 'fconsume') h.fconsume(a.n);
    else if (a.t === 'fsleep') h.fsleep();
    else h.kill(a.at, a.n);
  }
  h.drain();
  expect(h.back.fault).toBeNull();
  expect(h.front.fault).toBeNull();
  expect(h.seen).toBe(h.produced);
  expect(h.published).toBe(h.produced);
  h.journal.close(true);
}

describe('publication through the production journal and republish, killed at every step', () => {
  let dir: string;
  beforeAll(() => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'publication-'));
  });
  afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));

  it('never loses, duplicates or reorders a response, across kills and the u32 wrap', () => {
    let n = 0;
    fc.assert(
      fc.property(
        fc.constantFrom(X86_64_ABI, X86_32_ABI),
        fc.constantFrom(1, 2, 4),
        fc.oneof(fc.constant(0), fc.constant(0xffffffd0), fc.integer({ min: 0, max: 0xffffffff })),
        fc.array(action, { maxLength: 120 }),
        (abi, pages, start, actions) => run(new Harness(abi, pages, start, path.join(dir, `j${n++}`)), actions),
      ),
      { numRuns: 400 },
    );
    const landed = [...stats.byPoint].sort().map(([p, k]) => `${p}: ${k}`).join(', ');
    process.stdout.write(`publication property: ${stats.kills} kills, ${stats.republished} re-published; kills that landed, by point: ${landed}\n`);
    // Every step of a publication was hit, and republishes happened.
    for (const p of ['before-journal', 'torn-journal', 'after-journal', 'last-slot', 'after-slots', 'after-publish']) expect(stats.byPoint.get(p) ?? 0).toBeGreaterThan(0);
    expect([...stats.byPoint.keys()].filter((p) => p.startsWith('slot/') && stats.byPoint.get(p)! > 0).length).toBeGreaterThan(5);
    expect(stats.republished).toBeGreaterThan(0);
  });
});
