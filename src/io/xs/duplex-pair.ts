// Two cross-wired in-process Duplex streams: what one end writes the other reads. Used for
// in-process xenstore connections (the simulated host's guests). Destroying or ending one end
// closes the other, like a socket whose peer went away.
import { Duplex } from 'node:stream';

class PairEnd extends Duplex {
  peer!: PairEnd;

  constructor() {
    super({ allowHalfOpen: false });
  }

  override _read(): void {}

  override _write(chunk: Buffer, _enc: BufferEncoding, cb: (err?: Error | null) => void): void {
    const peer = this.peer;
    if (peer.destroyed || peer.readableEnded) {
      cb(Object.assign(new Error('peer closed'), { code: 'EPIPE' }));
      return;
    }
    // Deliver on a later tick so neither side ever runs inside the other's write().
    process.nextTick(() => {
      if (!peer.destroyed) peer.push(chunk);
    });
    cb();
  }

  override _final(cb: (err?: Error | null) => void): void {
    const peer = this.peer;
    process.nextTick(() => {
      if (!peer.destroyed) peer.push(null);
    });
    cb();
  }

  override _destroy(err: Error | null, cb: (err?: Error | null) => void): void {
    const peer = this.peer;
    process.nextTick(() => {
      if (!peer.destroyed) {
        peer.push(null);
        peer.destroy();
      }
    });
    cb(err);
  }
}

export function createDuplexPair(): [Duplex, Duplex] {
  const a = new PairEnd();
  const b = new PairEnd();
  a.peer = b;
  b.peer = a;
  return [a, b];
}
