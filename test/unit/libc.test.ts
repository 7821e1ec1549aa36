import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import * as libc from '../../src/io/libc';

describe('libc bindings', () => {
  it('maps a file shared: writes through the mapping reach the file', () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'libc-'));
    const file = path.join(dir, 'mem');
    const fd = fs.openSync(file, 'w+');
    libc.ftruncate(fd, 8192);
    const m = libc.mmap(8192, libc.PROT_READ | libc.PROT_WRITE, libc.MAP_SHARED, fd, 0);
    new Uint8Array(m.buffer)[4097] = 0xa5;
    expect(fs.readFileSync(file)[4097]).toBe(0xa5);
    libc.munmap(m.address, m.length);
    fs.closeSync(fd);
    fs.rmSync(dir, { recursive: true });
  });

  it('maps a file page at a fixed address inside a reserved region', () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'libc-'));
    const fd = fs.openSync(path.join(dir, 'mem'), 'w+');
    libc.ftruncate(fd, 4 * 4096);
    const whole = libc.mmap(4 * 4096, libc.PROT_READ | libc.PROT_WRITE, libc.MAP_SHARED, fd, 0);
    const region = libc.mmap(8192, libc.PROT_NONE, libc.MAP_PRIVATE | libc.MAP_ANONYMOUS);
    const page = libc.mmap(
      4096,
      libc.PROT_READ | libc.PROT_WRITE,
      libc.MAP_SHARED | libc.MAP_FIXED,
      fd,
      3 * 4096,
      region.address + 4096n,
    );
    expect(page.address).toBe(region.address + 4096n);
    new Uint8Array(page.buffer)[7] = 42;
    expect(new Uint8Array(whole.buffer)[3 * 4096 + 7]).toBe(42);
    libc.munmap(region.address, 8192);
    libc.munmap(whole.address, whole.length);
    fs.closeSync(fd);
    fs.rmSync(dir, { recursive: true });
  });

  it('reports a failed call with its errno name', () => {
    expect(() => libc.ftruncate(-1, 0)).toThrow(/ftruncate: EBADF/);
  });

  it('punches a hole on a worker thread', (done) => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'libc-'));
    const file = path.join(dir, 'img');
    fs.writeFileSync(file, Buffer.alloc(65536, 0xff));
    const fd = fs.openSync(file, 'r+');
    libc.fallocateAsync(fd, libc.FALLOC_FL_PUNCH_HOLE | libc.FALLOC_FL_KEEP_SIZE, 4096, 8192, (err) => {
      expect(err).toBeNull();
      const data = fs.readFileSync(file);
      expect(data.length).toBe(65536);
      expect(data[4095]).toBe(0xff);
      expect(data.subarray(4096, 12288).every((b) => b === 0)).toBe(true);
      expect(data[12288]).toBe(0xff);
      fs.closeSync(fd);
      fs.rmSync(dir, { recursive: true });
      done();
    });
  });
});

describe('DMA regions', () => {
  it('are page aligned, writable and freed once', () => {
    const { allocDma } = require('../../src/io/dma') as typeof import('../../src/io/dma');
    const r = allocDma(5000);
    expect(r.length).toBe(8192);
    expect(r.address % 4096n).toBe(0n);
    r.view[8191] = 9;
    expect(r.view[8191]).toBe(9);
    r.free();
    expect(() => r.free()).not.toThrow();
  });
});
