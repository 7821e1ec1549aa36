// The lost-server rule against a real qemu-nbd: SIGKILL with requests in flight and start it
// again on the same socket or port (every request completes and verifies, the guest saw a
// stall); down past timeoutMs (EIO, then new requests fail at once, then the server is back).
import { randomBytes } from 'node:crypto';
import { StorageError } from '../../../src/io/storage/errors';
import { openNbdImage, type NbdImage, type NbdLog } from '../../../src/io/storage/nbd';
import { makeImage, tempDir } from '../../support/temp';
import { qemuNbd } from './servers';

const MiB = 1024 * 1024;
const images: NbdImage[] = [];
afterEach(async () => {
  for (const img of images.splice(0)) await img.close();
});

function recordingLog(): NbdLog & { lines: { level: string; msg: string; obj: Record<string, unknown> }[] } {
  const lines: { level: string; msg: string; obj: Record<string, unknown> }[] = [];
  const at = (level: string) => (obj: object, msg: string) => lines.push({ level, msg, obj: obj as Record<string, unknown> });
  return { lines, info: at('info'), warn: at('warn'), error: at('error') };
}

function io(fn: (cb: (err: NodeJS.ErrnoException | null) => void) => void): Promise<NodeJS.ErrnoException | null> {
  return new Promise((resolve) => fn(resolve));
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

test.each(['unix', 'tcp'] as const)('%s: SIGKILL with 128 requests in flight, restart on the same address: all complete and verify', async (transport) => {
  const dir = tempDir('xenblkd-nbd-');
  const server = await qemuNbd({ dir, file: makeImage(dir, 'disk.img', 64 * MiB), transport });
  const log = recordingLog();
  const img = await openNbdImage(server.target, { timeoutMs: 20_000, log, name: 'xvda' });
  images.push(img);
  const n = 128;
  const block = 64 * 1024;
  const data = randomBytes(n * block);
  // Writes in flight when the server dies; all must land exactly as written.
  const writes: Promise<NodeJS.ErrnoException | null>[] = [];
  for (let i = 0; i < n; i++) writes.push(io((cb) => img.write(data, i * block, block, i * block, cb)));
  await server.kill();
  expect(img.connected).toBe(false);
  expect(img.stalledSince).not.toBeNull();
  // Issued while the server is gone: queued, not failed.
  const late = randomBytes(4096);
  const lateWrite = io((cb) => img.write(late, 0, 4096, 60 * MiB, cb));
  await sleep(300);
  await server.start();
  expect(await Promise.all(writes)).toEqual(new Array(n).fill(null));
  expect(await lateWrite).toBeNull();
  expect(img.connected).toBe(true);
  expect(img.reconnects).toBe(1);
  expect(img.stalledSince).toBeNull();
  const back = Buffer.alloc(n * block);
  const reads: Promise<NodeJS.ErrnoException | null>[] = [];
  for (let i = 0; i < n; i++) reads.push(io((cb) => img.read(back, i * block, block, i * block, cb)));
  // Killed again with reads in flight: they are re-issued, never handed partial data.
  await server.kill();
  await server.start();
  expect(await Promise.all(reads)).toEqual(new Array(n).fill(null));
  expect(back.equals(data)).toBe(true);
  const lateBack = Buffer.alloc(4096);
  expect(await io((cb) => img.read(lateBack, 0, 4096, 60 * MiB, cb))).toBeNull();
  expect(lateBack.equals(late)).toBe(true);
  expect(img.reconnects).toBe(2);
  // One line when lost, one when back: never one per request.
  expect(log.lines.map((l) => `${l.level} ${l.msg}`)).toEqual([
    'warn nbd server lost: requests stall while reconnecting',
    'info nbd server back',
    'warn nbd server lost: requests stall while reconnecting',
    'info nbd server back',
  ]);
  expect(log.lines[1]!.obj.reissued).toBeGreaterThan(0);
  expect(log.lines[1]!.obj.disk).toBe('xvda');
});

test('down past timeoutMs: waiting requests fail with EIO, new ones fail at once, then the server is back', async () => {
  const dir = tempDir('xenblkd-nbd-');
  const server = await qemuNbd({ dir, file: makeImage(dir, 'disk.img', 16 * MiB) });
  const log = recordingLog();
  const img = await openNbdImage(server.target, { timeoutMs: 1500, log });
  images.push(img);
  const buf = Buffer.alloc(4096);
  const killed = server.kill();
  const waiting = await io((cb) => img.read(buf, 0, 4096, 0, cb));
  await killed;
  expect(waiting).toBeInstanceOf(StorageError);
  expect(waiting!.code).toBe('EIO');
  expect(waiting!.message).toMatch(/nbd server is lost/);
  // Stalled for the whole budget first, not failed early.
  expect(Date.now() - img.stalledSince!).toBeGreaterThanOrEqual(1400);
  const t1 = Date.now();
  const fast = await io((cb) => img.write(buf, 0, 4096, 0, cb));
  expect(fast!.code).toBe('EIO');
  expect(Date.now() - t1).toBeLessThan(200);
  expect(log.lines.filter((l) => l.level === 'error')).toHaveLength(1);
  await server.start();
  // Backoff is at most 2 s: within a few seconds new requests succeed again.
  let err: NodeJS.ErrnoException | null = new Error('not yet') as NodeJS.ErrnoException;
  for (let i = 0; i < 60 && err !== null; i++) {
    await sleep(100);
    err = await io((cb) => img.write(buf, 0, 4096, 0, cb));
  }
  expect(err).toBeNull();
  expect(img.connected).toBe(true);
});

test('the export comes back with a different size: requests fail rather than serve it', async () => {
  const dir = tempDir('xenblkd-nbd-');
  const file = makeImage(dir, 'disk.img', 16 * MiB);
  const server = await qemuNbd({ dir, file });
  const log = recordingLog();
  const img = await openNbdImage(server.target, { timeoutMs: 10_000, log });
  images.push(img);
  await server.kill();
  makeImage(dir, 'disk.img', 8 * MiB);
  const buf = Buffer.alloc(4096);
  const pending = io((cb) => img.read(buf, 0, 4096, 0, cb));
  await server.start();
  const err = await pending;
  expect(err!.code).toBe('EIO');
  expect(err!.message).toContain('8388608');
  expect(log.lines.some((l) => l.level === 'error' && l.msg.includes('different export'))).toBe(true);
  expect(img.connected).toBe(false);
  await server.kill();
  makeImage(dir, 'disk.img', 16 * MiB);
  await server.start();
  let again: NodeJS.ErrnoException | null = new Error('not yet') as NodeJS.ErrnoException;
  for (let i = 0; i < 60 && again !== null; i++) {
    await sleep(100);
    again = await io((cb) => img.read(buf, 0, 4096, 0, cb));
  }
  expect(again).toBeNull();
});
