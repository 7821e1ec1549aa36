// A connection to the simulated hypervisor (hv.sock): requests with replies, one-way frames,
// and the pushes (events, domain lifecycle) the grant table and event channel consume.
import * as net from 'node:net';
import pino from 'pino';
import { SimXenError } from './errors';
import { FrameReader, FrameSink, MSG, PROTOCOL_VERSION, parseError } from './protocol';

export interface SimLogger {
  warn(msg: string): void;
}

export interface DomainInfo {
  readonly domid: number;
  readonly generation: number;
  readonly frames: number;
  readonly grantFrames: number;
  /** The domain's memory file. */
  readonly path: string;
}

interface Pending {
  op: string;
  expect: number;
  resolve(payload: Buffer): void;
  reject(e: Error): void;
}

export class HvClient {
  /** Domains the host has announced, by domid. */
  readonly domains = new Map<number, DomainInfo>();
  onEvent: (port: number) => void = () => {};
  onDomainDown: (info: DomainInfo) => void = () => {};
  private readonly lostHandlers: (() => void)[] = [];
  private readonly pending = new Map<number, Pending>();
  private readonly reader: FrameReader;
  private readonly sink: FrameSink;
  private nextId = 1;
  private isAlive = true;

  private constructor(
    private readonly socket: net.Socket,
    readonly domid: number,
    private readonly log: SimLogger,
  ) {
    this.reader = new FrameReader((t, id, b, o, l) => this.onFrame(t, id, b, o, l));
    this.sink = new FrameSink((chunk) => {
      if (!socket.destroyed) socket.write(chunk);
    });
    socket.on('data', (chunk: Buffer) => this.reader.push(chunk));
    socket.on('error', (e) => this.log.warn(`hv connection: ${e.message}`));
    socket.on('close', () => this.lost());
  }

  static async connect(socketPath: string, domid: number, log: SimLogger = defaultSimLogger()): Promise<HvClient> {
    const socket = net.createConnection(socketPath);
    await new Promise<void>((resolve, reject) => {
      socket.once('connect', resolve);
      socket.once('error', (e: NodeJS.ErrnoException) =>
        reject(new SimXenError(`connect ${socketPath}`, e.code ?? 'EIO', 'is the simulated host running?')),
      );
    });
    const c = new HvClient(socket, domid, log);
    try {
      await c.call('hello', MSG.HELLO, MSG.HELLO_OK, [PROTOCOL_VERSION, domid]);
    } catch (e) {
      c.socket.destroy();
      throw e;
    }
    return c;
  }

  get alive(): boolean {
    return this.isAlive;
  }

  /** A request: header words, then an optional u32 list. Resolves with the reply payload. */
  call(op: string, type: number, expect: number, words: readonly number[], list?: ArrayLike<number>): Promise<Buffer> {
    if (!this.isAlive) return Promise.reject(new SimXenError(op, 'ECONNRESET', 'hypervisor connection is closed'));
    const id = this.nextId;
    this.nextId = this.nextId === 0xffffffff ? 1 : this.nextId + 1;
    return new Promise<Buffer>((resolve, reject) => {
      this.pending.set(id, { op, expect, resolve, reject });
      this.sink.sendList(type, id, words, list ?? []);
    });
  }

  /** One-way frames: no reply, nothing allocated but the frame bytes. */
  send(type: typeof MSG.NOTIFY | typeof MSG.UNMASK, port: number): void {
    if (this.isAlive) this.sink.send1(type, 0, port);
  }

  onLost(f: () => void): void {
    this.lostHandlers.push(f);
  }

  async close(): Promise<void> {
    if (!this.isAlive) return;
    this.sink.flush();
    const closed = new Promise<void>((r) => this.socket.once('close', () => r()));
    this.socket.end();
    await closed;
  }

  private onFrame(type: number, id: number, buf: Buffer, off: number, len: number): void {
    switch (type) {
      case MSG.EVENT:
        if (len === 4) return this.onEvent(buf.readUInt32LE(off));
        break;
      case MSG.DOMAIN_UP:
        if (len > 16) {
          const info: DomainInfo = {
            domid: buf.readUInt32LE(off),
            generation: buf.readUInt32LE(off + 4),
            frames: buf.readUInt32LE(off + 8),
            grantFrames: buf.readUInt32LE(off + 12),
            path: buf.toString('utf8', off + 16, off + len),
          };
          const old = this.domains.get(info.domid);
          if (old) this.onDomainDown(old);
          this.domains.set(info.domid, info);
          return;
        }
        break;
      case MSG.DOMAIN_DOWN:
        if (len === 8) {
          const info = this.domains.get(buf.readUInt32LE(off));
          if (info && info.generation === buf.readUInt32LE(off + 4)) {
            this.domains.delete(info.domid);
            this.onDomainDown(info);
          }
          return;
        }
        break;
      default: {
        const p = this.pending.get(id);
        if (type === MSG.ERROR) {
          const { code, message } = parseError(buf, off, len);
          if (!p) return this.log.warn(`hypervisor: ${code}: ${message}`);
          this.pending.delete(id);
          return p.reject(new SimXenError(p.op, code, message));
        }
        if (p && type === p.expect) {
          this.pending.delete(id);
          return p.resolve(Buffer.from(buf.subarray(off, off + len)));
        }
      }
    }
    this.log.warn(`hypervisor sent an unexpected frame (type ${type}, id ${id}, ${len} bytes): dropping the connection`);
    this.reader.stop();
    this.socket.destroy();
  }

  private lost(): void {
    if (!this.isAlive) return;
    this.isAlive = false;
    this.reader.stop();
    this.sink.close();
    for (const p of this.pending.values()) p.reject(new SimXenError(p.op, 'ECONNRESET', 'hypervisor connection closed'));
    this.pending.clear();
    for (const f of this.lostHandlers) f();
  }
}

export function defaultSimLogger(): SimLogger {
  return pino({ name: 'sim-xen', level: process.env.XENBLKD_LOG_LEVEL ?? 'info' }, pino.destination(2));
}
