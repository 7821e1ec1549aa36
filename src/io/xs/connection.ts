// One client connection to xenstored: requests are pipelined and their replies matched by
// req_id; WATCH_EVENTs (req_id 0) are handed to a callback. When the stream ends every pending
// request fails with ECONNRESET. Requests issued in one tick leave in one write, built in a reused
// buffer; a reply is decoded before its promise settles, so a request costs one promise.
import type { Duplex } from 'node:stream';
import { XsError, isXsdErrno } from './errors';
import type { XsLogger } from './logger';
import { replyString, splitStrings } from './payload';
import { FrameDecoder, FrameWriter, XsType, xsTypeName, type XsFrame } from './wire';

/** Turns a reply payload into the value a request resolves with (may throw XsError). */
export type Decode<T> = (payload: Buffer) => T;

export const rawPayload: Decode<Buffer> = (p) => p;

interface Pending {
  type: number;
  decode: Decode<unknown>;
  resolve: (value: unknown) => void;
  reject: (err: XsError) => void;
}

export interface ConnectionEvents {
  onWatchEvent(path: string, token: string): void;
  onClose(err: Error | undefined): void;
}

export class XsConnection {
  private readonly pending = new Map<number, Pending>();
  private readonly decoder = new FrameDecoder();
  private readonly writer = new FrameWriter();
  private nextReqId = 1;
  private flushQueued = false;
  private isClosed = false;
  private closeError: Error | undefined;

  constructor(
    private readonly stream: Duplex,
    private readonly events: ConnectionEvents,
    private readonly log: XsLogger,
  ) {
    stream.on('data', (chunk: Buffer) => this.onData(chunk));
    stream.on('error', (err: Error) => {
      this.closeError ??= err;
      this.finish();
    });
    stream.on('end', () => this.finish());
    stream.on('close', () => this.finish());
  }

  get closed(): boolean {
    return this.isClosed;
  }

  get inFlight(): number {
    return this.pending.size;
  }

  /**
   * Sends one request whose payload is `parts` (each NUL-terminated, except the last when
   * `lastRaw`) and resolves with the decoded reply. Rejects with the xenstored errno as XsError,
   * E2BIG when the request would exceed the payload limit, ECONNRESET when the connection is lost.
   */
  request(type: number, txId: number, parts: readonly (string | Uint8Array)[], lastRaw?: boolean): Promise<Buffer>;
  request<T>(type: number, txId: number, parts: readonly (string | Uint8Array)[], lastRaw: boolean, decode: Decode<T>): Promise<T>;
  request<T>(
    type: number,
    txId: number,
    parts: readonly (string | Uint8Array)[],
    lastRaw = false,
    decode: Decode<T> = rawPayload as Decode<T>,
  ): Promise<T> {
    if (this.isClosed) return Promise.reject(new XsError('ECONNRESET', 'connection lost'));
    const reqId = this.allocReqId();
    const w = this.writer;
    w.beginFrame(type, reqId, txId);
    for (let i = 0; i < parts.length; i++) {
      const p = parts[i];
      if (typeof p === 'string') w.putString(p);
      else w.putBytes(p);
      if (!lastRaw || i !== parts.length - 1) w.putNul();
    }
    if (!w.endFrame()) return Promise.reject(new XsError('E2BIG', `${xsTypeName(type)} request exceeds 4096 bytes`));
    if (!this.flushQueued) {
      this.flushQueued = true;
      process.nextTick(this.flush);
    }
    return new Promise<T>((resolve, reject) => {
      this.pending.set(reqId, { type, decode, resolve: resolve as (v: unknown) => void, reject });
    });
  }

  close(): void {
    this.stream.destroy();
    this.finish();
  }

  private allocReqId(): number {
    for (;;) {
      const id = this.nextReqId;
      this.nextReqId = this.nextReqId >= 0xffffffff ? 1 : this.nextReqId + 1;
      if (!this.pending.has(id)) return id;
    }
  }

  private readonly flush = (): void => {
    this.flushQueued = false;
    const bytes = this.writer.take();
    if (bytes.length > 0 && !this.isClosed) this.stream.write(bytes);
  };

  private readonly onFrameBound = (f: XsFrame): void => this.onFrame(f);

  private onData(chunk: Buffer): void {
    try {
      this.decoder.push(chunk, this.onFrameBound);
    } catch (e) {
      this.log.error({ err: (e as Error).message }, 'xenstore: bad frame from xenstored, dropping the connection');
      this.closeError ??= e as Error;
      this.close();
    }
  }

  private onFrame(f: XsFrame): void {
    if (f.type === XsType.WATCH_EVENT) {
      const { strings } = splitStrings(f.payload);
      if (strings.length < 2) {
        this.log.warn({ len: f.payload.length }, 'xenstore: malformed watch event ignored');
        return;
      }
      this.events.onWatchEvent(strings[0], strings[1]);
      return;
    }
    const p = this.pending.get(f.reqId);
    if (!p) {
      this.log.warn({ reqId: f.reqId, type: xsTypeName(f.type) }, 'xenstore: reply to no pending request ignored');
      return;
    }
    this.pending.delete(f.reqId);
    if (f.type === XsType.ERROR) {
      const name = replyString(f.payload);
      p.reject(isXsdErrno(name) ? new XsError(name) : new XsError('EPROTO', `unknown error name '${name.slice(0, 32)}'`));
    } else if (f.type !== p.type) {
      p.reject(new XsError('EPROTO', `${xsTypeName(p.type)} answered by ${xsTypeName(f.type)}`));
    } else {
      let value: unknown;
      try {
        value = p.decode(f.payload);
      } catch (e) {
        p.reject(e instanceof XsError ? e : new XsError('EPROTO', (e as Error).message));
        return;
      }
      p.resolve(value);
    }
  }

  private finish(): void {
    if (this.isClosed) return;
    this.isClosed = true;
    const err = new XsError('ECONNRESET', 'connection to xenstored lost');
    const pending = [...this.pending.values()];
    this.pending.clear();
    for (const p of pending) p.reject(err);
    this.events.onClose(this.closeError);
  }
}
