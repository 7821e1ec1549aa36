// The verifying guest: its checks must catch a backend that answers twice, answers with another
// operation, never answers, or returns the wrong bytes; specs are checked with one-line errors.
import * as fs from 'node:fs';
import { abiFor, BackRing, BLKIF_RSP_OKAY, BlkifRequestCopy } from '../../src/blkif';
import type { EvtchnPort } from '../../src/io/ports';
import { checkSector, DiskModel, fillSector, GuestBlockQueue, isZeroSector, parseWorkloadSpec, runWorkload, WorkloadSpecError } from '../../src/sim/guest';
import { connect, startRig, type Rig } from '../dataplane/support/rig';

jest.setTimeout(60_000);

describe('block content pattern', () => {
  it('checks exactly the (sector, generation) it was filled for', () => {
    const words = new Uint32Array(1024);
    fillSector(words, 512, 2 ** 33 + 5, 9);
    expect(checkSector(words, 512, 2 ** 33 + 5, 9)).toBe(true);
    expect(checkSector(words, 512, 5, 9)).toBe(false);
    expect(checkSector(words, 512, 2 ** 33 + 5, 8)).toBe(false);
    expect(isZeroSector(words, 0)).toBe(true);
    words[128 + 77] ^= 1;
    expect(checkSector(words, 512, 2 ** 33 + 5, 9)).toBe(false);
  });
});

describe('workload spec', () => {
  it('fills in defaults', () => {
    const s = parseWorkloadSpec({ queueDepth: 4, mix: { write: 2 } });
    expect(s).toMatchObject({ pattern: 'random', queueDepth: 4, ops: 1000, sizes: [4096], mix: { read: 0, write: 2, flush: 0, barrier: 0, discard: 0 } });
  });

  it.each([
    [{ pattern: 'zigzag' }, 'workload pattern must be sequential or random, got "zigzag"'],
    [{ sizes: [1000] }, 'workload size 1000 is not a multiple of 512 between 512 B and 16 MiB'],
    [{ queueDepth: 0 }, 'workload queueDepth must be an integer in 1..4096, got 0'],
    [{ ops: 0, durationMs: 0 }, 'workload needs ops or durationMs'],
    [{ mix: { read: 0 } }, 'workload mix has no operation'],
    [{ mix: { trim: 1 } }, 'workload mix: unknown operation "trim"'],
    [{ speed: 3 }, 'workload spec: unknown key "speed"'],
  ])('refuses %j', (spec, message) => {
    expect(() => parseWorkloadSpec(spec)).toThrow(new WorkloadSpecError(message));
  });
});

/** A backend living in the test: reads the guest's ring itself and answers however it likes. */
class EvilBackend {
  readonly ring: BackRing;
  readonly req = new BlkifRequestCopy();
  constructor(
    readonly queue: GuestBlockQueue,
    readonly rig: Rig,
    readonly port: EvtchnPort,
  ) {
    const frame = rig.guest.grants.frame(queue.params.ringRefs[0]);
    this.ring = BackRing.attach(rig.guest.memory.subarray(frame * 4096, (frame + 1) * 4096), abiFor(queue.params.protocol), 1);
  }

  static async start(rig: Rig): Promise<EvilBackend> {
    const queue = await GuestBlockQueue.create(rig.guest, { backendDomid: 0, ringPageOrder: 0, protocol: 'x86_64-abi', persistent: false, indirectSegments: 0 });
    const port = await rig.dom0.evtchn.bindInterdomain(1, queue.params.eventChannel);
    queue.start({
      sectors: 2048, info: { cdrom: false, removable: false, readOnly: false }, sectorSize: 512, physicalSectorSize: 512,
      flushCache: true, barrier: false, discard: null, persistent: false, maxIndirectSegments: 0,
    });
    return new EvilBackend(queue, rig, port);
  }

  /** Waits for the next request and returns its ring index. */
  async next(): Promise<number> {
    for (;;) {
      if (this.ring.consumeRequest(this.req)) return this.ring.reqCons - 1;
      await new Promise((r) => setTimeout(r, 2));
    }
  }

  answer(index: number, op: number, status = BLKIF_RSP_OKAY, idLo = this.req.idLo, idHi = this.req.idHi): void {
    this.ring.writeResponse(index, idLo, idHi, op, status);
    this.ring.publishResponses(1);
    this.port.notify();
  }
}

describe('the verifying workload against a misbehaving backend', () => {
  let rig: Rig;
  beforeEach(async () => {
    rig = await startRig({ imageBytes: 1 << 20 });
  });
  afterEach(async () => {
    await rig.close();
  });

  it('counts a second response to one id as duplicated, and another operation as bad', async () => {
    const be = await EvilBackend.start(rig);
    const run = runWorkload(be.queue, { queueDepth: 2, ops: 2, mix: { flush: 1 }, stallTimeoutMs: 200 });
    const i = await be.next();
    const first = { lo: be.req.idLo, hi: be.req.idHi };
    const j = await be.next();
    be.answer(i, 3, 0, first.lo, first.hi);
    be.answer(j, 3, 0, first.lo, first.hi); // the first id again; the second request is never answered
    const r = await run;
    expect([r.ops, r.duplicated, r.lost]).toEqual([1, 1, 1]);

    const be2 = await EvilBackend.start(rig);
    const run2 = runWorkload(be2.queue, { queueDepth: 1, ops: 1, mix: { flush: 1 } });
    be2.answer(await be2.next(), 1); // a write's operation for a flush
    expect((await run2).badOperations).toBe(1);
  });

  it('gives up after the stall timeout and counts what never came back as lost', async () => {
    const be = await EvilBackend.start(rig);
    // Long enough that the one answer arrives in time on a loaded machine.
    const run = runWorkload(be.queue, { queueDepth: 2, ops: 2, mix: { flush: 1 }, stallTimeoutMs: 1000 });
    const i = await be.next();
    await be.next();
    be.answer(i, 3);
    const r = await run;
    expect([r.ops, r.lost]).toEqual([1, 1]);
    expect(r.longestStallMs).toBeGreaterThanOrEqual(1000);
  });

  it('reports wrong data as mismatches (the image changed behind the guest)', async () => {
    const c = await connect(rig);
    const model = new DiskModel(0, 2048);
    const w = await runWorkload(c.queue, { pattern: 'sequential', queueDepth: 4, ops: 256, sizes: [4096], mix: { write: 1 } }, { model });
    expect([w.errors, w.mismatches]).toEqual([0, 0]);
    const fd = fs.openSync(rig.imagePath, 'r+');
    fs.writeSync(fd, Buffer.alloc(512, 0x42), 0, 512, 100 * 512);
    fs.closeSync(fd);
    const r = await runWorkload(c.queue, { pattern: 'sequential', queueDepth: 4, ops: 256, sizes: [4096], mix: { read: 1 } }, { model });
    expect(r.mismatches).toBe(1);
    expect(r.checkedSectors).toBe(2048);
    expect(r.notes).toEqual(['sector 100: expected generation 13, read foreign data (42424242 42424242 ...)']);
    await c.close();
  });

  it('closing the queue waits for the backend to let go of persistent grants', async () => {
    const c = await connect(rig, { queue: { persistent: true }, features: { dataPath: 'persistent' } });
    const r = await runWorkload(c.queue, { queueDepth: 8, ops: 64, mix: { read: 1, write: 1 } });
    expect(r.errors).toBe(0);
    expect(c.dataplane.persistentGrants).toBeGreaterThan(0);
    await expect(c.queue.close(100)).rejects.toThrow(/grants still mapped by the backend after 100 ms/);
    await c.dataplane.stop();
    await c.image.close();
  });

  it('keeps the generation model across runs and refuses a model of another region', async () => {
    const c = await connect(rig);
    const model = new DiskModel(0, 1024);
    await expect(runWorkload(c.queue, { ops: 1, region: { start: 0, sectors: 2048 } }, { model })).rejects.toThrow(
      'disk model covers 1024 sectors at 0, the region 2048 at 0',
    );
    await expect(runWorkload(c.queue, { ops: 1, sizes: [2 << 20] })).rejects.toThrow(/exceeds what one request carries here/);
    await c.close();
  });
});
