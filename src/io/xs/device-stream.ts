// A Duplex over a character device such as /dev/xen/xenbus, which carries the same framing as
// the xenstored socket. Linux's xenbus device acts on one message per write() (it drops the rest
// of a longer write), so batched output is written frame by frame. libuv cannot poll such a
// device, so reads are blocking reads on the threadpool, one at a time. A read still blocked
// when the stream is destroyed finishes (and is discarded) when the device next delivers data or
// hangs up.
import * as fs from 'node:fs';
import { Duplex } from 'node:stream';
import { HEADER_SIZE, XENSTORE_PAYLOAD_MAX, frameSlices } from './wire';

const READ_SIZE = HEADER_SIZE + XENSTORE_PAYLOAD_MAX;

export class DeviceStream extends Duplex {
  private reading = false;
  private carry: Buffer | undefined;

  constructor(private readonly fd: number) {
    super({ allowHalfOpen: false });
  }

  static open(path: string): Promise<DeviceStream> {
    return new Promise((resolve, reject) => {
      fs.open(path, fs.constants.O_RDWR | fs.constants.O_NOCTTY, (err, fd) => {
        if (err) reject(err);
        else resolve(new DeviceStream(fd));
      });
    });
  }

  override _read(): void {
    if (this.reading || this.destroyed) return;
    this.reading = true;
    const buf = Buffer.allocUnsafe(READ_SIZE);
    fs.read(this.fd, buf, 0, READ_SIZE, null, (err, n) => {
      this.reading = false;
      if (this.destroyed) return;
      if (err) {
        if (err.code === 'EAGAIN' || err.code === 'EINTR') setImmediate(() => this._read());
        else this.destroy(err);
        return;
      }
      if (n === 0) {
        this.push(null);
        return;
      }
      if (this.push(buf.subarray(0, n))) this._read();
    });
  }

  override _write(chunk: Buffer, _enc: BufferEncoding, cb: (err?: Error | null) => void): void {
    const { frames, rest } = frameSlices(chunk, this.carry);
    this.carry = rest;
    let i = 0;
    const writeFrom = (frame: Buffer, off: number): void => {
      fs.write(this.fd, frame, off, frame.length - off, null, (err, n) => {
        if (err) {
          if (err.code === 'EAGAIN' || err.code === 'EINTR') setImmediate(() => writeFrom(frame, off));
          else cb(err);
          return;
        }
        if (off + n < frame.length) writeFrom(frame, off + n);
        else next();
      });
    };
    const next = (): void => {
      if (i < frames.length) writeFrom(frames[i++], 0);
      else cb();
    };
    next();
  }

  override _destroy(err: Error | null, cb: (err?: Error | null) => void): void {
    fs.close(this.fd, () => cb(err));
  }
}
