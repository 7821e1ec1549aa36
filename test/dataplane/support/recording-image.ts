// A real raw image behind a recorder: every storage call is logged in order, and completions can
// be held back to make orderings (barriers, flushes, stop) observable.
import type { BlockImage, IoCallback } from '../../../src/io/storage/port';

export type Call = { op: 'read' | 'write' | 'flush' | 'discard'; pos: number; len: number; at: 'start' | 'done' };

export class RecordingImage implements BlockImage {
  readonly log: Call[] = [];
  /** Completions matching this are held until release(). */
  hold: ((c: Call) => boolean) | null = null;
  private held: (() => void)[] = [];

  constructor(private readonly inner: BlockImage) {}

  get path(): string {
    return this.inner.path;
  }
  get sizeBytes(): number {
    return this.inner.sizeBytes;
  }
  get readOnly(): boolean {
    return this.inner.readOnly;
  }
  get sectorSize(): number {
    return this.inner.sectorSize;
  }
  get physicalSectorSize(): number {
    return this.inner.physicalSectorSize;
  }
  get discardSupport() {
    return this.inner.discardSupport;
  }
  get direct(): boolean {
    return this.inner.direct;
  }

  get heldCount(): number {
    return this.held.length;
  }

  /** Lets every held completion through, in order. */
  release(): void {
    for (const f of this.held.splice(0)) f();
  }

  read(buf: Uint8Array, off: number, len: number, pos: number, cb: IoCallback): void {
    this.inner.read(buf, off, len, pos, this.wrap({ op: 'read', pos, len, at: 'start' }, cb));
  }
  write(buf: Uint8Array, off: number, len: number, pos: number, cb: IoCallback): void {
    this.inner.write(buf, off, len, pos, this.wrap({ op: 'write', pos, len, at: 'start' }, cb));
  }
  flush(cb: IoCallback): void {
    this.inner.flush(this.wrap({ op: 'flush', pos: 0, len: 0, at: 'start' }, cb));
  }
  discard(pos: number, len: number, secure: boolean, cb: IoCallback): void {
    this.inner.discard(pos, len, secure, this.wrap({ op: 'discard', pos, len, at: 'start' }, cb));
  }
  refreshSize(): Promise<number> {
    return this.inner.refreshSize();
  }
  close(): Promise<void> {
    return this.inner.close();
  }

  private wrap(c: Call, cb: IoCallback): IoCallback {
    this.log.push(c);
    return (err) => {
      const done = (): void => {
        this.log.push({ ...c, at: 'done' });
        cb(err);
      };
      if (this.hold?.(c)) this.held.push(done);
      else done();
    };
  }
}
