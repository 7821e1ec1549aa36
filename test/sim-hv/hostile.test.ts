// Garbage and misuse on hv.sock, from either side: an error and a log line, never a crash.
import fc from 'fast-check';
import * as fs from 'node:fs';
import * as net from 'node:net';
import * as os from 'node:os';
import * as path from 'node:path';
import { connectSimHypervisor } from '../../src/io/sim';
import { FrameReader, MSG, PROTOCOL_VERSION, parseError } from '../../src/io/sim/protocol';
import { eventually, startHost, type TestHost } from './support/harness';

interface Frame {
  type: number;
  id: number;
  payload: Buffer;
}

/** A hand-driven client: writes raw bytes, collects the frames it gets back. */
class RawClient {
  readonly frames: Frame[] = [];
  closed = false;
  private readonly socket: net.Socket;
  private readonly opened: Promise<void>;

  constructor(socketPath: string) {
    this.socket = net.createConnection(socketPath);
    this.opened = new Promise((r) => this.socket.once('connect', () => r()));
    const reader = new FrameReader((type, id, buf, off, len) =>
      this.frames.push({ type, id, payload: Buffer.from(buf.subarray(off, off + len)) }),
    );
    this.socket.on('data', (c: Buffer) => reader.push(c));
    this.socket.on('error', () => {});
    this.socket.on('close', () => (this.closed = true));
  }

  async send(bytes: Buffer): Promise<void> {
    await this.opened;
    if (!this.socket.destroyed) this.socket.write(bytes);
  }

  frame(type: number, id: number, ...words: number[]): Promise<void> {
    const b = Buffer.alloc(8 + 4 * words.length);
    b.writeUInt16LE(type, 0);
    b.writeUInt16LE(4 * words.length, 2);
    b.writeUInt32LE(id, 4);
    words.forEach((w, i) => b.writeUInt32LE(w >>> 0, 8 + 4 * i));
    return this.send(b);
  }

  async hello(): Promise<void> {
    await this.frame(MSG.HELLO, 1, PROTOCOL_VERSION, 0);
    await eventually(() => this.frames.some((f) => f.type === MSG.HELLO_OK), 'HELLO_OK');
  }

  errors(): { id: number; code: string; message: string }[] {
    return this.frames.filter((f) => f.type === MSG.ERROR).map((f) => ({ id: f.id, ...parseError(f.payload, 0, f.payload.length) }));
  }

  stopReading(): void {
    this.socket.pause();
  }

  destroy(): void {
    this.socket.destroy();
  }
}

describe('hostile input on hv.sock', () => {
  let host: TestHost;
  beforeEach(async () => {
    host = await startHost();
    host.hv.createDomain(1, { memoryBytes: 1 << 20, grantFrames: 1 });
  });
  afterEach(() => host.close());

  /** The host still serves a well-behaved client. */
  async function hostStillWorks(): Promise<void> {
    const conn = await connectSimHypervisor(host.socketPath, { log: { warn: () => {} } });
    const d = host.hv.domain(1)!;
    const gp = await d.evtchn.allocUnbound(0);
    const bp = await conn.evtchn.bindInterdomain(1, gp.localPort);
    await bp.unbind();
    await gp.unbind();
    await conn.close();
  }

  const cases: [string, (c: RawClient) => Promise<void>, RegExp][] = [
    ['a frame before HELLO', (c) => c.frame(MSG.MAP, 5, 1, 0, 8), /MAP|type 2 before HELLO/],
    ['a wrong protocol version', (c) => c.frame(MSG.HELLO, 1, 99, 0), /protocol version 99/],
    ['a HELLO without id', (c) => c.frame(MSG.HELLO, 0, PROTOCOL_VERSION, 0), /bad HELLO/],
    ['random bytes', (c) => c.send(Buffer.from('GET / HTTP/1.1\r\nHost: x\r\n\r\n')), /before HELLO|unknown frame/],
  ];
  for (const [what, act, logged] of cases) {
    it(`drops a connection that sends ${what}, with an EPROTO error and a log line`, async () => {
      const c = new RawClient(host.socketPath);
      await act(c);
      await eventually(() => c.closed, 'connection drop');
      expect(c.errors()[0]?.code).toBe('EPROTO');
      expect(host.logs.some((l) => l.startsWith('warn') && /protocol error/.test(l) && logged.test(l))).toBe(true);
      await hostStillWorks();
    });
  }

  const framing: [string, (c: RawClient) => Promise<void>][] = [
    ['a MAP without refs', (c) => c.frame(MSG.MAP, 2, 1, 0)],
    ['a MAP with a ragged payload', (c) => c.send(Buffer.from([2, 0, 13, 0, 2, 0, 0, 0, ...new Array(13).fill(0)]))],
    ['a NOTIFY expecting a reply', (c) => c.frame(MSG.NOTIFY, 7, 1)],
    ['an UNBIND without id', (c) => c.frame(MSG.UNBIND, 0, 1)],
    ['an unknown frame type', (c) => c.frame(0x4242, 3)],
    ['a second HELLO', (c) => c.frame(MSG.HELLO, 9, PROTOCOL_VERSION, 0)],
    ['a frame of reply type', (c) => c.frame(MSG.EVENT, 0, 1)],
  ];
  for (const [what, act] of framing) {
    it(`drops a connection that sends ${what} after HELLO`, async () => {
      const c = new RawClient(host.socketPath);
      await c.hello();
      await act(c);
      await eventually(() => c.closed, 'connection drop');
      expect(c.errors().map((e) => e.code)).toEqual(['EPROTO']);
      await hostStillWorks();
    });
  }

  it('answers well-formed bad requests with errors and keeps the connection', async () => {
    const c = new RawClient(host.socketPath);
    await c.hello();
    await c.frame(MSG.NOTIFY, 0, 77); // not our port: no reply expected, but an ERROR with id 0
    await c.frame(MSG.UNMASK, 0, 0xffffffff);
    await c.frame(MSG.UNMAP, 11, 1234);
    await c.frame(MSG.UNBIND, 12, 3);
    await c.frame(MSG.MAP, 13, 1, 0, 0xffffffff);
    await c.frame(MSG.MAP, 14, 0xffffffff, 1, 8);
    await c.frame(MSG.BIND_INTERDOMAIN, 15, 1, 0xffffffff);
    await eventually(() => c.errors().length === 7, 'seven errors');
    expect(c.errors().map((e) => [e.id, e.code])).toEqual([
      [0, 'EINVAL'],
      [0, 'EINVAL'],
      [11, 'EINVAL'],
      [12, 'EINVAL'],
      [13, 'GNTST_bad_gntref'],
      [14, 'GNTST_bad_domain'],
      [15, 'EINVAL'],
    ]);
    expect(c.closed).toBe(false);
    expect(host.logs.filter((l) => l.startsWith('warn')).length).toBe(7);
    c.destroy();
    await hostStillWorks();
  });

  it('drops a client that floods requests without reading the replies', async () => {
    const c = new RawClient(host.socketPath);
    await c.hello();
    c.stopReading();
    const n = 200_000;
    const flood = Buffer.alloc(12 * n);
    for (let i = 0; i < n; i++) {
      flood.writeUInt16LE(MSG.UNMAP, 12 * i);
      flood.writeUInt16LE(4, 12 * i + 2);
      flood.writeUInt32LE(i + 1, 12 * i + 4);
      flood.writeUInt32LE(777, 12 * i + 8);
    }
    await c.send(flood);
    await eventually(() => host.logs.some((l) => /bytes of replies unread, dropping the connection/.test(l)), 'the drop', 10000);
    await eventually(() => host.hv.sessionCount === 0, 'session gone');
    c.destroy();
    await hostStillWorks();
  });

  it('survives arbitrary byte streams, before and after HELLO', async () => {
    await fc.assert(
      fc.asyncProperty(fc.boolean(), fc.array(fc.uint8Array({ minLength: 1, maxLength: 64 }), { maxLength: 6 }), async (greet, chunks) => {
        const c = new RawClient(host.socketPath);
        if (greet) await c.hello();
        for (const ch of chunks) await c.send(Buffer.from(ch));
        await new Promise((r) => setTimeout(r, 2));
        c.destroy();
        await eventually(() => c.closed, 'close');
      }),
      { numRuns: 60 },
    );
    await eventually(() => host.hv.sessionCount === 0, 'all sessions gone');
    await hostStillWorks();
  });
});

describe('hostile hypervisor seen by the client', () => {
  let dir: string;
  let server: net.Server;
  beforeEach(() => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'fake-hv-'));
  });
  afterEach(async () => {
    await new Promise((r) => server.close(r));
    fs.rmSync(dir, { recursive: true, force: true });
  });

  async function fakeHost(onHello: (s: net.Socket, helloId: number) => void): Promise<string> {
    const sock = path.join(dir, 'hv.sock');
    server = net.createServer((s) => {
      s.once('data', (b: Buffer) => onHello(s, b.readUInt32LE(4)));
      s.on('error', () => {});
    });
    await new Promise<void>((r) => server.listen(sock, r));
    return sock;
  }

  const helloOk = (id: number) => {
    const b = Buffer.alloc(12);
    b.writeUInt16LE(MSG.HELLO_OK, 0);
    b.writeUInt16LE(4, 2);
    b.writeUInt32LE(id, 4);
    b.writeUInt32LE(PROTOCOL_VERSION, 8);
    return b;
  };

  it('fails to connect when the host answers HELLO with garbage', async () => {
    const sock = await fakeHost((s) => s.write(Buffer.from('\xff\xff\x00\x00garbage-garbage', 'latin1')));
    const warnings: string[] = [];
    await expect(connectSimHypervisor(sock, { log: { warn: (m) => warnings.push(m) } })).rejects.toThrow(/hello: ECONNRESET/);
    expect(warnings.some((w) => /unexpected frame/.test(w))).toBe(true);
  });

  it('fails pending and later calls when the host starts sending garbage', async () => {
    let peer!: net.Socket;
    const sock = await fakeHost((s, id) => {
      peer = s;
      s.write(helloOk(id));
    });
    const warnings: string[] = [];
    const conn = await connectSimHypervisor(sock, { log: { warn: (m) => warnings.push(m) } });
    const pending = conn.evtchn.allocUnbound(1);
    peer.write(Buffer.from([0x86, 0, 4, 0, 0x99, 0x99, 0, 0, 1, 0, 0, 0])); // a PORT for an id never sent
    await expect(pending).rejects.toThrow(/ECONNRESET/);
    await expect(conn.evtchn.bindInterdomain(1, 1)).rejects.toThrow(/ECONNRESET/);
    expect(warnings.some((w) => /unexpected frame \(type 134/.test(w))).toBe(true);
    await conn.close();
  });

  it('says so in one line when nothing listens on the socket', async () => {
    server = net.createServer();
    await expect(connectSimHypervisor(path.join(dir, 'none.sock'))).rejects.toThrow(
      /^connect .*none\.sock: ENOENT \(is the simulated host running\?\)$/,
    );
  });
});
