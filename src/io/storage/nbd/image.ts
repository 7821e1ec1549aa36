// The NBD BlockImage: a pooled slot table of requests in flight, a reply parser that copies read
// payloads straight into the caller's buffer, and the lost-server rule (reconnect with backoff,
// re-issue in order, stall up to timeoutMs, then EIO until the server is back).
// Per request on the hot path: no promise, no closure; a slot is reused and its 28-byte header
// buffer with it. Handles are (generation, slot index): a reply the table does not expect ends
// the connection and counts as a lost server; nothing unexpected reaches a caller's buffer.
import { bufferProblem, rangeProblem } from '../bounds';
import { StorageError } from '../errors';
import { formatTarget } from '../target';
import type { BlockImage, DiscardSupport, IoCallback, OpenImageOptions, StorageCapabilities } from '../port';
import { NbdConnection, type NbdTarget, type Negotiated } from './connection';
import {
  CMD_DISC,
  CMD_FLAG_FUA,
  CMD_FLUSH,
  CMD_READ,
  CMD_TRIM,
  CMD_WRITE,
  CMD_WRITE_ZEROES,
  encodeRequest,
  replyErrorCode,
  REQUEST_BYTES,
  SIMPLE_REPLY_BYTES,
  SIMPLE_REPLY_MAGIC,
  TF_READ_ONLY,
  TF_SEND_FLUSH,
  TF_SEND_FUA,
  TF_SEND_TRIM,
  TF_SEND_WRITE_ZEROES,
} from './protocol';

export interface NbdLog {
  info(obj: object, msg: string): void;
  warn(obj: object, msg: string): void;
  error(obj: object, msg: string): void;
}

export interface NbdOptions {
  /** How long a lost server may stall requests before they fail with EIO (default 60000). */
  timeoutMs?: number;
  log?: NbdLog;
  /** How logs and errors name the disk (default the canonical target). */
  name?: string;
}

export interface NbdImage extends BlockImage {
  readonly driver: 'nbd';
  readonly connected: boolean;
  /** Times the server was lost and came back. */
  readonly reconnects: number;
  /** Date.now() when the server was lost; null while connected. */
  readonly stalledSince: number | null;
}

const SECTOR = 512;
const DEFAULT_TIMEOUT_MS = 60_000;
/** The payload limit when the server states none (the NBD protocol's default maximum). */
const DEFAULT_MAX_PAYLOAD = 32 * 1024 * 1024;
/** maxTransferBytes is at least this: larger requests are split into the server's maximum. */
const MIN_ADVERTISED_TRANSFER = 1024 * 1024;
/** Trim and write-zeroes carry no payload; their length is a 32-bit field: send 1 GiB pieces. */
const MAX_NO_PAYLOAD = 1024 * 1024 * 1024;
const BACKOFF_FIRST_MS = 100;
const BACKOFF_MAX_MS = 2000;
const NOOP_LOG: NbdLog = { info() {}, warn() {}, error() {} };

/** One request; pooled. A request larger than the server takes is sent piece by piece. */
class Slot {
  gen = 0;
  type = 0;
  flags = 0;
  buf: Uint8Array = EMPTY;
  bufOffset = 0;
  pos = 0;
  len = 0;
  /** Bytes already answered. */
  done = 0;
  /** Bytes of the piece in flight. */
  piece = 0;
  /** Sent on the current connection and not answered. */
  sent = false;
  cb: IoCallback | null = null;
  // The issue-order list of unanswered requests (re-issued in this order after a loss).
  prev: Slot | null = null;
  next: Slot | null = null;
  readonly header = Buffer.alloc(REQUEST_BYTES);
  constructor(readonly index: number) {}
}

const EMPTY = new Uint8Array(0);

export async function openNbdImage(spec: NbdTarget, opts: OpenImageOptions & NbdOptions = {}): Promise<NbdImage> {
  const name = opts.name ?? formatTarget(spec);
  const timeoutMs = opts.timeoutMs ?? DEFAULT_TIMEOUT_MS;
  const { conn, info } = await NbdConnection.open(spec, name, handshakeTimeout(timeoutMs));
  try {
    const readOnlyExport = (info.flags & TF_READ_ONLY) !== 0;
    if (readOnlyExport && opts.readOnly !== true) {
      throw new StorageError('EROFS', `nbd ${name}: the export is read-only: attach it read-only`);
    }
    const minimum = info.blockSize?.minimum ?? 1;
    if (minimum > 4096) throw new StorageError('EINVAL', `nbd ${name}: the export's minimum block size ${minimum} is above 4096`);
    const sectorSize = Math.max(SECTOR, minimum);
    const sizeBytes = Math.floor(info.sizeBytes / sectorSize) * sectorSize;
    if (sizeBytes === 0) throw new StorageError('EINVAL', `nbd ${name}: the export is smaller than one ${sectorSize}-byte sector (${info.sizeBytes} bytes)`);
    return new NbdImageImpl(spec, name, timeoutMs, opts.log ?? NOOP_LOG, opts.readOnly === true, info, sectorSize, sizeBytes, conn);
  } catch (e) {
    conn.destroy();
    throw e;
  }
}

/** Handshakes are short: bounded apart from the stall budget. */
function handshakeTimeout(timeoutMs: number): number {
  return Math.min(10_000, Math.max(2000, timeoutMs));
}

class NbdImageImpl implements NbdImage {
  readonly driver = 'nbd' as const;
  readonly path: string;
  readonly capabilities: StorageCapabilities;
  readonly sizeBytes: number;
  readonly readOnly: boolean;
  readonly sectorSize: number;
  readonly physicalSectorSize: number;
  readonly discardSupport: DiscardSupport | null;
  readonly direct = false;
  reconnects = 0;
  stalledSince: number | null = null;

  private conn: NbdConnection | null = null;
  private readonly flags: number;
  private readonly maxPayload: number;
  private readonly maxNoPayload: number;
  private readonly slots: Slot[] = [];
  private readonly free: Slot[] = [];
  private head: Slot | null = null;
  private tail: Slot | null = null;
  private inflight = 0;
  // Reply parser state (reset with each connection).
  private readonly rxHeader = Buffer.alloc(SIMPLE_REPLY_BYTES);
  private rxFill = 0;
  private rxSlot: Slot | null = null;
  private rxLeft = 0;
  private readonly onDataBound = (buf: Buffer, start: number, end: number): void => this.onData(buf, start, end);
  // Corking: a batch between plug() and unplug() (or one event-loop turn) is one write.
  private plugged: NbdConnection | null = null;
  private autoCorked: NbdConnection | null = null;
  private readonly uncorkBound = (): void => {
    const c = this.autoCorked;
    this.autoCorked = null;
    c?.uncork();
  };
  // The lost server.
  private failFast = false;
  private backoffMs = BACKOFF_FIRST_MS;
  private reconnectTimer: NodeJS.Timeout | null = null;
  private stallTimer: NodeJS.Timeout | null = null;
  private lostWhy = '';
  private refusedWhy: string | null = null;
  private closing: Promise<void> | null = null;
  private drained: (() => void) | null = null;

  constructor(
    private readonly spec: NbdTarget,
    private readonly name: string,
    private readonly timeoutMs: number,
    private readonly log: NbdLog,
    readOnly: boolean,
    info: Negotiated,
    sectorSize: number,
    sizeBytes: number,
    conn: NbdConnection,
  ) {
    this.path = name;
    this.flags = info.flags;
    this.readOnly = readOnly;
    this.sectorSize = sectorSize;
    this.sizeBytes = sizeBytes;
    const bs = info.blockSize;
    const preferred = bs?.preferred ?? 4096;
    this.physicalSectorSize = Math.min(4096, Math.max(sectorSize, preferred));
    const serverMax = bs === null || bs.maximum === 0xffffffff ? DEFAULT_MAX_PAYLOAD : Math.min(bs.maximum, DEFAULT_MAX_PAYLOAD);
    this.maxPayload = Math.max(sectorSize, Math.floor(serverMax / sectorSize) * sectorSize);
    this.maxNoPayload = MAX_NO_PAYLOAD;
    const trim = !readOnly && (info.flags & TF_SEND_TRIM) !== 0;
    this.discardSupport = trim ? { granularity: Math.max(sectorSize, preferred), alignment: 0, secure: false } : null;
    this.capabilities = {
      volatileCache: (info.flags & TF_SEND_FLUSH) !== 0,
      fua: (info.flags & TF_SEND_FUA) !== 0,
      writeZeroes: !readOnly && (info.flags & TF_SEND_WRITE_ZEROES) !== 0,
      maxTransferBytes: Math.max(this.maxPayload, MIN_ADVERTISED_TRANSFER),
      bufferAlignment: 1,
    };
    this.adopt(conn);
  }

  get connected(): boolean {
    return this.conn !== null;
  }

  read(buf: Uint8Array, bufOffset: number, len: number, pos: number, cb: IoCallback): void {
    const refusal = this.check('read', buf, bufOffset, len, pos);
    if (refusal !== null) return process.nextTick(cb, refusal);
    this.issue(CMD_READ, 0, buf, bufOffset, len, pos, cb);
  }

  write(buf: Uint8Array, bufOffset: number, len: number, pos: number, cb: IoCallback, fua?: boolean): void {
    const refusal = this.readOnly ? this.refuse('EROFS', 'write to a read-only image') : this.check('write', buf, bufOffset, len, pos);
    if (refusal !== null) return process.nextTick(cb, refusal);
    this.issue(CMD_WRITE, fua === true && this.capabilities.fua ? CMD_FLAG_FUA : 0, buf, bufOffset, len, pos, cb);
  }

  flush(cb: IoCallback): void {
    if (this.closing !== null) return process.nextTick(cb, this.refuse('EBADF', 'image closed'));
    // Without a volatile cache every write is stable when answered.
    if (!this.capabilities.volatileCache || this.readOnly) return process.nextTick(cb, null);
    this.issue(CMD_FLUSH, 0, EMPTY, 0, 0, 0, cb);
  }

  discard(pos: number, len: number, secure: boolean, cb: IoCallback): void {
    let refusal: StorageError | null;
    if (this.closing !== null) refusal = this.refuse('EBADF', 'image closed');
    else if (this.readOnly) refusal = this.refuse('EROFS', 'discard on a read-only image');
    else if (this.discardSupport === null || secure) refusal = this.refuse('EOPNOTSUPP', `${secure ? 'secure ' : ''}discard not supported`);
    else refusal = this.checkRange('discard', len, pos);
    if (refusal !== null) return process.nextTick(cb, refusal);
    this.issue(CMD_TRIM, 0, EMPTY, 0, len, pos, cb);
  }

  writeZeroes(pos: number, len: number, cb: IoCallback): void {
    let refusal: StorageError | null;
    if (this.closing !== null) refusal = this.refuse('EBADF', 'image closed');
    else if (this.readOnly) refusal = this.refuse('EROFS', 'write-zeroes on a read-only image');
    else if (!this.capabilities.writeZeroes) refusal = this.refuse('EOPNOTSUPP', 'write-zeroes not supported');
    else refusal = this.checkRange('write-zeroes', len, pos);
    if (refusal !== null) return process.nextTick(cb, refusal);
    this.issue(CMD_WRITE_ZEROES, 0, EMPTY, 0, len, pos, cb);
  }

  plug(): void {
    if (this.plugged !== null || this.conn === null) return;
    this.plugged = this.conn;
    this.conn.cork();
  }

  unplug(): void {
    const c = this.plugged;
    this.plugged = null;
    c?.uncork();
  }

  /** NBD tells no size changes to a client that did not negotiate them: the size stays. */
  refreshSize(): Promise<number> {
    return Promise.resolve(this.sizeBytes);
  }

  close(): Promise<void> {
    if (this.closing === null) {
      this.closing = (async () => {
        if (this.inflight > 0) await new Promise<void>((resolve) => (this.drained = resolve));
        this.clearTimers();
        const conn = this.conn;
        this.conn = null;
        if (conn === null || conn.isClosed) return;
        const disc = Buffer.alloc(REQUEST_BYTES);
        encodeRequest(disc, 0, CMD_DISC, 0, 0, 0, 0, 0);
        await new Promise<void>((resolve) => {
          const t = setTimeout(() => {
            conn.destroy();
            resolve();
          }, 1000);
          conn.socket.once('close', () => {
            clearTimeout(t);
            resolve();
          });
          conn.end(disc);
        });
      })();
    }
    return this.closing;
  }

  // ---- Requests ----

  private issue(type: number, flags: number, buf: Uint8Array, bufOffset: number, len: number, pos: number, cb: IoCallback): void {
    if (len === 0 && type !== CMD_FLUSH) return process.nextTick(cb, null);
    if (this.failFast) return process.nextTick(cb, this.lostError());
    const s = this.free.pop() ?? this.newSlot();
    s.type = type;
    s.flags = flags;
    s.buf = buf;
    s.bufOffset = bufOffset;
    s.pos = pos;
    s.len = len;
    s.done = 0;
    s.cb = cb;
    s.prev = this.tail;
    s.next = null;
    if (this.tail !== null) this.tail.next = s;
    else this.head = s;
    this.tail = s;
    this.inflight++;
    // While the server is lost the request waits in the list; it is sent on reconnection.
    if (this.conn !== null) this.send(s, this.conn);
  }

  private newSlot(): Slot {
    const s = new Slot(this.slots.length);
    this.slots.push(s);
    return s;
  }

  /** Sends the next piece of s. */
  private send(s: Slot, conn: NbdConnection): void {
    const left = s.len - s.done;
    const max = s.type === CMD_READ || s.type === CMD_WRITE ? this.maxPayload : this.maxNoPayload;
    s.piece = left < max ? left : max;
    s.gen = (s.gen + 1) >>> 0;
    s.sent = true;
    encodeRequest(s.header, 0, s.type, s.flags, s.gen, s.index, s.pos + s.done, s.piece);
    if (this.plugged === null && this.autoCorked === null) {
      this.autoCorked = conn;
      conn.cork();
      process.nextTick(this.uncorkBound);
    }
    conn.write(s.header);
    if (s.type === CMD_WRITE) {
      const from = s.bufOffset + s.done;
      conn.write(s.buf.subarray(from, from + s.piece));
    }
  }

  /** The server answered s's piece. */
  private answered(s: Slot, error: number): void {
    s.sent = false;
    if (error !== 0) {
      const code = replyErrorCode(error);
      const what = s.type === CMD_READ ? 'read' : s.type === CMD_WRITE ? 'write' : s.type === CMD_FLUSH ? 'flush' : s.type === CMD_TRIM ? 'discard' : 'write-zeroes';
      return this.finish(s, this.refuse(code, `${what} of ${s.piece} bytes at ${s.pos + s.done}: the server answered ${code}`));
    }
    s.done += s.piece;
    if (s.done < s.len) {
      // The next piece; without a connection it waits in the list to be re-issued.
      if (this.conn !== null) this.send(s, this.conn);
      return;
    }
    this.finish(s, null);
  }

  private finish(s: Slot, err: StorageError | null): void {
    if (s.prev !== null) s.prev.next = s.next;
    else this.head = s.next;
    if (s.next !== null) s.next.prev = s.prev;
    else this.tail = s.prev;
    const cb = s.cb!;
    s.prev = s.next = null;
    s.cb = null;
    s.buf = EMPTY;
    s.sent = false;
    s.gen = (s.gen + 1) >>> 0;
    this.free.push(s);
    this.inflight--;
    if (this.inflight === 0 && this.drained !== null) {
      const resolve = this.drained;
      this.drained = null;
      resolve();
    }
    cb(err);
  }

  // ---- Replies (untrusted) ----

  private onData(buf: Buffer, start: number, end: number): void {
    const conn = this.conn;
    let i = start;
    while (i < end && this.conn === conn) {
      const s = this.rxSlot;
      if (s !== null) {
        // Read payload: straight into the caller's buffer, answered only once complete.
        const n = Math.min(end - i, this.rxLeft);
        buf.copy(s.buf, s.bufOffset + s.done + (s.piece - this.rxLeft), i, i + n);
        i += n;
        this.rxLeft -= n;
        if (this.rxLeft === 0) {
          this.rxSlot = null;
          this.answered(s, 0);
        }
        continue;
      }
      const n = Math.min(end - i, SIMPLE_REPLY_BYTES - this.rxFill);
      buf.copy(this.rxHeader, this.rxFill, i, i + n);
      i += n;
      this.rxFill += n;
      if (this.rxFill < SIMPLE_REPLY_BYTES) break;
      this.rxFill = 0;
      this.reply();
    }
  }

  private reply(): void {
    const h = this.rxHeader;
    if (h.readUInt32BE(0) !== SIMPLE_REPLY_MAGIC) return this.violation(`bad reply magic 0x${h.readUInt32BE(0).toString(16)}`);
    const error = h.readUInt32BE(4);
    const gen = h.readUInt32BE(8);
    const index = h.readUInt32BE(12);
    const s = index < this.slots.length ? this.slots[index]! : null;
    if (s === null || s.gen !== gen || !s.sent) return this.violation(`reply for handle ${gen}:${index}, not in flight`);
    // The server is going away: its answer is no answer, the request is re-issued elsewhere.
    if (error === 108) return this.violation('the server is shutting down (ESHUTDOWN)');
    if (error === 0 && s.type === CMD_READ) {
      this.rxSlot = s;
      this.rxLeft = s.piece;
      return;
    }
    this.answered(s, error);
  }

  private violation(why: string): void {
    this.lost(`protocol violation: ${why}`);
  }

  // ---- The lost server ----

  private adopt(conn: NbdConnection): void {
    this.conn = conn;
    this.rxFill = 0;
    this.rxSlot = null;
    this.rxLeft = 0;
    conn.onData = this.onDataBound;
    conn.onClose = (why) => {
      if (this.conn === conn) this.lost(why);
    };
  }

  private lost(why: string): void {
    const conn = this.conn;
    if (conn === null) return;
    this.conn = null;
    conn.onData = null;
    conn.destroy(why);
    if (this.plugged === conn) this.plugged = null;
    for (let s = this.head; s !== null; s = s.next) s.sent = false;
    this.rxSlot = null;
    if (this.closing !== null && this.inflight === 0) return;
    this.lostWhy = why;
    this.stalledSince = Date.now();
    this.log.warn({ disk: this.name, why, inFlight: this.inflight, timeoutMs: this.timeoutMs }, 'nbd server lost: requests stall while reconnecting');
    this.stallTimer = setTimeout(() => this.expire(), this.timeoutMs);
    this.backoffMs = BACKOFF_FIRST_MS;
    this.scheduleReconnect();
  }

  private scheduleReconnect(): void {
    if (this.closing !== null && this.inflight === 0) return;
    const delay = this.backoffMs;
    this.backoffMs = Math.min(BACKOFF_MAX_MS, this.backoffMs * 2);
    this.reconnectTimer = setTimeout(() => {
      this.reconnectTimer = null;
      void this.attempt();
    }, delay);
  }

  private async attempt(): Promise<void> {
    let opened: { conn: NbdConnection; info: Negotiated };
    try {
      opened = await NbdConnection.open(this.spec, this.name, handshakeTimeout(this.timeoutMs));
    } catch (e) {
      this.lostWhy = (e as Error).message;
      return this.scheduleReconnect();
    }
    const { conn, info } = opened;
    if (this.closing !== null && this.inflight === 0) return conn.destroy();
    const changed = this.changed(info);
    if (changed !== null) {
      // Serving a different disk under the guest would be worse than failing its requests.
      conn.destroy();
      if (this.refusedWhy !== changed) {
        this.refusedWhy = changed;
        this.log.error({ disk: this.name, why: changed }, 'nbd server back with a different export: requests fail until it is the same again');
      }
      this.lostWhy = changed;
      this.failAll();
      return this.scheduleReconnect();
    }
    const stalledMs = this.stalledSince === null ? 0 : Date.now() - this.stalledSince;
    this.clearTimers();
    this.adopt(conn);
    this.failFast = false;
    this.refusedWhy = null;
    this.stalledSince = null;
    this.reconnects++;
    let reissued = 0;
    conn.cork();
    for (let s = this.head; s !== null; s = s.next) {
      this.send(s, conn);
      reissued++;
    }
    conn.uncork();
    this.log.info({ disk: this.name, stalledMs, reissued, reconnects: this.reconnects }, 'nbd server back');
  }

  private changed(info: Negotiated): string | null {
    const size = Math.floor(info.sizeBytes / this.sectorSize) * this.sectorSize;
    if (size !== this.sizeBytes) return `the export is ${info.sizeBytes} bytes, was ${this.sizeBytes}`;
    if (!this.readOnly && (info.flags & TF_READ_ONLY) !== 0) return 'the export is read-only, was writable';
    return null;
  }

  /** The stall budget is spent: every waiting request fails, new ones fail at once. */
  private expire(): void {
    this.stallTimer = null;
    const failed = this.inflight;
    this.log.error(
      { disk: this.name, failed, timeoutMs: this.timeoutMs, why: this.lostWhy },
      'nbd server lost for longer than the timeout: waiting requests failed with EIO, new ones fail until it is back',
    );
    this.failAll();
  }

  private failAll(): void {
    this.failFast = true;
    while (this.head !== null) this.finish(this.head, this.lostError());
  }

  private lostError(): StorageError {
    const since = this.stalledSince === null ? '' : ` for ${Math.round((Date.now() - this.stalledSince) / 1000)} s`;
    return this.refuse('EIO', `the nbd server is lost${since} (${this.lostWhy})`);
  }

  private clearTimers(): void {
    if (this.stallTimer !== null) clearTimeout(this.stallTimer);
    if (this.reconnectTimer !== null) clearTimeout(this.reconnectTimer);
    this.stallTimer = this.reconnectTimer = null;
  }

  // ---- Checks ----

  private check(what: string, buf: Uint8Array, bufOffset: number, len: number, pos: number): StorageError | null {
    if (this.closing !== null) return this.refuse('EBADF', 'image closed');
    const outside = bufferProblem(what, buf, bufOffset, len);
    if (outside !== null) return this.refuse('EINVAL', outside);
    return this.checkRange(what, len, pos);
  }

  private checkRange(what: string, len: number, pos: number): StorageError | null {
    const outside = rangeProblem(what, len, pos, this.sizeBytes);
    if (outside !== null) return this.refuse('ERANGE', outside);
    if (this.sectorSize > SECTOR && (pos % this.sectorSize !== 0 || len % this.sectorSize !== 0)) {
      return this.refuse('EINVAL', `${what}: the export needs ${this.sectorSize}-byte multiples (pos ${pos}, ${len} bytes)`);
    }
    return null;
  }

  private refuse(code: string, message: string): StorageError {
    return new StorageError(code, `image ${this.name}: ${message}`, this.name);
  }
}
