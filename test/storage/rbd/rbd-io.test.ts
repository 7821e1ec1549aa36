// The rbd driver against a real single-node Ceph (scripts/ceph/start.sh, memstore): data path,
// discard, write-zeroes, flush, snapshots, online resize, open errors, an OSD that stops.
import { allocDma, type DmaRegion } from '../../../src/io/dma';
import { StorageError } from '../../../src/io/storage/errors';
import { openRbdImage, type RbdImage, type RbdTarget } from '../../../src/io/storage/rbd';
import { startCephCluster, stopCephCluster, type CephCluster } from '../../support/ceph-cluster';
import { blockGeneration, fillBlock, io, read, runQueued, write } from './support/io';

jest.setTimeout(60_000);

let cluster: CephCluster;
const opened: RbdImage[] = [];
const regions: DmaRegion[] = [];

beforeAll(async () => {
  // A short watch timeout: nothing here is about the lock take-over (rbd-lock.test.ts is).
  cluster = await startCephCluster({ watchTimeout: 5 });
  await cluster.rbd('create', '--size', '64M', `${cluster.pool}/img`);
}, 90_000);

afterAll(async () => {
  for (const img of opened.splice(0)) await img.close().catch(() => undefined);
  for (const r of regions.splice(0)) r.free();
  await stopCephCluster(cluster);
}, 60_000);

function target(image: string, extra: Partial<RbdTarget> = {}): RbdTarget {
  return { driver: 'rbd', pool: cluster.pool, namespace: null, image, snap: null, id: null, conf: cluster.conf, options: {}, ...extra };
}

async function open(image: string, extra: Partial<RbdTarget> = {}, opts: Parameters<typeof openRbdImage>[1] = {}): Promise<RbdImage> {
  const img = await openRbdImage(target(image, extra), opts);
  opened.push(img);
  return img;
}

async function closeImage(img: RbdImage): Promise<void> {
  opened.splice(opened.indexOf(img), 1);
  await img.close();
}

function dma(bytes: number): DmaRegion {
  const r = allocDma(bytes);
  regions.push(r);
  return r;
}

function shuffled(n: number): number[] {
  const a = Array.from({ length: n }, (_, i) => i);
  for (let i = n - 1; i > 0; i--) {
    const j = Math.floor(Math.random() * (i + 1));
    [a[i], a[j]] = [a[j]!, a[i]!];
  }
  return a;
}

async function expectOpenError(p: Promise<unknown>, code: string, pattern: RegExp): Promise<StorageError> {
  const err = await p.then(
    () => null,
    (e: unknown) => e,
  );
  expect(err).toBeInstanceOf(StorageError);
  const se = err as StorageError;
  expect(se.code).toBe(code);
  expect(se.message).toMatch(pattern);
  expect(se.message).not.toContain('\n');
  return se;
}

test('opens with its size, capabilities and a free lock', async () => {
  const img = await open('img');
  expect(img.driver).toBe('rbd');
  expect(img.sizeBytes).toBe(64 << 20);
  expect(img.readOnly).toBe(false);
  expect(img.exclusiveLock).toBe(true);
  expect(img.takeover).toBe('none');
  expect(img.objectSize).toBe(4 << 20);
  expect(img.clientAddress).toMatch(/^127\.0\.0\.1:\d+\/\d+$/);
  // the cluster runs with rbd cache = false: writes are durable on completion
  expect(img.capabilities).toEqual({ volatileCache: false, fua: true, writeZeroes: true, maxTransferBytes: 4 << 20, bufferAlignment: 1 });
  expect(img.discardSupport).toEqual({ granularity: 65536, alignment: 0, secure: false });
  await closeImage(img);
});

test('QD32 random 4 KiB writes read back verified, DMA and plain buffers', async () => {
  const img = await open('img');
  const BS = 4096;
  const QD = 32;
  const blocks = shuffled((32 << 20) / BS).slice(0, 3000);
  const wbuf = dma(QD * BS);
  const rbuf = dma(QD * BS);
  let maxInFlight = 0;
  await runQueued(blocks.length, QD, (k, slot, cb) => {
    const pos = blocks[k]! * BS;
    fillBlock(wbuf.view, slot * BS, BS, pos, 1);
    img.write(wbuf.view, slot * BS, BS, pos, cb);
    maxInFlight = Math.max(maxInFlight, (img as unknown as { inFlight: number }).inFlight);
  });
  expect(maxInFlight).toBe(QD);
  await io((cb) => img.flush(cb));
  let bad = 0;
  const order = shuffled(blocks.length);
  await runQueued(blocks.length, QD, (k, slot, cb) => {
    const pos = blocks[order[k]!]! * BS;
    img.read(rbuf.view, slot * BS, BS, pos, (err) => {
      if (!err && blockGeneration(rbuf.view, slot * BS, BS, pos) !== 1) bad++;
      cb(err);
    });
  });
  expect(bad).toBe(0);
  // Plain JS memory goes through the driver's bounce buffers, at any offset.
  const plain = new Uint8Array(3 * BS + 7);
  await runQueued(64, 8, (k, slot, cb) => {
    const pos = (40 << 20) + k * BS;
    if (slot === 0) {
      fillBlock(plain, 7, BS, pos, 2);
      img.write(plain, 7, BS, pos, cb);
    } else {
      const own = new Uint8Array(BS);
      fillBlock(own, 0, BS, pos, 2);
      img.write(own, 0, BS, pos, cb);
    }
  });
  for (let k = 0; k < 64; k++) {
    const pos = (40 << 20) + k * BS;
    await read(img, plain, 5, BS, pos);
    expect(blockGeneration(plain, 5, BS, pos)).toBe(2);
  }
  await closeImage(img);
});

test('discard at its granularity reads back zeros; write-zeroes zeroes any range', async () => {
  const img = await open('img');
  const buf = dma(1 << 20);
  const base = 48 << 20;
  for (let off = 0; off < 1 << 20; off += 4096) fillBlock(buf.view, off, 4096, base + off, 3);
  await write(img, buf.view, 0, 1 << 20, base);
  const g = img.discardSupport!.granularity;
  await io((cb) => img.discard(base + g, 4 * g, false, cb));
  await io((cb) => img.writeZeroes!(base + 8 * g + 512, 1024, cb));
  await read(img, buf.view, 0, 1 << 20, base);
  for (let off = 0; off < 1 << 20; off += 4096) {
    const gen = blockGeneration(buf.view, off, 4096, base + off);
    if (off >= g && off < 5 * g) expect(gen).toBe(-1);
    else if (off === 8 * g) {
      // only bytes 512..1535 of this block were zeroed: the rest is the old data
      const expected = new Uint8Array(4096);
      fillBlock(expected, 0, 4096, base + off, 3);
      expected.fill(0, 512, 1536);
      expect(Buffer.compare(Buffer.from(buf.view.subarray(off, off + 4096)), Buffer.from(expected))).toBe(0);
    } else expect(gen).toBe(3);
  }
  // secure discard is refused, not silently done
  await expect(io((cb) => img.discard(base, g, true, cb))).rejects.toMatchObject({ code: 'EOPNOTSUPP' });
  // out of range: refused before librbd
  await expect(io((cb) => img.discard(img.sizeBytes - 4096, 8192, false, cb))).rejects.toMatchObject({ code: 'ERANGE' });
  await closeImage(img);
});

test('flush completes after writes; a snapshot opens read-only with its own data', async () => {
  const img = await open('img');
  const buf = dma(8192);
  fillBlock(buf.view, 0, 4096, 0, 10);
  await write(img, buf.view, 0, 4096, 0);
  await io((cb) => img.flush(cb));
  await cluster.rbd('snap', 'create', `${cluster.pool}/img@s1`);
  fillBlock(buf.view, 0, 4096, 0, 11);
  await write(img, buf.view, 0, 4096, 0);
  await io((cb) => img.flush(cb));

  const snap = await open('img', { snap: 's1' });
  expect(snap.readOnly).toBe(true);
  expect(snap.takeover).toBe('none');
  expect(snap.discardSupport).toBeNull();
  await read(snap, buf.view, 4096, 4096, 0);
  expect(blockGeneration(buf.view, 4096, 4096, 0)).toBe(10);
  await expect(write(snap, buf.view, 0, 4096, 0)).rejects.toMatchObject({ code: 'EROFS' });
  await read(img, buf.view, 4096, 4096, 0);
  expect(blockGeneration(buf.view, 4096, 4096, 0)).toBe(11);
  await closeImage(snap);
  await closeImage(img);
  await expectOpenError(open('img', { snap: 'nosnap' }), 'ENOENT', /snapshot nosnap not found/);
});

test('rbd resize from the CLI fires onResize with the new size (growth and shrink)', async () => {
  await cluster.rbd('create', '--size', '32M', `${cluster.pool}/grow`);
  const img = await open('grow');
  const seen: number[] = [];
  const waitFor = async (size: number) => {
    const t0 = Date.now();
    while (!seen.includes(size) && Date.now() - t0 < 15_000) await new Promise((r) => setTimeout(r, 50));
  };
  const off = img.onResize!((s) => seen.push(s));
  await cluster.rbd('resize', '--size', '96M', `${cluster.pool}/grow`);
  await waitFor(96 << 20);
  expect(seen).toEqual([96 << 20]);
  expect(img.sizeBytes).toBe(96 << 20);
  // the new space is usable at once
  const buf = dma(4096);
  fillBlock(buf.view, 0, 4096, (96 << 20) - 4096, 4);
  await write(img, buf.view, 0, 4096, (96 << 20) - 4096);
  // a shrink is passed on as blkback does; I/O past the new end is refused
  await cluster.rbd('resize', '--allow-shrink', '--size', '48M', `${cluster.pool}/grow`);
  await waitFor(48 << 20);
  expect(seen).toEqual([96 << 20, 48 << 20]);
  await expect(read(img, buf.view, 0, 4096, 64 << 20)).rejects.toMatchObject({ code: 'ERANGE' });
  off();
  await closeImage(img);
});

test('open errors are one line: pool, image, conf, monitors, library', async () => {
  await expectOpenError(open('nosuch'), 'ENOENT', /rbd image rbd\/nosuch not found/);
  await expectOpenError(open('img', { pool: 'nopool' }), 'ENOENT', /pool nopool not found/);
  await expectOpenError(open('img', { conf: '/nonexistent/ceph.conf' }), 'ENOENT', /configuration \/nonexistent\/ceph.conf cannot be read/);
  await expectOpenError(open('img', {}, { rbdLibrary: 'librbd-absent.so.1' }), 'ELIBACC', /install the Debian package librbd1/);
  // A monitor nobody answers on: bounded by timeoutMs, never hanging.
  const t0 = Date.now();
  const se = await expectOpenError(
    open('img', { conf: null, options: { mon_host: '[v2:127.0.0.1:9]' } }, { timeoutMs: 2000 }),
    'ETIMEDOUT',
    /monitors .*127\.0\.0\.1:9.* did not answer within 2 s/,
  );
  expect(Date.now() - t0).toBeLessThan(15_000);
  expect(se.message).toContain('rbd:');
});

test('an OSD stopped mid-I/O: requests stall, then complete verified; past timeoutMs they fail with EIO', async () => {
  const img = await open('img', {}, { timeoutMs: 3000 });
  const BS = 4096;
  const N = 64;
  const buf = dma(N * BS);
  const base = 20 << 20;
  for (let k = 0; k < N; k++) fillBlock(buf.view, k * BS, BS, base + k * BS, 20);
  await write(img, buf.view, 0, BS, base); // lock taken before the OSD stops
  const osd = cluster.osdPid();
  process.kill(osd, 'SIGSTOP');
  let stalledDone = 0;
  const stalled = runQueued(N, 32, (k, _slot, cb) => img.write(buf.view, k * BS, BS, base + k * BS, (err) => {
    stalledDone++;
    cb(err);
  }));
  await new Promise((r) => setTimeout(r, 1500));
  expect(stalledDone).toBe(0);
  process.kill(osd, 'SIGCONT');
  await stalled;
  const rb = dma(N * BS);
  await read(img, rb.view, 0, N * BS, base);
  for (let k = 0; k < N; k++) expect(blockGeneration(rb.view, k * BS, BS, base + k * BS)).toBe(20);

  // Now past the timeout: EIO, and afterwards the blocks hold old or new data, never a mix.
  for (let k = 0; k < N; k++) fillBlock(buf.view, k * BS, BS, base + k * BS, 21);
  process.kill(osd, 'SIGSTOP');
  const t0 = Date.now();
  const errors: (NodeJS.ErrnoException | null)[] = [];
  try {
    await runQueued(N, 32, (k, _slot, cb) => img.write(buf.view, k * BS, BS, base + k * BS, (err) => {
      errors.push(err);
      cb(null);
    }));
  } finally {
    process.kill(osd, 'SIGCONT');
  }
  const waited = Date.now() - t0;
  expect(errors.length).toBe(N);
  expect(errors.every((e) => e?.code === 'EIO' && /timed out after 3000 ms/.test(e.message))).toBe(true);
  expect(waited).toBeGreaterThanOrEqual(2500);
  expect(waited).toBeLessThan(20_000);
  await new Promise((r) => setTimeout(r, 500));
  await read(img, rb.view, 0, N * BS, base);
  for (let k = 0; k < N; k++) expect([20, 21]).toContain(blockGeneration(rb.view, k * BS, BS, base + k * BS));
  await closeImage(img);
});
