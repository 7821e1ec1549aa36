// Everything from the server is untrusted. A tiny scripted server (the only stand-in: real
// servers do not misbehave on demand) sends garbage at each point; the client refuses to open
// or drops the connection as a lost server, never crashes and never hands wrong data on.
// Open errors against real qemu-nbd and sockets: one line each.
import * as net from 'node:net';
import * as path from 'node:path';
import { StorageError } from '../../../src/io/storage/errors';
import { openNbdImage, type NbdImage } from '../../../src/io/storage/nbd';
import { makeImage, tempDir } from '../../support/temp';
import { freePort, qemuNbd } from './servers';

const SIZE = 1024 * 1024;
const images: NbdImage[] = [];
const servers: net.Server[] = [];
afterEach(async () => {
  for (const img of images.splice(0)) await img.close();
  for (const s of servers.splice(0)) await new Promise((r) => s.close(r));
});

type Misbehaviour = 'bad-magic' | 'unknown-handle' | 'duplicate-reply' | 'short-read' | 'none';

interface Script {
  greeting?: Buffer;
  /** Export size the handshake announces (a 64-bit value as hi, lo). */
  size?: [number, number];
  /** Answer NBD_OPT_GO with NBD_REP_ERR_UNSUP (the client must use NBD_OPT_EXPORT_NAME). */
  noGo?: boolean;
  /** Per connection, in order; then 'none'. */
  misbehave?: Misbehaviour[];
}

function optReply(option: number, type: number, data: Buffer): Buffer {
  const h = Buffer.alloc(20);
  h.writeUInt32BE(0x0003e889, 0);
  h.writeUInt32BE(0x045565a9, 4);
  h.writeUInt32BE(option, 8);
  h.writeUInt32BE(type >>> 0, 12);
  h.writeUInt32BE(data.length, 16);
  return Buffer.concat([h, data]);
}

/** A scripted server holding SIZE bytes of memory (each byte its offset mod 251). */
async function hostile(dir: string, script: Script): Promise<{ sock: string; connections: () => number }> {
  const sock = path.join(dir, `hostile-${Math.random().toString(36).slice(2)}.sock`);
  const disk = Buffer.alloc(SIZE);
  for (let i = 0; i < SIZE; i++) disk[i] = i % 251;
  let connections = 0;
  const server = net.createServer((c) => {
    const misbehaviour = script.misbehave?.[connections] ?? 'none';
    connections++;
    c.on('error', () => {});
    const greet = Buffer.alloc(18);
    greet.write('NBDMAGICIHAVEOPT', 0, 'latin1');
    greet.writeUInt16BE(3, 16);
    c.write(script.greeting ?? greet);
    let acc = Buffer.alloc(0);
    let phase: 'flags' | 'options' | 'transmission' = 'flags';
    let served = 0;
    const flags = 1 | 4 | 8; // HAS_FLAGS, SEND_FLUSH, SEND_FUA
    const [hi, lo] = script.size ?? [0, SIZE];
    c.on('data', (d) => {
      acc = Buffer.concat([acc, d]);
      for (;;) {
        if (phase === 'flags') {
          if (acc.length < 4) return;
          acc = acc.subarray(4);
          phase = 'options';
        } else if (phase === 'options') {
          if (acc.length < 16) return;
          const opt = acc.readUInt32BE(8);
          const len = acc.readUInt32BE(12);
          if (acc.length < 16 + len) return;
          acc = acc.subarray(16 + len);
          const info = Buffer.alloc(12);
          info.writeUInt16BE(0, 0);
          info.writeUInt32BE(hi, 2);
          info.writeUInt32BE(lo, 6);
          info.writeUInt16BE(flags, 10);
          if (opt === 7 && script.noGo) {
            c.write(optReply(7, 0x80000001, Buffer.alloc(0)));
          } else if (opt === 7) {
            c.write(Buffer.concat([optReply(7, 3, info), optReply(7, 1, Buffer.alloc(0))]));
            phase = 'transmission';
          } else if (opt === 1) {
            c.write(info.subarray(2)); // size, flags; NO_ZEROES was offered and is taken
            phase = 'transmission';
          }
        } else {
          if (acc.length < 28) return;
          const type = acc.readUInt16BE(6);
          const handle = acc.subarray(8, 16);
          const off = acc.readUInt32BE(16) * 2 ** 32 + acc.readUInt32BE(20);
          const len = acc.readUInt32BE(24);
          const payload = type === 1 ? len : 0;
          if (acc.length < 28 + payload) return;
          if (type === 1) acc.copy(disk, off, 28, 28 + len);
          acc = acc.subarray(28 + payload);
          if (type === 2) return void c.end();
          const reply = Buffer.alloc(16);
          reply.writeUInt32BE(0x67446698, 0);
          handle.copy(reply, 8);
          const data = type === 0 ? disk.subarray(off, off + len) : Buffer.alloc(0);
          served++;
          if (served === 2 && misbehaviour !== 'none') {
            if (misbehaviour === 'bad-magic') reply.writeUInt32BE(0xdeadbeef, 0);
            if (misbehaviour === 'unknown-handle') reply.writeUInt32BE(0x7fff, 12);
            if (misbehaviour === 'short-read') {
              // Half the data, then gone: the caller must never see it.
              c.write(Buffer.concat([reply, Buffer.alloc(data.length / 2, 0xee)]));
              return void c.destroy();
            }
            if (misbehaviour === 'duplicate-reply') {
              c.write(Buffer.concat([reply, data, reply, data]));
              continue;
            }
            c.write(Buffer.concat([reply, Buffer.alloc(data.length, 0xee)]));
            continue;
          }
          c.write(Buffer.concat([reply, data]));
        }
      }
    });
  });
  servers.push(server);
  await new Promise<void>((r) => server.listen(sock, r));
  return { sock, connections: () => connections };
}

function io(fn: (cb: (err: NodeJS.ErrnoException | null) => void) => void): Promise<NodeJS.ErrnoException | null> {
  return new Promise((resolve) => fn(resolve));
}

async function openErr(target: Parameters<typeof openNbdImage>[0], timeoutMs = 3000): Promise<StorageError> {
  const e = await openNbdImage(target, { timeoutMs }).then(
    (img) => {
      images.push(img);
      return null;
    },
    (err) => err,
  );
  expect(e).toBeInstanceOf(StorageError);
  expect(e.message).not.toContain('\n');
  return e;
}

const unix = (p: string, exportName = '') => ({ driver: 'nbd' as const, transport: 'unix' as const, path: p, exportName });

test.each(['bad-magic', 'unknown-handle', 'duplicate-reply', 'short-read'] as const)(
  '%s: the connection is dropped, requests are re-issued and read the right data',
  async (m) => {
    const dir = tempDir('xenblkd-nbd-');
    const srv = await hostile(dir, { misbehave: [m] });
    const img = await openNbdImage(unix(srv.sock), { timeoutMs: 5000 });
    images.push(img);
    const bufs = [0, 1, 2, 3].map(() => Buffer.alloc(4096));
    const done = await Promise.all(bufs.map((b, i) => io((cb) => img.read(b, 0, 4096, i * 8192, cb))));
    expect(done).toEqual([null, null, null, null]);
    bufs.forEach((b, i) => {
      for (let j = 0; j < 4096; j += 97) expect(b[j]).toBe((i * 8192 + j) % 251);
    });
    expect(srv.connections()).toBe(2);
    expect(img.reconnects).toBe(1);
  },
);

test('NBD_OPT_GO unsupported: NBD_OPT_EXPORT_NAME is used and I/O works', async () => {
  const dir = tempDir('xenblkd-nbd-');
  const srv = await hostile(dir, { noGo: true });
  const img = await openNbdImage(unix(srv.sock), { timeoutMs: 3000 });
  images.push(img);
  expect(img.sizeBytes).toBe(SIZE);
  const buf = Buffer.alloc(512);
  expect(await io((cb) => img.read(buf, 0, 512, 1000 * 512, cb))).toBeNull();
  expect(buf[0]).toBe((1000 * 512) % 251);
});

test('handshake garbage, an oversized export, a silent server: one-line open errors', async () => {
  const dir = tempDir('xenblkd-nbd-');
  const garbage = await hostile(dir, { greeting: Buffer.from('HTTP/1.1 400 Bad Request\r\n\r\n') });
  expect((await openErr(unix(garbage.sock))).code).toBe('EPROTO');
  const huge = await hostile(dir, { size: [0x10000000, 0] });
  const e = await openErr(unix(huge.sock));
  expect(e.code).toBe('EPROTO');
  expect(e.message).toContain('2^53');
  const silentSock = path.join(dir, 'silent.sock');
  const silent = net.createServer(() => {});
  servers.push(silent);
  await new Promise<void>((r) => silent.listen(silentSock, r));
  const t0 = Date.now();
  expect((await openErr(unix(silentSock), 2000)).code).toBe('ETIMEDOUT');
  expect(Date.now() - t0).toBeLessThan(5000);
});

test('open errors: socket not found, connection refused, export not found', async () => {
  const dir = tempDir('xenblkd-nbd-');
  const missing = await openErr(unix(path.join(dir, 'nothing.sock')));
  expect(missing.code).toBe('ENOENT');
  expect(missing.message).toContain('nothing.sock');
  const port = await freePort();
  const refused = await openErr({ driver: 'nbd', transport: 'tcp', host: '127.0.0.1', port, exportName: '' });
  expect(refused.code).toBe('ECONNREFUSED');
  const server = await qemuNbd({ dir, file: makeImage(dir, 'disk.img', SIZE), exportName: 'disk0' });
  const unknown = await openErr({ ...server.target, exportName: 'nope' });
  expect(unknown.code).toBe('ENOENT');
  expect(unknown.message).toMatch(/export 'nope' not found/);
});

test('plug()/unplug(): a batch of 32 writes leaves the socket as one write call', async () => {
  const dir = tempDir('xenblkd-nbd-');
  const srv = await hostile(dir, {});
  const img = await openNbdImage(unix(srv.sock), { timeoutMs: 3000 });
  images.push(img);
  const data = Buffer.alloc(32 * 512, 0x5a);
  // Observes the real socket's stream calls (one per syscall batch); nothing is replaced.
  const proto = net.Socket.prototype as unknown as Record<'_write' | '_writev', (...a: unknown[]) => unknown>;
  const single = jest.spyOn(proto, '_write');
  const vector = jest.spyOn(proto, '_writev');
  img.plug!();
  const all = Promise.all(Array.from({ length: 32 }, (_, i) => io((cb) => img.write(data, i * 512, 512, i * 512, cb))));
  img.unplug!();
  const calls = single.mock.calls.length + vector.mock.calls.length;
  single.mockRestore();
  vector.mockRestore();
  expect(calls).toBe(1);
  expect(await all).toEqual(new Array(32).fill(null));
  const back = Buffer.alloc(32 * 512);
  expect(await io((cb) => img.read(back, 0, back.length, 0, cb))).toBeNull();
  expect(back.equals(data)).toBe(true);
});
