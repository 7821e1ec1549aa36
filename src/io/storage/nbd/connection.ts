// One connection to an NBD server: the socket, the fixed newstyle handshake (NBD_OPT_GO, with
// NBD_OPT_EXPORT_NAME where GO is not supported), then the raw byte stream of the transmission
// phase handed to the image's reply parser. Reads land in one fixed buffer (net's onread): no
// allocation per read. Errors opening are StorageErrors with one line naming the disk.
import * as net from 'node:net';
import { StorageError } from '../errors';
import type { TargetSpec } from '../target';
import {
  decodeExportNameReply,
  decodeGreeting,
  decodeInfo,
  decodeOptReplyHeader,
  encodeClientFlags,
  encodeExportNameOption,
  encodeGo,
  encodeOption,
  EXPORT_NAME_REPLY_BYTES,
  EXPORT_NAME_ZEROES,
  FLAG_NO_ZEROES,
  GREETING_BYTES,
  NbdProtocolError,
  OPT_GO,
  OPT_REPLY_HEADER_BYTES,
  optionErrorName,
  REP_ACK,
  REP_ERR_POLICY,
  REP_ERR_TLS_REQD,
  REP_ERR_UNKNOWN,
  REP_ERR_UNSUP,
  REP_FLAG_ERROR,
  REP_INFO,
  type BlockSizeInfo,
  type ExportInfo,
} from './protocol';

export type NbdTarget = Extract<TargetSpec, { driver: 'nbd' }>;

/** What the handshake learnt about the export. */
export interface Negotiated extends ExportInfo {
  blockSize: BlockSizeInfo | null;
  /** GO was not supported: NBD_OPT_EXPORT_NAME was used. */
  legacyExportName: boolean;
}

const READ_BUFFER_BYTES = 256 * 1024;
/** Option replies not read yet; a server flooding the handshake is cut off here. */
const MAX_HANDSHAKE_BUFFERED = 64 * 1024;

/** Printable and short: server-sent text in one-line messages. */
function printable(bytes: Uint8Array): string {
  const s = Buffer.from(bytes).toString('utf8').replace(/[^\x20-\x7e]/g, '?');
  return s.length > 80 ? `${s.slice(0, 80)}...` : s;
}

export class NbdConnection {
  /** Transmission-phase bytes: buf[start..end), valid only during the call. */
  onData: ((buf: Buffer, start: number, end: number) => void) | null = null;
  /** Called once when the connection ends for any reason after the handshake. */
  onClose: ((why: string) => void) | null = null;
  private closeReason: string | null = null;
  private closed = false;
  // Handshake reader: bytes received and a single pending want.
  private acc: Buffer[] = [];
  private accBytes = 0;
  private want: { n: number; resolve: (b: Buffer) => void; reject: (e: Error) => void } | null = null;
  private handshaking = true;
  /** Why the handshake was given up (timeout, protocol violation). */
  private failure: Error | null = null;

  private constructor(
    readonly socket: net.Socket,
    private readonly name: string,
  ) {
    socket.on('error', (e: NodeJS.ErrnoException) => {
      this.closeReason ??= e.code ?? e.message;
    });
    socket.on('close', () => this.ended(this.closeReason ?? 'the server closed the connection'));
  }

  /** Connects and negotiates; throws a StorageError (one line) on failure. */
  static async open(spec: NbdTarget, name: string, handshakeTimeoutMs: number): Promise<{ conn: NbdConnection; info: Negotiated }> {
    const readBuf = Buffer.allocUnsafe(READ_BUFFER_BYTES);
    let conn: NbdConnection | null = null;
    const onread = {
      buffer: readBuf,
      callback: (n: number, buf: Uint8Array): boolean => {
        conn?.received(buf as Buffer, n);
        return true;
      },
    };
    const socket =
      spec.transport === 'unix'
        ? net.createConnection({ path: spec.path, onread })
        : net.createConnection({ host: spec.host, port: spec.port, onread, noDelay: true });
    // A server that vanished without closing (a partition) shows up through keepalive.
    if (spec.transport === 'tcp') socket.setKeepAlive(true, 5000);
    conn = new NbdConnection(socket, name);
    const c = conn;
    const timer = setTimeout(() => c.fail(new StorageError('ETIMEDOUT', `nbd ${name}: no answer from the server within ${handshakeTimeoutMs} ms`)), handshakeTimeoutMs);
    try {
      await new Promise<void>((resolve, reject) => {
        socket.once('connect', resolve);
        socket.once('error', reject);
        socket.once('close', () => reject(c.failure ?? c.closedError()));
      }).catch((e: NodeJS.ErrnoException) => {
        throw e instanceof StorageError ? e : c.connectError(spec, e);
      });
      const info = await c.negotiate(spec);
      if (c.accBytes !== 0) throw new NbdProtocolError('the server sent data before any request');
      c.handshaking = false;
      c.acc = [];
      return { conn: c, info };
    } catch (e) {
      c.destroy();
      if (e instanceof StorageError) throw e;
      if (e instanceof NbdProtocolError) throw new StorageError('EPROTO', `nbd ${name}: handshake: ${e.message}`);
      throw new StorageError('EIO', `nbd ${name}: handshake: ${(e as Error).message}`);
    } finally {
      clearTimeout(timer);
    }
  }

  get isClosed(): boolean {
    return this.closed;
  }

  write(chunk: Uint8Array): void {
    if (!this.closed) this.socket.write(chunk);
  }

  cork(): void {
    this.socket.cork();
  }

  uncork(): void {
    this.socket.uncork();
  }

  /** Ends the connection at once (protocol violation, close); onClose follows once. */
  destroy(why?: string): void {
    if (why !== undefined) this.closeReason ??= why;
    this.socket.destroy();
  }

  /** Sends what is queued, then half-closes; the server closes its side. */
  end(last: Uint8Array): void {
    if (!this.closed) this.socket.end(last);
  }

  private connectError(spec: NbdTarget, e: NodeJS.ErrnoException): StorageError {
    const where = spec.transport === 'unix' ? `socket ${spec.path}` : `${spec.host}:${spec.port}`;
    switch (e.code) {
      case 'ENOENT':
        return new StorageError('ENOENT', `nbd ${this.name}: server ${where} not found`);
      case 'ECONNREFUSED':
        return new StorageError('ECONNREFUSED', `nbd ${this.name}: the server at ${where} refused the connection`);
      case 'EACCES':
        return new StorageError('EACCES', `nbd ${this.name}: permission denied on ${where}`);
      case 'ENOTFOUND':
      case 'EAI_AGAIN':
        return new StorageError('ENOENT', `nbd ${this.name}: host ${spec.transport === 'tcp' ? spec.host : ''} not found`);
      default:
        return new StorageError(e.code ?? 'EIO', `nbd ${this.name}: cannot connect to ${where}: ${e.code ?? e.message}`);
    }
  }

  private async negotiate(spec: NbdTarget): Promise<Negotiated> {
    const serverFlags = decodeGreeting(await this.read(GREETING_BYTES));
    this.socket.write(encodeClientFlags(serverFlags));
    this.socket.write(encodeOption(OPT_GO, encodeGo(spec.exportName)));
    let exportInfo: ExportInfo | null = null;
    let blockSize: BlockSizeInfo | null = null;
    for (;;) {
      const h = decodeOptReplyHeader(await this.read(OPT_REPLY_HEADER_BYTES), OPT_GO);
      const data = await this.read(h.length);
      if (h.type === REP_INFO) {
        const info = decodeInfo(data);
        if (info !== null && 'export' in info) exportInfo = info.export;
        else if (info !== null) blockSize = info.blockSize;
      } else if (h.type === REP_ACK) {
        if (exportInfo === null) throw new NbdProtocolError('NBD_OPT_GO acknowledged without NBD_INFO_EXPORT');
        return { ...exportInfo, blockSize, legacyExportName: false };
      } else if (h.type === REP_ERR_UNSUP) {
        return this.exportNameFallback(spec, serverFlags);
      } else if (h.type >= REP_FLAG_ERROR) {
        throw this.optionError(spec, h.type, data);
      } else {
        throw new NbdProtocolError(`unexpected reply type ${h.type} to NBD_OPT_GO`);
      }
    }
  }

  private async exportNameFallback(spec: NbdTarget, serverFlags: number): Promise<Negotiated> {
    this.socket.write(encodeExportNameOption(spec.exportName));
    const zeroes = (serverFlags & FLAG_NO_ZEROES) !== 0 ? 0 : EXPORT_NAME_ZEROES;
    let reply: Buffer;
    try {
      reply = await this.read(EXPORT_NAME_REPLY_BYTES + zeroes);
    } catch (e) {
      // The only refusal NBD_OPT_EXPORT_NAME has is closing the connection.
      if (e instanceof StorageError && e.code === 'ECONNRESET' && this.failure === null) {
        throw new StorageError('ENOENT', `nbd ${this.name}: export '${printable(Buffer.from(spec.exportName))}' refused or not found (the server closed the connection)`);
      }
      throw e;
    }
    return { ...decodeExportNameReply(reply), blockSize: null, legacyExportName: true };
  }

  private optionError(spec: NbdTarget, type: number, data: Buffer): StorageError {
    const detail = data.byteLength > 0 ? `: ${printable(data)}` : '';
    const exportName = `'${printable(Buffer.from(spec.exportName))}'`;
    if (type === REP_ERR_UNKNOWN) return new StorageError('ENOENT', `nbd ${this.name}: export ${exportName} not found on the server${detail}`);
    if (type === REP_ERR_POLICY || type === REP_ERR_TLS_REQD) {
      return new StorageError('EACCES', `nbd ${this.name}: the server refused export ${exportName} (${optionErrorName(type)})${detail}`);
    }
    return new StorageError('EIO', `nbd ${this.name}: the server refused export ${exportName} (${optionErrorName(type)})${detail}`);
  }

  /** Handshake only: resolves with exactly n bytes. */
  private read(n: number): Promise<Buffer> {
    if (this.closed) return Promise.reject(this.closedError());
    return new Promise((resolve, reject) => {
      this.want = { n, resolve, reject };
      this.satisfy();
    });
  }

  private satisfy(): void {
    const w = this.want;
    if (w === null || this.accBytes < w.n) return;
    const all = this.acc.length === 1 ? this.acc[0]! : Buffer.concat(this.acc, this.accBytes);
    const out = Buffer.from(all.subarray(0, w.n));
    const rest = all.subarray(w.n);
    this.acc = rest.byteLength > 0 ? [rest] : [];
    this.accBytes = rest.byteLength;
    this.want = null;
    w.resolve(out);
  }

  private received(buf: Buffer, n: number): void {
    if (n <= 0) return;
    if (!this.handshaking) {
      this.onData?.(buf, 0, n);
      return;
    }
    // Handshake data is copied out of the shared read buffer; bounded by the wants' sizes.
    if (this.accBytes + n > MAX_HANDSHAKE_BUFFERED) return this.fail(new NbdProtocolError('the server sent more than the handshake asked for'));
    this.acc.push(Buffer.from(buf.subarray(0, n)));
    this.accBytes += n;
    this.satisfy();
  }

  private fail(e: Error): void {
    this.failure ??= e;
    const w = this.want;
    this.want = null;
    this.socket.destroy();
    w?.reject(e);
  }

  private closedError(): Error {
    if (this.failure !== null) return this.failure;
    return new StorageError('ECONNRESET', `nbd ${this.name}: the server closed the connection during the handshake (${this.closeReason ?? 'end of stream'})`);
  }

  private ended(why: string): void {
    if (this.closed) return;
    this.closed = true;
    if (this.want !== null) {
      const w = this.want;
      this.want = null;
      w.reject(this.closedError());
    }
    if (!this.handshaking) this.onClose?.(why);
  }
}
