/*
 * The simulated hypervisor's socket protocol (hv.sock): how a process (the daemon, a bench peer)
 * uses the simulated host's grant tables and event channels.
 *
 * Framing: every frame is an 8-byte little-endian header followed by `len` payload bytes.
 *   type u16 @0 | len u16 @2 (payload bytes) | id u32 @4
 * Requests carry a non-zero id that the reply echoes; one-way frames (NOTIFY, UNMASK, EVENT,
 * DOMAIN_UP/DOWN) carry id 0 and get no reply. All integers are u32 unless said otherwise.
 *
 * Client -> hypervisor
 *   HELLO            version, domid          first frame; -> DOMAIN_UP* then HELLO_OK
 *   MAP              domid, flags, ref[n]    flags bit 0 = writable; 1 <= n <= MAX_MAP_REFS
 *                                            -> MAP_OK handle, frame[n] (the frames to mmap
 *                                            from the domain's memory file) | ERROR GNTST_*
 *   UNMAP            handle                  -> OK
 *   BIND_INTERDOMAIN remote domid, port      -> PORT local port | ERROR E*
 *   ALLOC_UNBOUND    remote domid            -> PORT local port | ERROR E*
 *   UNBIND           port                    -> OK | ERROR E*
 *   NOTIFY           port                    one-way: signal the port's peer
 *   UNMASK           port                    one-way: re-enable delivery on the port
 * Hypervisor -> client
 *   HELLO_OK         version
 *   DOMAIN_UP        domid, generation, frames, grant frames, path (utf8, rest of payload)
 *   DOMAIN_DOWN      domid, generation
 *   MAP_OK / OK / PORT                       replies, as above
 *   ERROR            code (ascii) NUL message (utf8): code is an errno name or GNTST_* name
 *   EVENT            port                    the port fired; it stays masked until UNMASK
 *
 * Every frame fits in 64 KiB. A malformed frame (unknown type, wrong size, no HELLO first) gets an
 * ERROR EPROTO and the hypervisor closes the connection, which releases everything it held:
 * its grant mappings are unpinned and its ports closed (their peers become unbound).
 */

export const PROTOCOL_VERSION = 1;
export const HEADER_BYTES = 8;
export const MAX_PAYLOAD = 0xffff;
/** The most refs one MAP may carry (also bounded by MAX_PAYLOAD). */
export const MAX_MAP_REFS = 4096;

export const MSG = {
  HELLO: 1,
  MAP: 2,
  UNMAP: 3,
  BIND_INTERDOMAIN: 4,
  ALLOC_UNBOUND: 5,
  UNBIND: 6,
  NOTIFY: 7,
  UNMASK: 8,
  HELLO_OK: 0x81,
  DOMAIN_UP: 0x82,
  DOMAIN_DOWN: 0x83,
  MAP_OK: 0x84,
  OK: 0x85,
  PORT: 0x86,
  ERROR: 0x87,
  EVENT: 0x88,
} as const;

export const MAP_FLAG_WRITABLE = 1;

/** Called once per complete frame; the payload is buf[off, off + len) and valid only during the call. */
export type FrameHandler = (type: number, id: number, buf: Buffer, off: number, len: number) => void;

/** Splits a byte stream into frames without copying whole chunks. */
export class FrameReader {
  private partial: Buffer | null = null;
  private stopped = false;

  /**
   * headerCheck sees each header as soon as it arrives and returns false to reject the frame
   * (the reader then stops): garbage is refused without waiting for a payload that never comes.
   */
  constructor(
    private readonly onFrame: FrameHandler,
    private readonly headerCheck?: (type: number, id: number, len: number) => boolean,
  ) {}

  push(chunk: Buffer): void {
    let buf = chunk;
    if (this.partial) {
      buf = Buffer.concat([this.partial, chunk]);
      this.partial = null;
    }
    let off = 0;
    while (!this.stopped && buf.length - off >= HEADER_BYTES) {
      const type = buf.readUInt16LE(off);
      const len = buf.readUInt16LE(off + 2);
      const id = buf.readUInt32LE(off + 4);
      if (buf.length - off - HEADER_BYTES < len) {
        if (this.headerCheck && !this.headerCheck(type, id, len)) this.stop();
        break;
      }
      off += HEADER_BYTES + len;
      this.onFrame(type, id, buf, off - len, len);
    }
    if (!this.stopped && off < buf.length) this.partial = buf.subarray(off);
  }

  /** Ignores everything after the current frame (the connection is being dropped). */
  stop(): void {
    this.stopped = true;
    this.partial = null;
  }
}

/**
 * Builds frames into one buffer and hands it to `write` once per microtask, so that a burst of
 * notifications costs one socket write.
 */
export class FrameSink {
  private buf = Buffer.allocUnsafe(4096);
  private used = 0;
  private scheduled = false;
  private closed = false;
  private readonly flushBound = () => this.flush();

  constructor(private readonly write: (chunk: Buffer) => void) {}

  /** Starts a frame whose payload is `len` bytes; returns the payload offset in `buffer`. */
  begin(type: number, id: number, len: number): number {
    if (len > MAX_PAYLOAD) throw new RangeError(`frame payload ${len} > ${MAX_PAYLOAD}`);
    const need = this.used + HEADER_BYTES + len;
    if (need > this.buf.length) {
      const bigger = Buffer.allocUnsafe(Math.max(need, this.buf.length * 2));
      this.buf.copy(bigger, 0, 0, this.used);
      this.buf = bigger;
    }
    const off = this.used;
    this.buf.writeUInt16LE(type, off);
    this.buf.writeUInt16LE(len, off + 2);
    this.buf.writeUInt32LE(id >>> 0, off + 4);
    this.used = need;
    if (!this.scheduled) {
      this.scheduled = true;
      queueMicrotask(this.flushBound);
    }
    return off + HEADER_BYTES;
  }

  /** The buffer that begin()'s offset refers to (it changes when it grows). */
  get buffer(): Buffer {
    return this.buf;
  }

  send0(type: number, id: number): void {
    this.begin(type, id, 0);
  }

  send1(type: number, id: number, a: number): void {
    const o = this.begin(type, id, 4);
    this.buf.writeUInt32LE(a >>> 0, o);
  }

  send2(type: number, id: number, a: number, b: number): void {
    const o = this.begin(type, id, 8);
    this.buf.writeUInt32LE(a >>> 0, o);
    this.buf.writeUInt32LE(b >>> 0, o + 4);
  }

  /** Header words, then a list of u32s. */
  sendList(type: number, id: number, head: readonly number[], list: ArrayLike<number>): void {
    const o = this.begin(type, id, 4 * (head.length + list.length));
    for (let i = 0; i < head.length; i++) this.buf.writeUInt32LE(head[i] >>> 0, o + 4 * i);
    const base = o + 4 * head.length;
    for (let i = 0; i < list.length; i++) this.buf.writeUInt32LE(list[i] >>> 0, base + 4 * i);
  }

  /** Header words, then a utf8 string filling the rest of the payload. */
  sendText(type: number, id: number, head: readonly number[], text: string): void {
    const bytes = Buffer.from(text, 'utf8').subarray(0, MAX_PAYLOAD - 4 * head.length);
    const o = this.begin(type, id, 4 * head.length + bytes.length);
    for (let i = 0; i < head.length; i++) this.buf.writeUInt32LE(head[i] >>> 0, o + 4 * i);
    bytes.copy(this.buf, o + 4 * head.length);
  }

  sendError(id: number, code: string, message: string): void {
    this.sendText(MSG.ERROR, id, [], `${code}\0${message}`);
  }

  flush(): void {
    this.scheduled = false;
    if (this.used === 0 || this.closed) {
      this.used = 0;
      return;
    }
    // The socket may hold on to what it is given: hand it a copy sized to the frames (small
    // ones come from Node's buffer pool) and keep building in the same buffer.
    const out = Buffer.allocUnsafe(this.used);
    this.buf.copy(out, 0, 0, this.used);
    this.used = 0;
    this.write(out);
  }

  close(): void {
    this.closed = true;
    this.used = 0;
  }
}

/** Splits an ERROR payload into its code and message. */
export function parseError(buf: Buffer, off: number, len: number): { code: string; message: string } {
  const text = buf.toString('utf8', off, off + len);
  const nul = text.indexOf('\0');
  return nul < 0 ? { code: 'EPROTO', message: text } : { code: text.slice(0, nul), message: text.slice(nul + 1) };
}
