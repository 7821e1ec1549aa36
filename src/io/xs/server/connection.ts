// One client connection of the server: framing in, replies and events out, and the state that
// dies with it (watches, transactions). It never throws at its peer: bad framing closes it, and the
// host counts it and logs it (once per connection, rate-limited: BadFrameLog).
import type { Duplex } from 'node:stream';
import type { XsLogger } from '../logger';
import type { BadFrameKind } from './bad-frames';
import { FrameDecoder, FrameTooLargeError, FrameWriter, XsType, type XsFrame } from '../wire';
import type { ServerTransaction } from './transaction';
import type { OpContext } from './tree-ops';
import type { ServerWatch, WatchOwner } from './watches';

export interface ConnectionHost {
  handleFrame(conn: ServerConnection, frame: XsFrame): void;
  /** A frame was queued at output position `at`: the host decides when it may leave (OutputGate). */
  queued(conn: ServerConnection, at: number): void;
  closed(conn: ServerConnection): void;
  /** The peer sent a bad frame (counted always, logged once per connection and rate-limited). */
  badFrame(conn: ServerConnection, kind: BadFrameKind, detail?: Record<string, unknown>): void;
  readonly log: XsLogger;
}

export class ServerConnection implements WatchOwner {
  readonly watches: ServerWatch[] = [];
  readonly transactions = new Map<number, ServerTransaction>();
  /** Cached by the dispatcher. */
  opContext: OpContext | undefined;
  /** This connection logged its bad-frame line (BadFrameLog). */
  badFrameLogged = false;
  private readonly decoder = new FrameDecoder();
  private nextTxId = 1;
  private isClosed = false;
  private readonly writer = new FrameWriter();
  private flushQueued = false;

  constructor(
    readonly id: number,
    readonly domid: number,
    readonly label: string,
    private readonly stream: Duplex,
    private readonly host: ConnectionHost,
    private readonly maxOutputBytes: number,
  ) {
    stream.on('data', (chunk: Buffer) => this.onData(chunk));
    stream.on('end', () => {
      if (this.decoder.hasPartial) this.host.badFrame(this, 'partial');
      this.close();
    });
    stream.on('error', (err: Error) => {
      this.host.log.debug({ conn: this.label, err: err.message }, 'xenstored: connection error');
      this.close();
    });
    stream.on('close', () => this.close());
  }

  get closed(): boolean {
    return this.isClosed;
  }

  /** A transaction id unused on this connection (never 0). */
  allocTxId(): number {
    for (;;) {
      const id = this.nextTxId;
      this.nextTxId = this.nextTxId >= 0xffffffff ? 1 : this.nextTxId + 1;
      if (!this.transactions.has(id)) return id;
    }
  }

  send(type: number, reqId: number, txId: number, payload: Buffer): void {
    if (this.isClosed) return;
    const w = this.writer;
    const at = w.position;
    w.beginFrame(type, reqId, txId);
    w.putBytes(payload);
    if (w.endFrame()) this.queued(at);
  }

  sendEvent(path: string, token: string): void {
    if (this.isClosed) return;
    const w = this.writer;
    const at = w.position;
    w.beginFrame(XsType.WATCH_EVENT, 0, 0);
    w.putString(path, 'latin1');
    w.putNul();
    w.putString(token, 'latin1');
    w.putNul();
    if (w.endFrame()) this.queued(at);
    else this.host.log.warn({ conn: this.label }, 'xenstored: watch event too large for one frame, dropped');
  }

  /** Logical output position: everything queued so far (see OutputGate). */
  get outputPosition(): number {
    return this.writer.position;
  }

  /** Writes queued output up to `position` (default: all of it), now. */
  flushUpTo(position = this.writer.position): void {
    if (this.isClosed) return;
    const bytes = this.writer.takeUpTo(position);
    if (bytes.length > 0) this.stream.write(bytes);
  }

  /**
   * Where output held back for durability starts (OutputGate); the scheduled flush stops there.
   * undefined: nothing is held.
   */
  heldFrom: number | undefined;

  /** Writes queued output once the current tick's work is done (replies leave in batches). */
  scheduleFlush(): void {
    if (this.flushQueued) return;
    this.flushQueued = true;
    process.nextTick(this.flushAll);
  }

  private readonly flushAll = (): void => {
    this.flushQueued = false;
    this.flushUpTo(this.heldFrom);
  };

  /** A peer that lets too much output pile up is dropped. */
  private queued(at: number): void {
    if (this.stream.writableLength + this.writer.pending > this.maxOutputBytes) {
      this.host.log.warn({ conn: this.label }, 'xenstored: dropping connection that does not read its replies');
      this.close();
      return;
    }
    this.host.queued(this, at);
  }

  close(): void {
    if (this.isClosed) return;
    this.isClosed = true;
    this.stream.destroy();
    this.host.closed(this);
  }

  private onData(chunk: Buffer): void {
    if (this.isClosed) return;
    try {
      this.decoder.push(chunk, (frame) => {
        if (!this.isClosed) this.host.handleFrame(this, frame);
      });
    } catch (e) {
      if (e instanceof FrameTooLargeError) {
        this.host.badFrame(this, 'oversized', { len: e.len });
      } else {
        this.host.log.error({ conn: this.label, err: (e as Error).message }, 'xenstored: internal error, closing connection');
      }
      this.close();
    }
  }
}
