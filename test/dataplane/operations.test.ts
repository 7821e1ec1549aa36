// Each blkif operation end to end: a frontend in the guest domain's memory, the hypervisor and
// its hv.sock, the dataplane on a dom0 connection, a raw image file; bytes checked in the image
// and in guest pages.
import * as fs from 'node:fs';
import {
  BLKIF_OP_DISCARD,
  BLKIF_OP_FLUSH_DISKCACHE,
  BLKIF_OP_INDIRECT,
  BLKIF_OP_READ,
  BLKIF_OP_WRITE,
  BLKIF_OP_WRITE_BARRIER,
  BLKIF_RSP_EOPNOTSUPP,
  BLKIF_RSP_ERROR,
  BLKIF_RSP_OKAY,
  encodeIndirectSegments,
} from '../../src/blkif';
import { openRawImage, type RawImage } from '../../src/io/storage/raw';
import type { BlkifProtocol } from '../../src/machines/block/connect-params';
import { runWorkload } from '../../src/sim/guest';
import { RawFrontend } from './support/raw-frontend';
import { RecordingImage } from './support/recording-image';
import { connect, serve, startRig, type Rig } from './support/rig';

jest.setTimeout(60_000);

const ABIS: BlkifProtocol[] = ['x86_64-abi', 'x86_32-abi'];
const imgByte = (i: number) => (i * 131 + (i >>> 9)) & 0xff;

function prefill(path: string, bytes: number): Buffer {
  const b = Buffer.alloc(bytes);
  for (let i = 0; i < bytes; i++) b[i] = imgByte(i);
  fs.writeFileSync(path, b);
  return b;
}

function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}

describe('blkif operations through the simulated hypervisor', () => {
  let rig: Rig;
  let image: RawImage | undefined;
  const stops: (() => Promise<void>)[] = [];

  beforeEach(async () => {
    rig = await startRig();
  });
  afterEach(async () => {
    for (const s of stops.splice(0).reverse()) await s();
    await image?.close();
    image = undefined;
    await rig.close();
  });

  async function setup(protocol: BlkifProtocol = 'x86_64-abi', o: Parameters<typeof serve>[3] & { order?: number; wrap?: boolean } = {}) {
    image = await openRawImage(rig.imagePath);
    const img = o.wrap ? new RecordingImage(image) : image;
    const fe = await RawFrontend.create(rig.guest, o.order ?? 0, protocol);
    const { dataplane, fatal } = await serve(rig, fe.params, img, o);
    stops.push(() => dataplane.stop());
    return { fe, dataplane, fatal, img: img as RecordingImage };
  }

  it.each(ABIS)('READ copies image sectors into the segments, partial pages included (%s)', async (abi) => {
    const content = prefill(rig.imagePath, 8 << 20);
    const { fe } = await setup(abi);
    const [p1, p2, p3] = [fe.dataPage(0xee), fe.dataPage(0xee), fe.dataPage(0xee)];
    const r = fe.request(BLKIF_OP_READ, 41, 100);
    fe.withSegment(r, p1.ref, 1, 3);
    fe.withSegment(r, p2.ref, 0, 7);
    fe.withSegment(r, p3.ref, 2, 5);
    fe.send(r);
    const [rsp] = await fe.responses(1);
    expect([rsp.idLo, rsp.operation, rsp.status]).toEqual([41, BLKIF_OP_READ, BLKIF_RSP_OKAY]);
    const at = 100 * 512;
    expect(Buffer.from(p1.view.subarray(512, 2048)).equals(content.subarray(at, at + 1536))).toBe(true);
    expect(Buffer.from(p2.view).equals(content.subarray(at + 1536, at + 1536 + 4096))).toBe(true);
    expect(Buffer.from(p3.view.subarray(1024, 3072)).equals(content.subarray(at + 5632, at + 5632 + 2048))).toBe(true);
    // Bytes of the pages outside the segments are untouched.
    expect(p1.view.subarray(0, 512).every((b) => b === 0xee)).toBe(true);
    expect(p1.view.subarray(2048).every((b) => b === 0xee)).toBe(true);
    expect(p3.view.subarray(0, 1024).every((b) => b === 0xee) && p3.view.subarray(3072).every((b) => b === 0xee)).toBe(true);
  });

  it.each(ABIS)('WRITE lands exactly at its sectors; the bytes around stay (%s)', async (abi) => {
    const before = prefill(rig.imagePath, 8 << 20);
    const { fe } = await setup(abi);
    const p1 = fe.dataPage(0x11, true);
    const p2 = fe.dataPage(0x22, true);
    const r = fe.request(BLKIF_OP_WRITE, 7, 200);
    fe.withSegment(r, p1.ref, 0, 7);
    fe.withSegment(r, p2.ref, 3, 4);
    fe.send(r);
    const [rsp] = await fe.responses(1);
    expect([rsp.idLo, rsp.operation, rsp.status]).toEqual([7, BLKIF_OP_WRITE, BLKIF_RSP_OKAY]);
    const after = fs.readFileSync(rig.imagePath);
    const at = 200 * 512;
    expect(after.subarray(at, at + 4096).every((b) => b === 0x11)).toBe(true);
    expect(after.subarray(at + 4096, at + 5120).every((b) => b === 0x22)).toBe(true);
    expect(after.subarray(0, at).equals(before.subarray(0, at))).toBe(true);
    expect(after.subarray(at + 5120).equals(before.subarray(at + 5120))).toBe(true);
  });

  it('FLUSH is answered only once fdatasync returned; with data: flush, write, flush', async () => {
    const { fe, img } = await setup('x86_64-abi', { wrap: true });
    img.hold = (c) => c.op === 'flush';
    fe.send(fe.request(BLKIF_OP_FLUSH_DISKCACHE, 1));
    while (img.heldCount === 0) await sleep(2);
    await sleep(30);
    expect(fe.received).toHaveLength(0);
    img.hold = null;
    img.release();
    const [rsp] = await fe.responses(1);
    expect([rsp.idLo, rsp.operation, rsp.status]).toEqual([1, BLKIF_OP_FLUSH_DISKCACHE, BLKIF_RSP_OKAY]);

    img.log.length = 0;
    const page = fe.dataPage(0x5a, true);
    fe.send(fe.withSegment(fe.request(BLKIF_OP_FLUSH_DISKCACHE, 2, 64), page.ref));
    const [, rsp2] = await fe.responses(2);
    expect(rsp2.status).toBe(BLKIF_RSP_OKAY);
    expect(img.log.map((c) => `${c.op} ${c.at}`)).toEqual(['flush start', 'flush done', 'write start', 'write done', 'flush start', 'flush done']);
    expect(fs.readFileSync(rig.imagePath).subarray(64 * 512, 65 * 512).every((b) => b === 0x5a)).toBe(true);
  });

  it('WRITE_BARRIER waits for what is in flight, flushes, writes, flushes; later requests wait for it', async () => {
    const { fe, img } = await setup('x86_64-abi', { wrap: true });
    img.hold = (c) => c.op === 'write' && c.pos === 0;
    const a = fe.dataPage(0xa1, true);
    const b = fe.dataPage(0xb2, true);
    const c = fe.dataPage(0);
    fe.send(
      fe.withSegment(fe.request(BLKIF_OP_WRITE, 1, 0), a.ref),
      fe.withSegment(fe.request(BLKIF_OP_WRITE_BARRIER, 2, 8), b.ref),
      fe.withSegment(fe.request(BLKIF_OP_READ, 3, 0), c.ref),
    );
    while (img.heldCount === 0) await sleep(2);
    await sleep(40);
    // Only the first write started: the barrier drains it first, the read waits behind the barrier.
    expect(img.log.map((x) => `${x.op} ${x.pos} ${x.at}`)).toEqual(['write 0 start']);
    img.hold = null;
    img.release();
    const rsps = await fe.responses(3);
    expect(rsps.map((r) => [r.idLo, r.status])).toEqual([[1, 0], [2, 0], [3, 0]]);
    expect(img.log.map((x) => `${x.op} ${x.pos} ${x.at}`)).toEqual([
      'write 0 start',
      'write 0 done',
      'flush 0 start',
      'flush 0 done',
      'write 4096 start',
      'write 4096 done',
      'flush 0 start',
      'flush 0 done',
      'read 0 start',
      'read 0 done',
    ]);
    expect(c.view.every((x) => x === 0xa1)).toBe(true);
  });

  it('DISCARD punches a hole; the secure flag is refused where the file cannot honour it', async () => {
    const { fe } = await setup();
    const pages = Array.from({ length: 8 }, () => fe.dataPage(0x77, true));
    const w = fe.request(BLKIF_OP_WRITE, 1, 2048);
    for (const p of pages.slice(0, 8)) fe.withSegment(w, p.ref);
    fe.send(w);
    await fe.responses(1);
    const blocksBefore = fs.statSync(rig.imagePath).blocks;
    const secure = fe.request(BLKIF_OP_DISCARD, 2, 2048);
    secure.flag = 1;
    secure.nrSectors = 64n;
    fe.send(secure);
    const [, rs] = await fe.responses(2);
    expect([rs.idLo, rs.operation, rs.status]).toEqual([2, BLKIF_OP_DISCARD, BLKIF_RSP_EOPNOTSUPP]);
    expect(fs.readFileSync(rig.imagePath).subarray(2048 * 512, 2112 * 512).every((b) => b === 0x77)).toBe(true);
    const d = fe.request(BLKIF_OP_DISCARD, 3, 2048);
    d.nrSectors = 64n;
    fe.send(d);
    const [, , rd] = await fe.responses(3);
    expect([rd.idLo, rd.operation, rd.status]).toEqual([3, BLKIF_OP_DISCARD, BLKIF_RSP_OKAY]);
    expect(fs.readFileSync(rig.imagePath).subarray(2048 * 512, 2112 * 512).every((b) => b === 0)).toBe(true);
    expect(fs.statSync(rig.imagePath).blocks).toBeLessThan(blocksBefore);
  });

  it('INDIRECT: 256 segments move 1 MiB each way; more segments than advertised are refused', async () => {
    const c = await connect(rig, { queue: { indirectSegments: 256 } });
    stops.push(() => c.close());
    const q = c.queue;
    expect(q.maxSectors()).toBe(2048);
    let status = -9;
    q.onComplete = (_r, s) => (status = s);
    const w = q.prepare('write', 4096, 2048)!;
    expect(w.pages).toBe(256);
    for (let k = 0; k < 2048; k++) w.pageOfSector(k).fill(k & 0xff, w.offsetOfSector(k), w.offsetOfSector(k) + 512);
    q.submit(w);
    while (status === -9) await sleep(2);
    expect(status).toBe(BLKIF_RSP_OKAY);
    const img = fs.readFileSync(rig.imagePath);
    for (let k = 0; k < 2048; k += 97) expect(img[(4096 + k) * 512 + 100]).toBe(k & 0xff);
    status = -9;
    const r = q.prepare('read', 4096, 2048)!;
    for (const v of r.pageViews) v.fill(0);
    q.submit(r);
    while (status === -9) await sleep(2);
    expect(status).toBe(BLKIF_RSP_OKAY);
    for (let k = 0; k < 2048; k += 89) expect(r.pageOfSector(k)[r.offsetOfSector(k) + 511]).toBe(k & 0xff);
    expect(c.dataplane.stats.rdSect).toBe(2048);
  });

  it('INDIRECT requests beyond the advertised maximum, or not offered, are refused', async () => {
    const { fe } = await setup('x86_64-abi', { features: { maxIndirectSegments: 32 } });
    const data = fe.dataPage(0);
    const desc = fe.dataPage(0, true);
    const grefs = new Array<number>(33).fill(data.ref);
    encodeIndirectSegments(desc.view, grefs, new Array<number>(33).fill(0), new Array<number>(33).fill(7), 33);
    const big = fe.request(BLKIF_OP_INDIRECT, 1, 0);
    big.indirectOp = BLKIF_OP_READ;
    big.nrSegments = 33;
    big.indirectGrefs[0] = desc.ref;
    const ok = fe.request(BLKIF_OP_INDIRECT, 2, 0);
    ok.indirectOp = BLKIF_OP_READ;
    ok.nrSegments = 32;
    ok.indirectGrefs[0] = desc.ref;
    fe.send(big, ok);
    const rsps = await fe.responses(2);
    expect(rsps.map((r) => [r.idLo, r.operation, r.status])).toEqual([
      [1, BLKIF_OP_READ, BLKIF_RSP_ERROR],
      [2, BLKIF_OP_READ, BLKIF_RSP_OKAY],
    ]);

    const second = await RawFrontend.create(rig.guest, 0, 'x86_32-abi');
    const { dataplane } = await serve(rig, second.params, image!, { features: { maxIndirectSegments: 0, barrier: false }, devid: 2 });
    stops.push(() => dataplane.stop());
    const ind = second.request(BLKIF_OP_INDIRECT, 9, 0);
    ind.indirectOp = BLKIF_OP_WRITE;
    ind.nrSegments = 1;
    ind.indirectGrefs[0] = desc.ref;
    const bar = second.request(BLKIF_OP_WRITE_BARRIER, 10, 0);
    const unknown = second.request(4, 11, 0);
    second.send(ind, bar, unknown);
    expect((await second.responses(3)).map((r) => [r.idLo, r.status])).toEqual([
      [9, BLKIF_RSP_EOPNOTSUPP],
      [10, BLKIF_RSP_EOPNOTSUPP],
      [11, BLKIF_RSP_EOPNOTSUPP],
    ]);
  });

  it.each([0, 1, 2, 3, 4].flatMap((order) => ABIS.map((abi) => [order, abi] as const)))(
    'a ring of order %d (%s) serves as many requests as it has slots at once',
    async (order, protocol) => {
      const c = await connect(rig, { protocol, queue: { ringPageOrder: order } });
      stops.push(() => c.close());
      const entries = c.queue.entries;
      expect(entries).toBe(32 << order);
      const r = await runWorkload(c.queue, { queueDepth: entries, ops: entries * 3, sizes: [4096], mix: { read: 1, write: 1 }, region: { start: 0, sectors: 4096 } });
      expect([r.errors, r.mismatches, r.lost, r.duplicated, r.ops]).toEqual([0, 0, 0, 0, entries * 3]);
    },
  );

  it('a read-only device refuses writes, flushes carrying data and discards; reads and bare flushes work', async () => {
    const before = prefill(rig.imagePath, 8 << 20);
    const { fe } = await setup('x86_64-abi', { readOnly: true });
    const w = fe.dataPage(0x99, true);
    const rpage = fe.dataPage(0);
    const d = fe.request(BLKIF_OP_DISCARD, 4, 0);
    d.nrSectors = 8n;
    fe.send(
      fe.withSegment(fe.request(BLKIF_OP_WRITE, 1, 0), w.ref),
      fe.withSegment(fe.request(BLKIF_OP_FLUSH_DISKCACHE, 2, 0), w.ref),
      fe.request(BLKIF_OP_FLUSH_DISKCACHE, 3),
      d,
      fe.withSegment(fe.request(BLKIF_OP_READ, 5, 0), rpage.ref),
    );
    const rsps = await fe.responses(5);
    expect(rsps.map((r) => [r.idLo, r.status])).toEqual([
      [1, BLKIF_RSP_ERROR],
      [2, BLKIF_RSP_ERROR],
      [3, BLKIF_RSP_OKAY],
      [4, BLKIF_RSP_EOPNOTSUPP],
      [5, BLKIF_RSP_OKAY],
    ]);
    expect(fs.readFileSync(rig.imagePath).equals(before)).toBe(true);
    expect(Buffer.from(rpage.view).equals(before.subarray(0, 4096))).toBe(true);
  });

  it.each([
    ['copy', false, 'x86_64-abi'],
    ['copy', true, 'x86_32-abi'],
    ['map', false, 'x86_64-abi'],
    ['map', true, 'x86_32-abi'],
    ['persistent', true, 'x86_64-abi'],
    ['persistent', true, 'x86_32-abi'],
  ] as const)('the %s data path (frontend persistent: %s, %s) passes the verified workload', async (dataPath, persistent, protocol) => {
    const c = await connect(rig, { protocol, features: { dataPath }, queue: { persistent, ringPageOrder: 1 } });
    const expected = dataPath === 'persistent' && !persistent ? 'copy' : dataPath;
    expect(c.dataplane.dataPath).toBe(expected);
    const r = await runWorkload(c.queue, {
      queueDepth: 32,
      ops: 1500,
      sizes: [512, 4096, 32768, 131072],
      offsetInPage: true,
      mix: { read: 3, write: 3, flush: 0.2, barrier: 0.2, discard: 0.2 },
    });
    expect([r.errors, r.mismatches, r.lost, r.duplicated, r.badOperations]).toEqual([0, 0, 0, 0, 0]);
    expect(r.checkedSectors).toBeGreaterThan(1000);
    if (expected === 'persistent') expect(c.dataplane.persistentGrants).toBeGreaterThan(0);
    await c.dataplane.stop();
    // Whatever was mapped is unmapped: only the guest's own refs remain, and all can be ended.
    await waitFor(() => rig.guest.pins.pinnedRefs === 0);
    await c.queue.close(2000);
    await c.image.close();
  });

  it('counts requests, sectors and errors per operation', async () => {
    const { fe, dataplane } = await setup();
    const p = fe.dataPage(0);
    const d = fe.request(BLKIF_OP_DISCARD, 5, 0);
    d.nrSectors = 16n;
    fe.send(
      fe.withSegment(fe.request(BLKIF_OP_READ, 1, 0), p.ref),
      fe.withSegment(fe.request(BLKIF_OP_READ, 2, 8), p.ref, 0, 3),
      fe.withSegment(fe.withSegment(fe.request(BLKIF_OP_WRITE, 3, 16), p.ref), p.ref),
      fe.request(BLKIF_OP_FLUSH_DISKCACHE, 4),
      d,
      fe.withSegment(fe.request(BLKIF_OP_READ, 6, 1 << 30), p.ref),
    );
    await fe.responses(6);
    const s = dataplane.stats;
    // The out-of-range read counts as an error, not as a read.
    expect(s).toMatchObject({ rdReq: 2, rdSect: 12, wrReq: 1, wrSect: 16, fReq: 1, dsReq: 1, errors: 1, inFlight: 0, ooReq: 0 });
    expect(s.latency.counts.reduce((a, b) => a + b, 0)).toBe(6);
  });

  it('stop answers the requests in flight, then unmaps the ring and unbinds the port', async () => {
    const { fe, img, dataplane } = await setup('x86_64-abi', { wrap: true });
    img.hold = (c) => c.op === 'read';
    const p = fe.dataPage(0);
    fe.send(fe.withSegment(fe.request(BLKIF_OP_READ, 1, 0), p.ref), fe.withSegment(fe.request(BLKIF_OP_READ, 2, 8), p.ref));
    while (img.heldCount < 2) await sleep(2);
    let stopped = false;
    const stopping = dataplane.stop().then(() => (stopped = true));
    await sleep(30);
    expect(stopped).toBe(false);
    expect(rig.guest.endAccess(fe.params.ringRefs[0])).toBe(false); // the ring is still mapped
    img.release();
    await stopping;
    expect(fe.received.map((r) => [r.idLo, r.status])).toEqual([[1, 0], [2, 0]]);
    await waitFor(() => rig.guest.pins.pinnedRefs === 0);
    expect(rig.guest.endAccess(fe.params.ringRefs[0])).toBe(true);
    await waitFor(() => rig.hv.evtchn.info(1, fe.port.localPort)?.state === 'unbound');
    // Requests sent after the stop stay in the ring for a later backend.
    fe.send(fe.withSegment(fe.request(BLKIF_OP_READ, 3, 0), p.ref));
    await sleep(30);
    expect(fe.received).toHaveLength(2);
  });
});

async function waitFor(cond: () => boolean, ms = 3000): Promise<void> {
  const end = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > end) throw new Error('condition not met in time');
    await sleep(5);
  }
}
