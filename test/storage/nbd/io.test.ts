// The NBD client against real servers: qemu-nbd over a unix socket and TCP loopback, on raw
// files and a qcow2 image, and nbdkit's memory plugin. Random data at QD 64, read back and
// compared; flush, trim, write-zeroes, FUA; capabilities from the transmission flags.
import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { StorageError } from '../../../src/io/storage/errors';
import { openNbdImage, type NbdImage } from '../../../src/io/storage/nbd';
import { makeImage, tempDir } from '../../support/temp';
import { nbdkitMemory, qemuNbd } from './servers';

const MiB = 1024 * 1024;
const images: NbdImage[] = [];
afterEach(async () => {
  for (const img of images.splice(0)) await img.close();
});

async function open(...args: Parameters<typeof openNbdImage>): Promise<NbdImage> {
  const img = await openNbdImage(...args);
  images.push(img);
  return img;
}

function io(fn: (cb: (err: NodeJS.ErrnoException | null) => void) => void): Promise<void> {
  return new Promise((resolve, reject) => fn((err) => (err ? reject(err) : resolve())));
}

/** depth requests at a time over the list, issued in plugged batches like the dataplane's. */
async function atDepth<T>(img: NbdImage, items: T[], depth: number, op: (item: T, cb: (e: NodeJS.ErrnoException | null) => void) => void): Promise<void> {
  let next = 0;
  let active = 0;
  let failure: Error | null = null;
  await new Promise<void>((resolve, reject) => {
    const pump = (): void => {
      img.plug?.();
      while (active < depth && next < items.length) {
        const item = items[next++]!;
        active++;
        op(item, (e) => {
          active--;
          if (e && !failure) failure = e;
          if (failure) return reject(failure);
          if (next === items.length && active === 0) return resolve();
          pump();
        });
      }
      img.unplug?.();
    };
    pump();
  });
}

/** Writes n random blocks of blockSize at random distinct offsets at QD 64, reads them back. */
async function writeReadVerify(img: NbdImage, n: number, blockSize: number): Promise<void> {
  const slots = img.sizeBytes / blockSize;
  const offsets = new Set<number>();
  while (offsets.size < n) offsets.add(Math.floor(Math.random() * slots) * blockSize);
  const data = randomBytes(n * blockSize);
  const items = [...offsets].map((pos, i) => ({ pos, off: i * blockSize }));
  await atDepth(img, items, 64, (it, cb) => img.write(data, it.off, blockSize, it.pos, cb));
  const back = Buffer.alloc(n * blockSize);
  await atDepth(img, items, 64, (it, cb) => img.read(back, it.off, blockSize, it.pos, cb));
  expect(back.equals(data)).toBe(true);
}

test('unix socket: random 4 KiB and 64 KiB writes at QD 64 read back identical', async () => {
  const dir = tempDir('xenblkd-nbd-');
  const server = await qemuNbd({ dir, file: makeImage(dir, 'disk.img', 64 * MiB) });
  const img = await open(server.target, { timeoutMs: 5000 });
  expect(img.driver).toBe('nbd');
  expect(img.connected).toBe(true);
  expect(img.sizeBytes).toBe(64 * MiB);
  expect(img.readOnly).toBe(false);
  await writeReadVerify(img, 512, 4096);
  await writeReadVerify(img, 64, 64 * 1024);
});

test('TCP loopback on a random port with a named export: random data at QD 64 verifies', async () => {
  const dir = tempDir('xenblkd-nbd-');
  const server = await qemuNbd({ dir, file: makeImage(dir, 'disk.img', 32 * MiB), transport: 'tcp', exportName: 'disk0' });
  const img = await open(server.target, { timeoutMs: 5000 });
  expect(img.path).toBe(`nbd:127.0.0.1:${server.target.transport === 'tcp' ? server.target.port : 0}:exportname=disk0`);
  await writeReadVerify(img, 512, 4096);
  // Unaligned to 4 KiB, still in 512-byte sectors: the guest's granularity.
  const buf = randomBytes(1536);
  await io((cb) => img.write(buf, 0, 1536, 512 * 7, cb));
  const back = Buffer.alloc(1536);
  await io((cb) => img.read(back, 0, 1536, 512 * 7, cb));
  expect(back.equals(buf)).toBe(true);
});

test('qemu-nbd on a raw file: capabilities, flush, FUA write, trim reads back zeros, write-zeroes', async () => {
  const dir = tempDir('xenblkd-nbd-');
  const file = makeImage(dir, 'disk.img', 16 * MiB);
  const server = await qemuNbd({ dir, file });
  const img = await open(server.target, { timeoutMs: 5000 });
  const caps = img.capabilities!;
  expect(caps.volatileCache).toBe(true);
  expect(caps.fua).toBe(true);
  expect(caps.writeZeroes).toBe(true);
  expect(caps.maxTransferBytes).toBeGreaterThanOrEqual(MiB);
  expect(img.discardSupport).not.toBeNull();
  const data = randomBytes(MiB);
  await io((cb) => img.write(data, 0, MiB, 2 * MiB, cb, true));
  await io((cb) => img.flush(cb));
  // What the FUA write and the flush promised is in the file itself.
  const fd = fs.openSync(file, 'r');
  const onDisk = Buffer.alloc(MiB);
  fs.readSync(fd, onDisk, 0, MiB, 2 * MiB);
  expect(onDisk.equals(data)).toBe(true);
  await io((cb) => img.discard(2 * MiB, 256 * 1024, false, cb));
  await io((cb) => img.writeZeroes!(2 * MiB + 512 * 1024, 128 * 1024, cb));
  const back = Buffer.alloc(MiB);
  await io((cb) => img.read(back, 0, MiB, 2 * MiB, cb));
  const expected = Buffer.from(data);
  expected.fill(0, 0, 256 * 1024);
  expected.fill(0, 512 * 1024, 640 * 1024);
  expect(back.equals(expected)).toBe(true);
  // Punched: the file holds fewer blocks than before the trim.
  fs.readSync(fd, onDisk, 0, 256 * 1024, 2 * MiB);
  fs.closeSync(fd);
  expect(onDisk.subarray(0, 256 * 1024).every((b) => b === 0)).toBe(true);
  // Secure discard has no NBD command: refused, never silently weakened.
  const err = await io((cb) => img.discard(0, 4096, true, cb)).catch((e) => e);
  expect(err).toBeInstanceOf(StorageError);
  expect(err.code).toBe('EOPNOTSUPP');
});

test('a write larger than the server maximum is split and verifies; ranges outside the export are refused', async () => {
  const dir = tempDir('xenblkd-nbd-');
  const server = await qemuNbd({ dir, file: makeImage(dir, 'disk.img', 64 * MiB) });
  const img = await open(server.target, { timeoutMs: 5000 });
  const big = randomBytes(40 * MiB); // qemu-nbd takes 32 MiB at most
  await io((cb) => img.write(big, 0, big.length, 8 * MiB, cb));
  const back = Buffer.alloc(big.length);
  await io((cb) => img.read(back, 0, back.length, 8 * MiB, cb));
  expect(back.equals(big)).toBe(true);
  const err = await io((cb) => img.read(back, 0, 4096, 64 * MiB - 512, cb)).catch((e) => e);
  expect(err.code).toBe('ERANGE');
  const err2 = await io((cb) => img.read(back, back.length - 10, 4096, 0, cb)).catch((e) => e);
  expect(err2.code).toBe('EINVAL');
});

test('a read-only export: open read-write is refused in one line, read-only works and refuses writes', async () => {
  const dir = tempDir('xenblkd-nbd-');
  const file = makeImage(dir, 'disk.img', 4 * MiB);
  const server = await qemuNbd({ dir, file, readOnly: true });
  const err = await openNbdImage(server.target, { timeoutMs: 5000 }).catch((e) => e);
  expect(err).toBeInstanceOf(StorageError);
  expect(err.code).toBe('EROFS');
  expect(err.message).not.toContain('\n');
  const img = await open(server.target, { readOnly: true, timeoutMs: 5000 });
  expect(img.readOnly).toBe(true);
  expect(img.discardSupport).toBeNull();
  const buf = Buffer.alloc(4096);
  await io((cb) => img.read(buf, 0, 4096, 0, cb));
  const werr = await io((cb) => img.write(buf, 0, 4096, 0, cb)).catch((e) => e);
  expect(werr.code).toBe('EROFS');
});

test('qcow2 through qemu-nbd: random data at QD 64 verifies and qemu-img check is clean after', async () => {
  const dir = tempDir('xenblkd-nbd-');
  const file = path.join(dir, 'disk.qcow2');
  execFileSync('qemu-img', ['create', '-q', '-f', 'qcow2', file, '64M']);
  const server = await qemuNbd({ dir, file, format: 'qcow2' });
  const img = await open(server.target, { timeoutMs: 5000 });
  await writeReadVerify(img, 256, 4096);
  await writeReadVerify(img, 32, 64 * 1024);
  await io((cb) => img.discard(0, MiB, false, cb));
  await io((cb) => img.writeZeroes!(MiB, MiB, cb));
  await io((cb) => img.flush(cb));
  await img.close();
  await server.kill();
  const out = execFileSync('qemu-img', ['check', '-f', 'qcow2', file], { encoding: 'utf8' });
  expect(out).toContain('No errors were found');
});

test('nbdkit memory plugin: 4 KiB minimum block size becomes the sector size; data verifies', async () => {
  const dir = tempDir('xenblkd-nbd-');
  const server = await nbdkitMemory(dir, '16M', ['--filter=blocksize-policy'], ['blocksize-minimum=4096', 'blocksize-preferred=65536', 'blocksize-maximum=262144']);
  const img = await open(server.target, { timeoutMs: 5000 });
  expect(img.sectorSize).toBe(4096);
  expect(img.capabilities!.maxTransferBytes).toBe(MiB);
  expect(img.discardSupport!.granularity).toBe(65536);
  await writeReadVerify(img, 256, 4096);
  // 1 MiB against a 256 KiB maximum: sent in four pieces.
  const data = randomBytes(MiB);
  await io((cb) => img.write(data, 0, MiB, 4 * MiB, cb));
  const back = Buffer.alloc(MiB);
  await io((cb) => img.read(back, 0, MiB, 4 * MiB, cb));
  expect(back.equals(data)).toBe(true);
  const err = await io((cb) => img.read(back, 0, 512, 0, cb)).catch((e) => e);
  expect(err.code).toBe('EINVAL');
});
