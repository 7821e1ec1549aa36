// xenstore wire framing (xs_wire.h): a 16-byte little-endian header, then up to 4096 bytes of
// payload. Pure: no I/O.

export const XsType = {
  CONTROL: 0,
  DIRECTORY: 1,
  READ: 2,
  GET_PERMS: 3,
  WATCH: 4,
  UNWATCH: 5,
  TRANSACTION_START: 6,
  TRANSACTION_END: 7,
  INTRODUCE: 8,
  RELEASE: 9,
  GET_DOMAIN_PATH: 10,
  WRITE: 11,
  MKDIR: 12,
  RM: 13,
  SET_PERMS: 14,
  WATCH_EVENT: 15,
  ERROR: 16,
  IS_DOMAIN_INTRODUCED: 17,
  RESUME: 18,
  SET_TARGET: 19,
  // 20 was RESTRICT, removed from Xen: invalid.
  RESET_WATCHES: 21,
  DIRECTORY_PART: 22,
  GET_FEATURE: 23,
  SET_FEATURE: 24,
  GET_QUOTA: 25,
  SET_QUOTA: 26,
  INVALID: 0xffff,
} as const;

export type XsTypeName = keyof typeof XsType;

const typeNames = new Map<number, XsTypeName>(
  (Object.entries(XsType) as [XsTypeName, number][]).map(([k, v]) => [v, k]),
);

/** The name of a message type, or `type<N>` for an unknown one (for logs). */
export function xsTypeName(type: number): string {
  return typeNames.get(type) ?? `type${type}`;
}

export const HEADER_SIZE = 16;
/** Largest payload in either direction; a larger one kills the connection. */
export const XENSTORE_PAYLOAD_MAX = 4096;
export const XENSTORE_ABS_PATH_MAX = 3072;
export const XENSTORE_REL_PATH_MAX = 2048;

export interface XsFrame {
  type: number;
  reqId: number;
  txId: number;
  /** May be a view into a larger receive buffer: copy it to keep it past the callback. */
  payload: Buffer;
}

export function writeHeader(buf: Buffer, type: number, reqId: number, txId: number, len: number): void {
  buf.writeUInt32LE(type, 0);
  buf.writeUInt32LE(reqId >>> 0, 4);
  buf.writeUInt32LE(txId >>> 0, 8);
  buf.writeUInt32LE(len, 12);
}

/** One frame with a payload given as bytes. Does not check the payload limit. */
export function encodeFrame(type: number, reqId: number, txId: number, payload: Uint8Array): Buffer {
  const buf = Buffer.allocUnsafe(HEADER_SIZE + payload.length);
  writeHeader(buf, type, reqId, txId, payload.length);
  buf.set(payload, HEADER_SIZE);
  return buf;
}

/**
 * One frame whose payload is `parts`, each followed by a NUL unless `lastRaw` is set (then the last
 * part is written as is: WRITE's value). Strings are UTF-8. Returns undefined when the payload
 * would exceed XENSTORE_PAYLOAD_MAX.
 */
export function encodeStringsFrame(
  type: number,
  reqId: number,
  txId: number,
  parts: readonly (string | Uint8Array)[],
  lastRaw = false,
): Buffer | undefined {
  let len = 0;
  for (let i = 0; i < parts.length; i++) {
    const p = parts[i];
    len += typeof p === 'string' ? Buffer.byteLength(p, 'utf8') : p.length;
    if (!(lastRaw && i === parts.length - 1)) len += 1;
  }
  if (len > XENSTORE_PAYLOAD_MAX) return undefined;
  const buf = Buffer.allocUnsafe(HEADER_SIZE + len);
  writeHeader(buf, type, reqId, txId, len);
  let off = HEADER_SIZE;
  for (let i = 0; i < parts.length; i++) {
    const p = parts[i];
    if (typeof p === 'string') off += buf.write(p, off, 'utf8');
    else {
      buf.set(p, off);
      off += p.length;
    }
    if (!(lastRaw && i === parts.length - 1)) buf[off++] = 0;
  }
  return buf;
}

/**
 * Builds frames one after another in a reused buffer, so that sending a frame allocates nothing:
 * take() hands out the bytes written since the last take() as one view, for one write.
 * Positions are logical byte counts (they survive the buffer being replaced when full).
 */
export class FrameWriter {
  private buf: Buffer;
  private start = 0;
  private pos = 0;
  private frameStart = 0;
  private frameLen = 0;
  private overflow = false;
  /** Bytes ever taken. */
  private taken = 0;

  constructor(private readonly chunkSize = 64 * 1024) {
    this.buf = Buffer.allocUnsafe(chunkSize);
  }

  /** Bytes written and not yet taken. */
  get pending(): number {
    return this.pos - this.start;
  }

  /** Logical position after the last complete frame (for takeUpTo). */
  get position(): number {
    return this.taken + this.pos - this.start;
  }

  beginFrame(type: number, reqId: number, txId: number): void {
    if (this.buf.length - this.pos < HEADER_SIZE + XENSTORE_PAYLOAD_MAX) this.renew();
    this.frameStart = this.pos;
    this.frameLen = 0;
    this.overflow = false;
    this.buf.writeUInt32LE(type, this.pos);
    this.buf.writeUInt32LE(reqId >>> 0, this.pos + 4);
    this.buf.writeUInt32LE(txId >>> 0, this.pos + 8);
    this.pos += HEADER_SIZE;
  }

  putString(s: string, encoding: BufferEncoding = 'utf8'): void {
    const n = Buffer.byteLength(s, encoding);
    if (this.reserve(n)) this.pos += this.buf.write(s, this.pos, encoding);
  }

  putBytes(b: Uint8Array): void {
    if (this.reserve(b.length)) {
      this.buf.set(b, this.pos);
      this.pos += b.length;
    }
  }

  putNul(): void {
    if (this.reserve(1)) this.buf[this.pos++] = 0;
  }

  /** Completes the frame; false (and the frame is dropped) when its payload exceeded the limit. */
  endFrame(): boolean {
    if (this.overflow) {
      this.pos = this.frameStart;
      return false;
    }
    this.buf.writeUInt32LE(this.frameLen, this.frameStart + 12);
    return true;
  }

  /** The bytes of every complete frame not yet taken, as one view; empty when there are none. */
  take(): Buffer {
    return this.takeUpTo(this.position);
  }

  /** Like take(), but only up to a logical position returned by `position` earlier. */
  takeUpTo(position: number): Buffer {
    const n = Math.min(position - this.taken, this.pos - this.start);
    if (n <= 0) return EMPTY_BUFFER;
    const out = this.buf.subarray(this.start, this.start + n);
    this.start += n;
    this.taken += n;
    return out;
  }

  private reserve(n: number): boolean {
    if (this.overflow) return false;
    this.frameLen += n;
    if (this.frameLen > XENSTORE_PAYLOAD_MAX) {
      this.overflow = true;
      return false;
    }
    return true;
  }

  /** Moves what is not taken yet (and the frame in progress) into a fresh buffer. */
  private renew(): void {
    // Doubling: thousands of requests queued in one tick (recovery) must not copy quadratically.
    const pending = this.pos - this.start;
    const next = Buffer.allocUnsafe(Math.max(this.chunkSize, 2 * pending + HEADER_SIZE + XENSTORE_PAYLOAD_MAX));
    this.buf.copy(next, 0, this.start, this.pos);
    this.pos = pending;
    this.frameStart -= this.start;
    this.start = 0;
    this.buf = next;
  }
}

const EMPTY_BUFFER = Buffer.alloc(0);

export class FrameTooLargeError extends Error {
  constructor(readonly len: number) {
    super(`payload length ${len} exceeds ${XENSTORE_PAYLOAD_MAX}`);
    this.name = 'FrameTooLargeError';
  }
}

/**
 * Reassembles frames from a byte stream cut anywhere. Frames lying inside one received chunk are
 * handed out as views of it (no copy); a frame spanning chunks is assembled in a stash buffer.
 */
export class FrameDecoder {
  private stash: Buffer | undefined;
  private stashLen = 0;

  /** True when a partial frame is buffered (a peer that stops here sent a short frame). */
  get hasPartial(): boolean {
    return this.stashLen > 0;
  }

  /**
   * Feeds bytes; calls onFrame for every complete frame, in order. Throws FrameTooLargeError on a
   * header announcing more than XENSTORE_PAYLOAD_MAX bytes (the stream is then unusable).
   */
  push(chunk: Buffer, onFrame: (frame: XsFrame) => void): void {
    let off = 0;
    if (this.stashLen > 0) {
      off = this.fill(chunk, off, HEADER_SIZE);
      if (this.stashLen < HEADER_SIZE) return;
      const stash = this.stash!;
      const len = stash.readUInt32LE(12);
      if (len > XENSTORE_PAYLOAD_MAX) throw new FrameTooLargeError(len);
      off = this.fill(chunk, off, HEADER_SIZE + len);
      if (this.stashLen < HEADER_SIZE + len) return;
      // The frame keeps the stash: start a fresh one next time.
      this.stash = undefined;
      this.stashLen = 0;
      onFrame(readFrame(stash, 0, len));
    }
    while (chunk.length - off >= HEADER_SIZE) {
      const len = chunk.readUInt32LE(off + 12);
      if (len > XENSTORE_PAYLOAD_MAX) throw new FrameTooLargeError(len);
      if (chunk.length - off < HEADER_SIZE + len) break;
      const frame = readFrame(chunk, off, len);
      off += HEADER_SIZE + len;
      onFrame(frame);
    }
    if (off < chunk.length) this.fill(chunk, off, chunk.length - off);
  }

  /** Copies from chunk[off..] into the stash until it holds `upto` bytes; returns the new offset. */
  private fill(chunk: Buffer, off: number, upto: number): number {
    if (!this.stash) this.stash = Buffer.allocUnsafe(HEADER_SIZE + XENSTORE_PAYLOAD_MAX);
    const n = Math.min(upto - this.stashLen, chunk.length - off);
    if (n <= 0) return off;
    chunk.copy(this.stash, this.stashLen, off, off + n);
    this.stashLen += n;
    return off + n;
  }
}

/**
 * Cuts bytes into whole frames (views), for transports that take one message per write (the
 * Linux xenbus device acts on the first message of a write and drops the rest). `carry` holds an
 * incomplete tail from the previous call; the new tail is returned in `rest`.
 */
export function frameSlices(bytes: Buffer, carry?: Buffer): { frames: Buffer[]; rest: Buffer | undefined } {
  const buf = carry && carry.length > 0 ? Buffer.concat([carry, bytes]) : bytes;
  const frames: Buffer[] = [];
  let off = 0;
  while (buf.length - off >= HEADER_SIZE) {
    const end = off + HEADER_SIZE + buf.readUInt32LE(off + 12);
    if (end > buf.length) break;
    frames.push(buf.subarray(off, end));
    off = end;
  }
  return { frames, rest: off < buf.length ? Buffer.from(buf.subarray(off)) : undefined };
}

function readFrame(buf: Buffer, off: number, len: number): XsFrame {
  return {
    type: buf.readUInt32LE(off),
    reqId: buf.readUInt32LE(off + 4),
    txId: buf.readUInt32LE(off + 8),
    payload: buf.subarray(off + HEADER_SIZE, off + HEADER_SIZE + len),
  };
}
