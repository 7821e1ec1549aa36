// A hostile frontend: random ring contents, out-of-range sectors, bad segments, revoked and
// read-only grants, an overflowing or backwards producer. The dataplane answers each request
// (or stops that ring only), never touches bytes outside the image, and keeps serving.
import * as fs from 'node:fs';
import {
  BLKIF_OP_DISCARD,
  BLKIF_OP_FLUSH_DISKCACHE,
  BLKIF_OP_INDIRECT,
  BLKIF_OP_READ,
  BLKIF_OP_WRITE,
  BLKIF_RSP_ERROR,
  BLKIF_RSP_OKAY,
  encodeIndirectSegments,
  X86_32_LAYOUT,
  X86_64_LAYOUT,
} from '../../src/blkif';
import { DataplaneError } from '../../src/effects/dataplane';
import { openRawImage, type RawImage } from '../../src/io/storage/raw';
import type { BlkifProtocol } from '../../src/machines/block/connect-params';
import { runWorkload } from '../../src/sim/guest';
import { Rng } from '../../src/sim/guest/rng';
import { RawFrontend } from './support/raw-frontend';
import { connect, serve, startRig, type Rig } from './support/rig';

jest.setTimeout(60_000);

const IMAGE_BYTES = 1 << 20;
const SECTORS = IMAGE_BYTES / 512;

function prefill(path: string): Buffer {
  const b = Buffer.alloc(IMAGE_BYTES);
  for (let i = 0; i < IMAGE_BYTES; i++) b[i] = (i * 7 + (i >>> 12)) & 0xff;
  fs.writeFileSync(path, b);
  return b;
}

describe('a hostile frontend', () => {
  let rig: Rig;
  let image: RawImage | undefined;
  const stops: (() => Promise<void>)[] = [];

  beforeEach(async () => {
    rig = await startRig({ imageBytes: IMAGE_BYTES });
  });
  afterEach(async () => {
    for (const s of stops.splice(0).reverse()) await s();
    await image?.close();
    image = undefined;
    await rig.close();
  });

  async function setup(protocol: BlkifProtocol = 'x86_64-abi', o: Parameters<typeof serve>[3] & { order?: number } = {}) {
    image ??= await openRawImage(rig.imagePath);
    const fe = await RawFrontend.create(rig.guest, o.order ?? 0, protocol);
    const { dataplane, fatal } = await serve(rig, fe.params, image, o);
    stops.push(() => dataplane.stop());
    return { fe, dataplane, fatal };
  }

  it.each(['x86_64-abi', 'x86_32-abi'] as const)('random ring contents are each answered once, in order, inside the image (%s)', async (protocol) => {
    prefill(rig.imagePath);
    const { fe, fatal, dataplane } = await setup(protocol, { order: 1 });
    const layout = protocol === 'x86_64-abi' ? X86_64_LAYOUT : X86_32_LAYOUT;
    const rng = new Rng(protocol.length * 1000 + 17);
    // Some real grants, so that random requests sometimes pass the grant checks too.
    const pages = Array.from({ length: 4 }, (_, i) => fe.dataPage(0x30 + i, i % 2 === 0));
    const entries = fe.ring.entries;
    const slot = (i: number) => 64 + (i & (entries - 1)) * layout.entrySize;
    const dv = new DataView(fe.view.buffer, fe.view.byteOffset, fe.view.byteLength);
    let sent = 0;
    const expectedIds: number[] = [];
    for (let round = 0; round < 40; round++) {
      const n = 1 + rng.below(entries);
      for (let k = 0; k < n; k++) {
        const off = slot(sent + k);
        for (let b = 0; b < layout.entrySize; b++) fe.view[off + b] = rng.below(256);
        // Steer part of them towards the interesting paths.
        if (rng.next() < 0.7) fe.view[off] = [0, 1, 2, 3, 5, 6, 4, 7][rng.below(8)];
        if (rng.next() < 0.5) fe.view[off + 1] = rng.below(14);
        if (rng.next() < 0.5) dv.setUint32(off + layout.rw.sector + 4, 0, true);
        if (rng.next() < 0.5) dv.setUint32(off + layout.rw.sector, rng.below(SECTORS + 64), true);
        if (rng.next() < 0.5) {
          for (let s = 0; s < 11; s++) dv.setUint32(off + layout.rw.seg + 8 * s, pages[rng.below(4)].ref, true);
        }
        expectedIds.push(dv.getUint32(off + layout.rw.id, true));
      }
      sent += n;
      fe.setReqProd(sent);
      fe.notify();
      await fe.responses(sent);
    }
    expect(fe.received.map((r) => r.idLo)).toEqual(expectedIds);
    expect(fatal).toEqual([]);
    expect(fs.statSync(rig.imagePath).size).toBe(IMAGE_BYTES);
    expect(dataplane.stats.inFlight).toBe(0);
    expect(dataplane.stats.errors).toBeGreaterThan(0);
    // Still serving normally.
    const p = fe.dataPage(0);
    fe.send(fe.withSegment(fe.request(BLKIF_OP_READ, 0xabc, 0), p.ref));
    const last = (await fe.responses(sent + 1))[sent];
    expect([last.idLo, last.status]).toEqual([0xabc, BLKIF_RSP_OKAY]);
  });

  it('requests reaching outside the image are refused and change nothing', async () => {
    const before = prefill(rig.imagePath);
    const { fe, fatal } = await setup();
    const data = fe.dataPage(0xff, true);
    const two = fe.dataPage(0xfe, true);
    const reqs = [];
    let id = 1;
    // [sector low, sector high, sectors moved by the segment]
    const starts: [number, number][] = [
      [SECTORS - 1, 0], // crosses the end
      [SECTORS, 0], // at the end
      [5, 1], // 2^32 + 5: must not wrap to sector 5
      [0, 0x200000], // >= 2^53
      [0xffffffff, 0xffffffff],
    ];
    for (const [lo, hi] of starts) {
      for (const op of [BLKIF_OP_READ, BLKIF_OP_WRITE, BLKIF_OP_FLUSH_DISKCACHE]) {
        const r = fe.request(op, id++);
        r.sectorLo = lo;
        r.sectorHi = hi;
        fe.withSegment(r, (op === BLKIF_OP_READ ? two : data).ref, 0, 1);
        reqs.push(r);
      }
      const d = fe.request(BLKIF_OP_DISCARD, id++);
      d.sectorLo = lo;
      d.sectorHi = hi;
      d.nrSectors = 2n;
      reqs.push(d);
      const desc = fe.dataPage(0, true);
      encodeIndirectSegments(desc.view, [data.ref], [0], [1], 1);
      const ind = fe.request(BLKIF_OP_INDIRECT, id++);
      ind.indirectOp = BLKIF_OP_WRITE;
      ind.nrSegments = 1;
      ind.sectorLo = lo;
      ind.sectorHi = hi;
      ind.indirectGrefs[0] = desc.ref;
      reqs.push(ind);
    }
    // A discard whose length overflows past the end from a valid start.
    const huge = fe.request(BLKIF_OP_DISCARD, id++, 8);
    huge.nrSectorsLo = 0xffffffff;
    huge.nrSectorsHi = 0x1fffff;
    reqs.push(huge);
    fe.send(...reqs.slice(0, 32));
    await fe.responses(Math.min(32, reqs.length));
    fe.send(...reqs.slice(32));
    const rsps = await fe.responses(reqs.length);
    expect(rsps.map((r) => r.status)).toEqual(reqs.map(() => BLKIF_RSP_ERROR));
    expect(fs.readFileSync(rig.imagePath).equals(before)).toBe(true);
    expect(two.view.every((b) => b === 0xfe)).toBe(true);
    expect(fatal).toEqual([]);
  });

  it('bad segment counts and sector ranges inside a page are refused', async () => {
    const before = prefill(rig.imagePath);
    const { fe } = await setup('x86_32-abi');
    const p = fe.dataPage(0x44, true);
    const none = fe.request(BLKIF_OP_WRITE, 1, 0);
    const twelve = fe.request(BLKIF_OP_WRITE, 2, 0);
    for (let i = 0; i < 11; i++) fe.withSegment(twelve, p.ref);
    twelve.nrSegments = 12;
    const inverted = fe.withSegment(fe.request(BLKIF_OP_WRITE, 3, 0), p.ref, 5, 2);
    const past = fe.withSegment(fe.request(BLKIF_OP_WRITE, 4, 0), p.ref, 0, 8);
    fe.send(none, twelve, inverted, past);
    expect((await fe.responses(4)).map((r) => [r.idLo, r.status])).toEqual([1, 2, 3, 4].map((i) => [i, BLKIF_RSP_ERROR]));
    expect(fs.readFileSync(rig.imagePath).equals(before)).toBe(true);
  });

  it.each(['copy', 'map', 'persistent'] as const)('revoked, foreign and read-only grants fail their request only (%s path)', async (dataPath) => {
    const before = prefill(rig.imagePath);
    const fe = await RawFrontend.create(rig.guest, 0, 'x86_64-abi');
    image = await openRawImage(rig.imagePath);
    const { dataplane, fatal } = await serve(rig, { ...fe.params, persistent: true }, image, { features: { dataPath } });
    stops.push(() => dataplane.stop());
    const revoked = fe.dataPage(0x55, true);
    expect(rig.guest.endAccess(revoked.ref)).toBe(true);
    const [foreignFrame] = rig.guest.allocPages(1);
    const foreign = rig.guest.grantAccess(foreignFrame, 7, false); // granted to another domain
    const ro = fe.dataPage(0x66, true);
    const good = fe.dataPage(0x77, true);
    const revokedDesc = fe.dataPage(0, true);
    encodeIndirectSegments(revokedDesc.view, [good.ref], [0], [7], 1);
    expect(rig.guest.endAccess(revokedDesc.ref)).toBe(true);
    const ind = fe.request(BLKIF_OP_INDIRECT, 4, 16);
    ind.indirectOp = BLKIF_OP_WRITE;
    ind.nrSegments = 1;
    ind.indirectGrefs[0] = revokedDesc.ref;
    fe.send(
      fe.withSegment(fe.request(BLKIF_OP_WRITE, 1, 0), revoked.ref),
      fe.withSegment(fe.request(BLKIF_OP_WRITE, 2, 8), foreign),
      fe.withSegment(fe.request(BLKIF_OP_READ, 3, 0), ro.ref), // data cannot go into a read-only grant
      ind,
      fe.withSegment(fe.withSegment(fe.request(BLKIF_OP_WRITE, 5, 24), good.ref), revoked.ref), // one bad segment
      fe.withSegment(fe.request(BLKIF_OP_WRITE, 6, 32), good.ref),
    );
    const rsps = await fe.responses(6);
    expect(rsps.map((r) => [r.idLo, r.status])).toEqual([
      [1, BLKIF_RSP_ERROR],
      [2, BLKIF_RSP_ERROR],
      [3, BLKIF_RSP_ERROR],
      [4, BLKIF_RSP_ERROR],
      [5, BLKIF_RSP_ERROR],
      [6, BLKIF_RSP_OKAY],
    ]);
    expect(ro.view.every((b) => b === 0x66)).toBe(true);
    const after = fs.readFileSync(rig.imagePath);
    expect(after.subarray(0, 32 * 512).equals(before.subarray(0, 32 * 512))).toBe(true);
    expect(after.subarray(32 * 512, 40 * 512).every((b) => b === 0x77)).toBe(true);
    expect(after.subarray(40 * 512).equals(before.subarray(40 * 512))).toBe(true);
    expect(fatal).toEqual([]);
  });

  it('an overflowing producer stops that ring only, with one clear error; another device goes on', async () => {
    const { fe, fatal, dataplane } = await setup();
    const other = await connect(rig, { queue: { ringPageOrder: 0 } });
    stops.push(() => other.close());
    const work = runWorkload(other.queue, { queueDepth: 8, ops: 400, mix: { read: 1, write: 1 }, region: { start: 0, sectors: 512 } });
    const p = fe.dataPage(0);
    fe.send(fe.withSegment(fe.request(BLKIF_OP_READ, 1, 0), p.ref));
    await fe.responses(1);
    fe.setReqProd(fe.rspProd + fe.ring.entries + 1);
    fe.notify();
    const end = Date.now() + 3000;
    while (fatal.length === 0 && Date.now() < end) await new Promise((r) => setTimeout(r, 2));
    expect(fatal).toHaveLength(1);
    expect(fatal[0]).toBeInstanceOf(DataplaneError);
    expect((fatal[0] as DataplaneError).reason).toBe('ring-fault');
    expect(fatal[0].message).toMatch(/^frontend d1: req_prod \d+ is 33 past the consumer at 1, at most 32 allowed \(ring of 32\): ring stopped$/);
    // A stopped ring consumes nothing, whatever the frontend does next.
    fe.setReqProd(fe.rspProd + 1);
    fe.notify();
    await new Promise((r) => setTimeout(r, 30));
    expect(fe.received).toHaveLength(1);
    expect(fatal).toHaveLength(1);
    const r = await work;
    expect([r.errors, r.mismatches, r.lost, r.duplicated, r.ops]).toEqual([0, 0, 0, 0, 400]);
    expect(other.fatal).toEqual([]);
    await dataplane.stop();
  });

  it('a producer index moved backwards is a fault too', async () => {
    const { fe, fatal } = await setup('x86_32-abi');
    const p = fe.dataPage(0);
    fe.send(fe.withSegment(fe.request(BLKIF_OP_READ, 1, 0), p.ref), fe.withSegment(fe.request(BLKIF_OP_READ, 2, 0), p.ref));
    await fe.responses(2);
    fe.setReqProd(1);
    fe.notify();
    const end = Date.now() + 3000;
    while (fatal.length === 0 && Date.now() < end) await new Promise((r) => setTimeout(r, 2));
    expect(fatal.map((e) => (e as DataplaneError).reason)).toEqual(['ring-fault']);
  });

  it('a ring whose grants cannot be mapped or whose port cannot be bound fails to start with one line', async () => {
    image = await openRawImage(rig.imagePath);
    const fe = await RawFrontend.create(rig.guest, 0);
    await expect(serve(rig, { ...fe.params, ringRefs: [4000] }, image)).rejects.toThrow(/^cannot map the ring of d1 \(refs 4000\): /);
    await expect(serve(rig, { ...fe.params, eventChannel: 999 }, image)).rejects.toThrow(/^cannot bind event channel d1 port 999: /);
    await expect(serve(rig, { ...fe.params, ringPageOrder: 1 }, image)).rejects.toThrow('ring of order 1 needs 2 refs, got 1');
    // Nothing stays mapped after a failed start.
    expect(rig.guest.endAccess(fe.params.ringRefs[0])).toBe(true);
  });
});
