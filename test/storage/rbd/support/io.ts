// Promise helpers for tests of the callback-style storage port, and verifiable block contents.
import type { BlockImage } from '../../../../src/io/storage/port';

export function io(start: (cb: (err: NodeJS.ErrnoException | null) => void) => void): Promise<void> {
  return new Promise((resolve, reject) => start((err) => (err ? reject(err) : resolve())));
}

/** Fills buf[off..off+len) with bytes that depend on (block position, generation). */
export function fillBlock(buf: Uint8Array, off: number, len: number, pos: number, gen: number): void {
  const dv = new DataView(buf.buffer, buf.byteOffset + off, len);
  let x = (pos / 512 + 1) * 2654435761 + gen * 40503;
  for (let i = 0; i < len; i += 4) {
    x = (Math.imul(x ^ (x >>> 15), 2246822519) + 0x9e3779b9) >>> 0;
    dv.setUint32(i, x, true);
  }
  // A readable header: position and generation.
  dv.setFloat64(0, pos, true);
  dv.setUint32(8, gen, true);
}

/** The generation the block holds (-1: all zeros, -2: not a block this pattern wrote at pos). */
export function blockGeneration(buf: Uint8Array, off: number, len: number, pos: number): number {
  const view = buf.subarray(off, off + len);
  if (view.every((b) => b === 0)) return -1;
  const dv = new DataView(buf.buffer, buf.byteOffset + off, len);
  if (dv.getFloat64(0, true) !== pos) return -2;
  const gen = dv.getUint32(8, true);
  const expect = new Uint8Array(len);
  fillBlock(expect, 0, len, pos, gen);
  return Buffer.compare(Buffer.from(expect), Buffer.from(view)) === 0 ? gen : -2;
}

/** Runs n operations with at most qd in flight; op(k, slot) issues operation k on buffer slot. */
export function runQueued(n: number, qd: number, op: (k: number, slot: number, cb: (err: NodeJS.ErrnoException | null) => void) => void): Promise<void> {
  return new Promise((resolve, reject) => {
    let next = 0;
    let done = 0;
    let failed = false;
    const issue = (slot: number): void => {
      if (failed || next >= n) return;
      const k = next++;
      op(k, slot, (err) => {
        if (failed) return;
        if (err) {
          failed = true;
          reject(err);
          return;
        }
        if (++done === n) resolve();
        else issue(slot);
      });
    };
    if (n === 0) resolve();
    for (let s = 0; s < Math.min(qd, n); s++) issue(s);
  });
}

export function read(img: BlockImage, buf: Uint8Array, off: number, len: number, pos: number): Promise<void> {
  return io((cb) => img.read(buf, off, len, pos, cb));
}

export function write(img: BlockImage, buf: Uint8Array, off: number, len: number, pos: number): Promise<void> {
  return io((cb) => img.write(buf, off, len, pos, cb));
}
