// The raw image engine against real files: a disk-backed file system (ext4 under /var/tmp here,
// where O_DIRECT works) and tmpfs (/dev/shm, which refuses O_DIRECT).
import { execFileSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { allocDma, dmaAddressOf, type DmaRegion } from '../../src/io/dma';
import { MAP_ANONYMOUS, MAP_PRIVATE, mmap, munmap, PROT_READ, PROT_WRITE } from '../../src/io/libc';
import { AioContext } from '../../src/io/storage/aio';
import { StorageError } from '../../src/io/storage/errors';
import { openRawImage, type RawImage } from '../../src/io/storage/raw';

const DISK_DIR = '/var/tmp';
const TMPFS_DIR = '/dev/shm';

function fsType(dir: string): string {
  return execFileSync('stat', ['-f', '-c', '%T', dir], { encoding: 'utf8' }).trim();
}

function pattern(len: number, seed: number): Buffer {
  const b = Buffer.alloc(len);
  for (let i = 0; i < len; i++) b[i] = (i * 31 + seed * 7 + (i >> 9)) & 0xff;
  return b;
}

function io(fn: (cb: (err: NodeJS.ErrnoException | null) => void) => void): Promise<NodeJS.ErrnoException | null> {
  return new Promise((resolve) => fn(resolve));
}

const dirs: string[] = [];
const images: RawImage[] = [];
const regions: DmaRegion[] = [];

function tmpDir(base: string): string {
  const d = fs.mkdtempSync(path.join(base, 'xenblkd-raw-'));
  dirs.push(d);
  return d;
}

function file(base: string, name: string, content: Buffer | number): string {
  const p = path.join(tmpDir(base), name);
  if (typeof content === 'number') {
    fs.writeFileSync(p, '');
    fs.truncateSync(p, content);
  } else {
    fs.writeFileSync(p, content);
  }
  return p;
}

function syncFile(p: string): void {
  const fd = fs.openSync(p, 'r+');
  fs.fsyncSync(fd);
  fs.closeSync(fd);
}

async function open(p: string, opts?: Parameters<typeof openRawImage>[1]): Promise<RawImage> {
  const img = await openRawImage(p, opts);
  images.push(img);
  return img;
}

function dma(bytes: number): DmaRegion {
  const r = allocDma(bytes);
  regions.push(r);
  return r;
}

afterEach(async () => {
  await Promise.all(images.splice(0).map((i) => i.close()));
  regions.splice(0).forEach((r) => r.free());
  dirs.splice(0).forEach((d) => fs.rmSync(d, { recursive: true, force: true }));
});

describe('the file systems this test relies on', () => {
  it('/var/tmp is disk-backed and /dev/shm is tmpfs', () => {
    expect(fsType(DISK_DIR)).not.toBe('tmpfs');
    expect(fsType(TMPFS_DIR)).toBe('tmpfs');
  });
});

describe('openRawImage on a disk-backed file', () => {
  it('reports size, sectors, O_DIRECT and discard', async () => {
    const p = file(DISK_DIR, 'disk.img', 1 << 20);
    const img = await open(p);
    expect(img.kind).toBe('file');
    expect(img.sizeBytes).toBe(1 << 20);
    expect(img.sectorSize).toBe(512);
    expect(img.physicalSectorSize).toBe(512);
    expect(img.readOnly).toBe(false);
    expect(img.direct).toBe(true);
    expect(img.directFallback).toBeNull();
    expect(img.discardSupport).toEqual({ granularity: fs.statSync(p).blksize, alignment: 0, secure: false });
    expect(img.discardNote).toBeNull();
    expect(img.ignoredTailBytes).toBe(0);
  });

  it('writes and reads back through O_DIRECT at 512-byte aligned segments', async () => {
    const p = file(DISK_DIR, 'disk.img', 1 << 20);
    const img = await open(p);
    const buf = dma(3 * 4096);
    const data = pattern(8192, 1);
    buf.view.set(data, 512); // a segment starting at first_sect 1
    expect(await io((cb) => img.write(buf.view, 512, 8192, 4096 * 7 + 512, cb))).toBeNull();
    expect(await io((cb) => img.flush(cb))).toBeNull();
    expect(fs.readFileSync(p).subarray(4096 * 7 + 512, 4096 * 7 + 512 + 8192).equals(data)).toBe(true);
    const back = dma(3 * 4096);
    expect(await io((cb) => img.read(back.view, 1024, 8192, 4096 * 7 + 512, cb))).toBeNull();
    expect(Buffer.from(back.view.subarray(1024, 1024 + 8192)).equals(data)).toBe(true);
  });

  it('refuses unaligned positions and lengths under O_DIRECT, before the kernel sees them', async () => {
    const img = await open(file(DISK_DIR, 'disk.img', 65536));
    const buf = dma(4096);
    const e1 = await io((cb) => img.read(buf.view, 0, 512, 100, cb));
    expect(e1?.code).toBe('EINVAL');
    const e2 = await io((cb) => img.write(buf.view, 0, 100, 0, cb));
    expect(e2?.code).toBe('EINVAL');
  });

  it('direct: false opens buffered and says why', async () => {
    const img = await open(file(DISK_DIR, 'disk.img', 65536), { direct: false });
    expect(img.direct).toBe(false);
    expect(img.directFallback).toBe('not asked for');
  });
});

/** Whether the kernel does 512-byte aligned O_DIRECT reads in dir: asked independently (Python). */
function kernelDoesDirectIo(dir: string): boolean {
  const probe = [
    'import mmap, os, sys',
    'p = os.path.join(sys.argv[1], "direct-probe")',
    'open(p, "wb").write(b"x" * 4096)',
    'try:',
    '    fd = os.open(p, os.O_RDONLY | os.O_DIRECT)',
    '    m = mmap.mmap(-1, 8192)',
    '    os.preadv(fd, [memoryview(m)[512:1024]], 512)',
    '    print("yes")',
    'except OSError:',
    '    print("no")',
    'finally:',
    '    os.unlink(p)',
  ].join('\n');
  return execFileSync('python3', ['-c', probe, dir], { encoding: 'utf8' }).trim() === 'yes';
}

describe('openRawImage on tmpfs', () => {
  it('uses O_DIRECT exactly when the kernel does it there (tmpfs only since Linux 6.6), else says why', async () => {
    const p = file(TMPFS_DIR, 'shm.img', 65536);
    const img = await open(p);
    const kernelDirect = kernelDoesDirectIo(path.dirname(p));
    expect(img.direct).toBe(kernelDirect);
    if (kernelDirect) expect(img.directFallback).toBeNull();
    else expect(img.directFallback).toMatch(/O_DIRECT/);
  });

  it('buffered I/O works at any alignment', async () => {
    const p = file(TMPFS_DIR, 'shm.img', 65536);
    const img = await open(p, { direct: false });
    // Buffered: any alignment is fine.
    const data = pattern(1000, 3);
    expect(await io((cb) => img.write(data, 0, 1000, 777, cb))).toBeNull();
    const back = Buffer.alloc(1000);
    expect(await io((cb) => img.read(back, 0, 1000, 777, cb))).toBeNull();
    expect(back.equals(data)).toBe(true);
    expect(fs.readFileSync(p).subarray(777, 1777).equals(data)).toBe(true);
    expect(img.discardSupport).not.toBeNull();
  });
});

describe('openRawImage errors: one line each, nothing left open', () => {
  async function openError(p: string, opts?: Parameters<typeof openRawImage>[1]): Promise<StorageError> {
    try {
      images.push(await openRawImage(p, opts));
    } catch (e) {
      expect(e).toBeInstanceOf(StorageError);
      expect((e as Error).message).not.toContain('\n');
      return e as StorageError;
    }
    throw new Error(`opening ${p} succeeded`);
  }

  it('missing image', async () => {
    const p = path.join(tmpDir(DISK_DIR), 'nope.img');
    const e = await openError(p);
    expect([e.code, e.message]).toEqual(['ENOENT', `image ${p} not found`]);
  });

  it('a directory', async () => {
    const d = tmpDir(DISK_DIR);
    expect((await openError(d)).message).toBe(`image ${d} is a directory`);
  });

  it('an empty file and one smaller than a sector', async () => {
    const empty = file(DISK_DIR, 'empty.img', 0);
    expect((await openError(empty)).message).toBe(`image ${empty} is empty`);
    const tiny = file(DISK_DIR, 'tiny.img', 100);
    expect((await openError(tiny)).message).toBe(`image ${tiny} is smaller than one 512-byte sector (100 bytes)`);
  });

  it('a FIFO or a character device: refused without opening (a FIFO open would block)', async () => {
    const fifo = path.join(tmpDir(DISK_DIR), 'fifo');
    execFileSync('mkfifo', [fifo]);
    expect((await openError(fifo)).message).toBe(`image ${fifo} is not a regular file or block device`);
    expect((await openError('/dev/null')).message).toBe('image /dev/null is not a regular file or block device');
  });

  it('a read-write open of a file on a read-only place: permission messages', async () => {
    // Running as root, permissions cannot be denied on a plain file; /proc/self/mem-like places
    // are not images. The message table is checked directly.
    const { openErrorMessage } = await import('../../src/io/storage/errors');
    expect(openErrorMessage('/x', 'EACCES', false)).toBe('image /x: permission denied (opening read-write)');
    expect(openErrorMessage('/x', 'EROFS', false)).toBe('image /x is on a read-only file system: attach it read-only');
    expect(openErrorMessage('/x', 'EBUSY', false)).toBe('image /x is in use (mounted or opened exclusively elsewhere)');
    expect(openErrorMessage('/x', 'EXDEV', true)).toBe('image /x cannot be opened: EXDEV');
  });
});

describe('read-only images', () => {
  it('refuse writes and discards, leave the file untouched, still read and flush', async () => {
    const data = pattern(65536, 5);
    const p = file(DISK_DIR, 'ro.img', data);
    const img = await open(p, { readOnly: true });
    expect(img.readOnly).toBe(true);
    expect(img.discardSupport).toBeNull();
    expect(img.discardNote).toBe('read-only');
    const buf = dma(4096);
    const w = await io((cb) => img.write(buf.view, 0, 4096, 0, cb));
    expect(w?.code).toBe('EROFS');
    const d = await io((cb) => img.discard(0, 4096, false, cb));
    expect(d?.code).toBe('EROFS');
    expect(await io((cb) => img.read(buf.view, 0, 4096, 8192, cb))).toBeNull();
    expect(Buffer.from(buf.view).equals(data.subarray(8192, 12288))).toBe(true);
    expect(await io((cb) => img.flush(cb))).toBeNull();
    expect(fs.readFileSync(p).equals(data)).toBe(true);
  });
});

describe('never outside the image', () => {
  it('exposes whole sectors only; the tail is never read or written', async () => {
    const data = pattern(4096 + 300, 9);
    const p = file(DISK_DIR, 'odd.img', data);
    const img = await open(p, { direct: false });
    expect(img.sizeBytes).toBe(4096);
    expect(img.ignoredTailBytes).toBe(300);
    const buf = Buffer.alloc(1024, 0xaa);
    expect((await io((cb) => img.read(buf, 0, 1024, 3584, cb)))?.code).toBe('ERANGE');
    expect((await io((cb) => img.write(buf, 0, 1024, 3584, cb)))?.code).toBe('ERANGE');
    expect(await io((cb) => img.write(buf, 0, 512, 3584, cb))).toBeNull();
    const now = fs.readFileSync(p);
    expect(now.subarray(4096).equals(data.subarray(4096))).toBe(true);
    expect(now.length).toBe(4096 + 300);
  });

  it('checks every position, length and buffer range itself', async () => {
    const data = pattern(65536, 11);
    const p = file(DISK_DIR, 'b.img', data);
    const img = await open(p, { direct: false });
    const buf = Buffer.alloc(8192);
    const bad: Array<[number, number, number, string]> = [
      [0, 512, 65536, 'ERANGE'],
      [0, 513, 65024, 'ERANGE'],
      [0, 512, -512, 'ERANGE'],
      [0, 512, 0.5, 'ERANGE'],
      [0, 512, 2 ** 60, 'ERANGE'],
      [0, 512, Number.MAX_SAFE_INTEGER, 'ERANGE'],
      [8000, 512, 0, 'EINVAL'],
      [-1, 512, 0, 'EINVAL'],
      [0, -1, 0, 'EINVAL'],
    ];
    for (const [off, len, pos, code] of bad) {
      expect((await io((cb) => img.write(buf, off, len, pos, cb)))?.code).toBe(code);
      expect((await io((cb) => img.read(buf, off, len, pos, cb)))?.code).toBe(code);
    }
    expect((await io((cb) => img.discard(65024, 1024, false, cb)))?.code).toBe('ERANGE');
    expect((await io((cb) => img.discard(-4096, 4096, false, cb)))?.code).toBe('ERANGE');
    expect(fs.readFileSync(p).equals(data)).toBe(true);
  });

  it('calls back asynchronously, also for refused requests', async () => {
    const img = await open(file(DISK_DIR, 'a.img', 65536), { direct: false });
    let called = false;
    const done = io((cb) => {
      img.read(Buffer.alloc(512), 0, 512, 1 << 30, (e) => {
        called = true;
        cb(e);
      });
      expect(called).toBe(false);
    });
    expect((await done)?.code).toBe('ERANGE');
  });
});

describe('sparse files and holes', () => {
  it('reads zeros from a sparse file, and past an EOF that moved under us', async () => {
    const p = file(DISK_DIR, 'sparse.img', 1 << 24);
    const img = await open(p);
    const buf = dma(8192);
    buf.view.fill(0xee);
    expect(await io((cb) => img.read(buf.view, 0, 8192, 1 << 23, cb))).toBeNull();
    expect(buf.view.every((b) => b === 0)).toBe(true);
    fs.writeFileSync(p, pattern(4096, 2)); // truncated behind our back
    buf.view.fill(0xee);
    expect(await io((cb) => img.read(buf.view, 0, 8192, 0, cb))).toBeNull();
    expect(Buffer.from(buf.view.subarray(0, 4096)).equals(pattern(4096, 2))).toBe(true);
    expect(buf.view.subarray(4096).every((b) => b === 0)).toBe(true);
  });

  it('discard punches a real hole and keeps the size', async () => {
    const data = pattern(1 << 20, 4);
    const p = file(DISK_DIR, 'punch.img', data);
    fs.writeFileSync(p, data); // fully allocated
    const img = await open(p);
    const before = fs.statSync(p).blocks;
    expect(await io((cb) => img.discard(65536, 262144, false, cb))).toBeNull();
    const st = fs.statSync(p);
    expect(st.size).toBe(1 << 20);
    expect(st.blocks).toBeLessThanOrEqual(before - 262144 / 512);
    const now = fs.readFileSync(p);
    expect(now.subarray(65536, 65536 + 262144).every((b) => b === 0)).toBe(true);
    expect(now.subarray(0, 65536).equals(data.subarray(0, 65536))).toBe(true);
    expect(now.subarray(65536 + 262144).equals(data.subarray(65536 + 262144))).toBe(true);
    expect(await io((cb) => img.discard(0, 0, false, cb))).toBeNull();
  });

  it('secure discard is not offered for files', async () => {
    const img = await open(file(DISK_DIR, 's.img', 65536));
    expect((await io((cb) => img.discard(0, 4096, true, cb)))?.code).toBe('EOPNOTSUPP');
  });

  it('punches holes on tmpfs too', async () => {
    const p = file(TMPFS_DIR, 'p.img', pattern(65536, 8));
    const img = await open(p);
    expect(await io((cb) => img.discard(4096, 8192, false, cb))).toBeNull();
    expect(fs.readFileSync(p).subarray(4096, 12288).every((b) => b === 0)).toBe(true);
  });
});

describe('lifecycle', () => {
  it('refreshSize follows a grown file', async () => {
    const p = file(DISK_DIR, 'grow.img', 65536);
    const img = await open(p);
    fs.truncateSync(p, 1 << 20);
    expect(await img.refreshSize()).toBe(1 << 20);
    expect(img.sizeBytes).toBe(1 << 20);
    const buf = dma(4096);
    expect(await io((cb) => img.read(buf.view, 0, 4096, (1 << 20) - 4096, cb))).toBeNull();
  });

  it('close waits for requests in flight, then refuses new ones', async () => {
    const p = file(DISK_DIR, 'c.img', 1 << 20);
    const img = await openRawImage(p);
    const bufs = Array.from({ length: 16 }, () => dma(65536));
    const pending = bufs.map((b, i) => io((cb) => img.write(b.view, 0, 65536, i * 65536, cb)));
    const closed = img.close();
    expect(await Promise.all(pending)).toEqual(new Array(16).fill(null));
    await closed;
    expect((await io((cb) => img.read(bufs[0].view, 0, 512, 0, cb)))?.code).toBe('EBADF');
    expect((await io((cb) => img.flush(cb)))?.code).toBe('EBADF');
    await img.close(); // idempotent
  });

  it.each([
    ['a device-backed file (threadpool)', DISK_DIR],
    ['tmpfs (inline)', TMPFS_DIR],
  ])('many concurrent reads and writes land exactly where asked: %s', async (_what, dir) => {
    const size = 1 << 20;
    const p = file(dir, 'm.img', size);
    const img = await open(p);
    const model = Buffer.alloc(size);
    let seed = 12345;
    const rnd = (n: number) => {
      seed = (seed * 1103515245 + 12345) & 0x7fffffff;
      return seed % n;
    };
    // Non-overlapping writes in one batch (overlapping concurrent writes have no defined order).
    const slots = Array.from({ length: size / 4096 }, (_, i) => i).sort(() => rnd(3) - 1);
    const writes = slots.slice(0, 120).map((slot, k) => {
      const sectors = 1 + rnd(8);
      const pos = slot * 4096;
      const data = pattern(sectors * 512, k);
      data.copy(model, pos);
      const b = dma(4096);
      b.view.set(data);
      return io((cb) => img.write(b.view, 0, data.length, pos, cb));
    });
    expect((await Promise.all(writes)).every((e) => e === null)).toBe(true);
    const reads = Array.from({ length: 100 }, async () => {
      const pos = rnd(size / 512 - 16) * 512;
      const len = (1 + rnd(16)) * 512;
      const b = dma(len);
      const err = await io((cb) => img.read(b.view, 0, len, pos, cb));
      return err === null && Buffer.from(b.view.subarray(0, len)).equals(model.subarray(pos, pos + len));
    });
    expect(await Promise.all(reads)).toEqual(new Array(100).fill(true));
    expect(fs.readFileSync(p).equals(model)).toBe(true);
  });
});

describe('how reads and writes are issued', () => {
  it('inline on tmpfs, Linux AIO for O_DIRECT on a device, the threadpool for buffered I/O there', async () => {
    const shm = await open(file(TMPFS_DIR, 'i.img', 65536));
    expect([shm.issue, shm.issueReason]).toEqual(['inline', 'the file is in memory (tmpfs)']);
    const disk = await open(file(DISK_DIR, 't.img', 65536));
    expect([disk.direct, disk.issue, disk.issueReason]).toEqual([true, 'aio', 'O_DIRECT on a device']);
    const buffered = await open(file(DISK_DIR, 'b.img', 65536), { direct: false });
    expect([buffered.issue, buffered.issueReason]).toEqual(['threads', 'buffered I/O on a device']);
    expect((await open(file(DISK_DIR, 'c.img', 65536), { direct: false, issue: 'aio' })).issueReason).toBe('Linux AIO needs O_DIRECT');
    expect((await open(file(TMPFS_DIR, 'f.img', 65536), { issue: 'threads' })).issue).toBe('threads');
    expect((await open(file(DISK_DIR, 'g.img', 65536), { issue: 'inline' })).issue).toBe('inline');
  });

  it('aio: more transfers at once than the context holds all land, in any order', async () => {
    const p = file(DISK_DIR, 'many.img', pattern(1 << 20, 6));
    const img = await open(p);
    expect(img.issue).toBe('aio');
    const n = 1500; // > AIO_CAPACITY: some wait for a slot
    const buf = dma(n * 512);
    const results = await Promise.all(Array.from({ length: n }, (_, i) => io((cb) => img.read(buf.view, i * 512, 512, (i * 7 % 2048) * 512, cb))));
    expect(results.every((e) => e === null)).toBe(true);
    const want = pattern(1 << 20, 6);
    for (let i = 0; i < n; i++) {
      const at = (i * 7 % 2048) * 512;
      expect(Buffer.from(buf.view.subarray(i * 512, i * 512 + 512)).equals(want.subarray(at, at + 512))).toBe(true);
    }
  });

  it('aio: a transfer io_submit refuses is answered with its errno, the rest of the batch goes on', async () => {
    const ctx = AioContext.shared();
    if (typeof ctx === 'string') throw new Error(ctx);
    const p = file(DISK_DIR, 'ro.img', pattern(8192, 3));
    syncFile(p); // dirty pages would make the O_DIRECT read wait (EAGAIN with RWF_NOWAIT)
    const ro = fs.openSync(p, fs.constants.O_RDONLY | fs.constants.O_DIRECT);
    try {
      const buf = dma(8192);
      const at = dmaAddressOf(buf.view);
      const done = (f: (res: number) => void) => ({ aioDone: f });
      const [write, read] = await Promise.all([
        new Promise<number>((r) => ctx.submit(done(r), true, ro, at, 4096, 0)), // write on a read-only fd
        new Promise<number>((r) => ctx.submit(done(r), false, ro, at + 4096, 4096, 4096)),
      ]);
      expect(write).toBe(-os.constants.errno.EBADF);
      expect(read).toBe(4096);
      expect(Buffer.from(buf.view.subarray(4096)).equals(pattern(8192, 3).subarray(4096))).toBe(true);
      expect(ctx.inFlight).toBe(0);
    } finally {
      fs.closeSync(ro);
    }
  });

  it('aio: a write that would block in io_submit (ext4 allocating blocks) goes to the threadpool instead', async () => {
    expect(execFileSync('stat', ['-f', '-c', '%T', DISK_DIR], { encoding: 'utf8' }).trim()).toBe('ext2/ext3');
    const p = file(DISK_DIR, 'sparse.img', 1 << 20); // a hole: the first write allocates
    const img = await open(p);
    const buf = dma(8192);
    buf.view.set(pattern(8192, 11));
    expect(await io((cb) => img.write(buf.view, 0, 8192, 65536, cb))).toBeNull();
    expect(img.aioFallbacks).toBeGreaterThanOrEqual(1);
    expect(fs.readFileSync(p).subarray(65536, 65536 + 8192).equals(pattern(8192, 11))).toBe(true);
  });

  it('aio: a buffer outside DMA memory goes through the threadpool instead', async () => {
    const p = file(DISK_DIR, 'h.img', pattern(65536, 8));
    const img = await open(p);
    expect(img.issue).toBe('aio');
    // Page-aligned memory that is no DmaRegion: the AIO context has no address for it.
    const m = mmap(4096, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS);
    try {
      const plain = new Uint8Array(m.buffer);
      expect(dmaAddressOf(plain)).toBe(-1);
      expect(await io((cb) => img.read(plain, 0, 4096, 4096, cb))).toBeNull();
      expect(Buffer.from(plain).equals(pattern(65536, 8).subarray(4096, 8192))).toBe(true);
    } finally {
      munmap(m.address, 4096);
    }
  });

  it('inline: the syscall happens at once, the callbacks come later, in order, one tick for a batch', async () => {
    const p = file(TMPFS_DIR, 'o.img', pattern(65536, 4));
    const img = await open(p, { direct: false });
    const bufs = Array.from({ length: 8 }, () => Buffer.alloc(4096));
    const order: number[] = [];
    const all = Promise.all(
      bufs.map((b, i) =>
        io((cb) =>
          img.read(b, 0, 4096, i * 4096, (e) => {
            order.push(i);
            cb(e);
          }),
        ),
      ),
    );
    // Read already, answered not yet.
    expect(order).toEqual([]);
    expect(bufs[3].equals(pattern(65536, 4).subarray(3 * 4096, 4 * 4096))).toBe(true);
    expect(await all).toEqual(new Array(8).fill(null));
    expect(order).toEqual([0, 1, 2, 3, 4, 5, 6, 7]);
    // A write is on the file before its callback.
    const data = pattern(512, 9);
    const written = io((cb) => img.write(data, 0, 512, 1024, cb));
    expect(fs.readFileSync(p).subarray(1024, 1536).equals(data)).toBe(true);
    expect(await written).toBeNull();
  });

  it('inline: zeros past an EOF that moved under us', async () => {
    const p = file(TMPFS_DIR, 'e.img', pattern(8192, 5));
    const img = await open(p, { direct: false });
    fs.truncateSync(p, 4096);
    const b = Buffer.alloc(8192, 0xee);
    expect(await io((cb) => img.read(b, 0, 8192, 0, cb))).toBeNull();
    expect(b.subarray(0, 4096).equals(pattern(8192, 5).subarray(0, 4096))).toBe(true);
    expect(b.subarray(4096).every((x) => x === 0)).toBe(true);
  });

  it('close waits for inline requests whose callbacks are still due', async () => {
    const img = await openRawImage(file(TMPFS_DIR, 'c.img', 65536), { direct: false });
    const pending = io((cb) => img.write(Buffer.alloc(4096, 1), 0, 4096, 0, cb));
    const closed = img.close();
    expect(await pending).toBeNull();
    await closed;
    expect((await io((cb) => img.read(Buffer.alloc(512), 0, 512, 0, cb)))?.code).toBe('EBADF');
  });
});

describe('a file system that refuses O_DIRECT and hole punching (ramfs)', () => {
  it('falls back to buffered I/O, offers no discard, and says why', () => {
    // ramfs is mounted in a private mount namespace of a child process: the host never sees it.
    const mnt = tmpDir(DISK_DIR);
    const script = path.join(__dirname, 'support', 'open-in-dir.js');
    const out = execFileSync(
      'unshare',
      ['-m', 'sh', '-c', 'mount -t ramfs none "$1" && exec node "$2" "$1"', 'sh', mnt, script],
      { encoding: 'utf8', timeout: 20000 },
    );
    const r = JSON.parse(out);
    expect(r.fsType).toBe('ramfs');
    expect(r.direct).toBe(false);
    expect(r.directFallback).toBe('the file system refuses O_DIRECT');
    expect([r.wrote, r.read, r.same]).toEqual([null, null, true]);
    expect(r.discardSupport).toBeNull();
    expect(r.discardNote).toMatch(/^the file system cannot punch holes \(EOPNOTSUPP\)$/);
    expect(r.discard).toBe('EOPNOTSUPP');
  });
});
