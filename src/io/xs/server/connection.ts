// One client connection of the server: framing in, replies and events out, and the state that
// dies with it (watches, transactions). It never throws at its peer: bad framing closes it with one
// log line.
import type { Duplex } from 'node:stream';
import type { XsLogger } from '../logger';
import { FrameDecoder, FrameTooLargeError, HEADER_SIZE, XsType, writeHeader, type XsFrame } from '../wire';
import type { ServerTransaction } from './transaction';
import type { ServerWatch, WatchOwner } from './watches';

export interface ConnectionHost {
  handleFrame(conn: ServerConnection, frame: XsFrame): void;
  /** Hands a frame to the output path (which may hold it until the data is durable). */
  output(conn: ServerConnection, frame: Buffer): void;
  closed(conn: ServerConnection): void;
  readonly log: XsLogger;
}

export class ServerConnection implements WatchOwner {
  readonly watches: ServerWatch[] = [];
  readonly transactions = new Map<number, ServerTransaction>();
  private readonly decoder = new FrameDecoder();
  private nextTxId = 1;
  private isClosed = false;

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
      if (this.decoder.hasPartial) this.host.log.warn({ conn: this.label }, 'xenstored: connection ended inside a frame');
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
    const frame = Buffer.allocUnsafe(HEADER_SIZE + payload.length);
    writeHeader(frame, type, reqId, txId, payload.length);
    payload.copy(frame, HEADER_SIZE);
    this.host.output(this, frame);
  }

  sendEvent(path: string, token: string): void {
    if (this.isClosed) return;
    const pl = Buffer.byteLength(path, 'latin1');
    const tl = Buffer.byteLength(token, 'latin1');
    const frame = Buffer.allocUnsafe(HEADER_SIZE + pl + tl + 2);
    writeHeader(frame, XsType.WATCH_EVENT, 0, 0, pl + tl + 2);
    frame.write(path, HEADER_SIZE, 'latin1');
    frame[HEADER_SIZE + pl] = 0;
    frame.write(token, HEADER_SIZE + pl + 1, 'latin1');
    frame[HEADER_SIZE + pl + tl + 1] = 0;
    this.host.output(this, frame);
  }

  /** Writes to the stream; a peer that lets too much output pile up is dropped. */
  write(frame: Buffer): void {
    if (this.isClosed) return;
    if (this.stream.writableLength + frame.length > this.maxOutputBytes) {
      this.host.log.warn({ conn: this.label }, 'xenstored: dropping connection that does not read its replies');
      this.close();
      return;
    }
    this.stream.write(frame);
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
        this.host.log.warn({ conn: this.label, len: e.len }, 'xenstored: oversized frame, closing connection');
      } else {
        this.host.log.error({ conn: this.label, err: (e as Error).message }, 'xenstored: internal error, closing connection');
      }
      this.close();
    }
  }
}
