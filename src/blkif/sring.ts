// The shared ring (xen/include/public/io/ring.h): a 64-byte header of four u32 indexes, then
// the slots. Indexes are free-running u32 counters; a slot is index & (entries - 1).
import type { BlkifAbi } from './abi';
import { MAX_RING_PAGE_ORDER, XEN_PAGE_SIZE } from './constants';

/** u32 word offsets inside the header (byte offsets 0, 4, 8, 12). */
export const REQ_PROD = 0;
export const REQ_EVENT = 1;
export const RSP_PROD = 2;
export const RSP_EVENT = 3;
/** Byte offset of slot 0. */
export const SRING_HEADER_SIZE = 64;

/** Largest power of two <= n (n >= 1), as __RD32 in ring.h. */
export function roundDownPow2(n: number): number {
  if (n < 1) return 0;
  let p = 1;
  while (p * 2 <= n) p *= 2;
  return p;
}

/** Slots of a ring of `pages` pages: largest power of two <= (pages*4096 - 64) / entry size. */
export function ringEntries(abi: BlkifAbi, pages: number): number {
  return roundDownPow2(Math.floor((pages * XEN_PAGE_SIZE - SRING_HEADER_SIZE) / abi.entrySize));
}

/**
 * The header and slots of one shared ring, over memory that the other end writes at any time.
 * Header words are read and written with Atomics (they work on the non-shared ArrayBuffer that
 * koffi.view returns as well); slots through a DataView bounded to the ring's own bytes.
 */
export class SharedRingView {
  readonly header: Uint32Array;
  readonly data: DataView;
  readonly pages: number;
  readonly entries: number;
  readonly mask: number;

  constructor(
    view: Uint8Array,
    readonly abi: BlkifAbi,
    pages: number,
  ) {
    if (!Number.isInteger(pages) || pages < 1 || pages > 1 << MAX_RING_PAGE_ORDER || (pages & (pages - 1)) !== 0) {
      throw new RangeError(`ring of ${pages} pages: must be 2^order pages, order <= ${MAX_RING_PAGE_ORDER}`);
    }
    const bytes = pages * XEN_PAGE_SIZE;
    if (view.byteLength < bytes) throw new RangeError(`ring view of ${view.byteLength} bytes, ${bytes} needed`);
    if (view.byteOffset % 8 !== 0) throw new RangeError('ring view must be 8-byte aligned');
    this.pages = pages;
    this.header = new Uint32Array(view.buffer, view.byteOffset, SRING_HEADER_SIZE / 4);
    this.data = new DataView(view.buffer, view.byteOffset, bytes);
    this.entries = ringEntries(abi, pages);
    this.mask = this.entries - 1;
  }

  /** Byte offset (inside `data`) of the slot of a free-running index. */
  slotOffset(index: number): number {
    return SRING_HEADER_SIZE + (index & this.mask) * this.abi.entrySize;
  }

  load(word: number): number {
    return Atomics.load(this.header, word);
  }

  /** Store followed by a full barrier (a locked exchange on x86). */
  storeFence(word: number, value: number): void {
    Atomics.exchange(this.header, word, value >>> 0);
  }
}

/** SHARED_RING_INIT: what a frontend does before granting the ring. */
export function initSharedRing(view: Uint8Array): void {
  const h = new Uint32Array(view.buffer, view.byteOffset, SRING_HEADER_SIZE / 4);
  Atomics.store(h, REQ_PROD, 0);
  Atomics.store(h, RSP_PROD, 0);
  Atomics.store(h, REQ_EVENT, 1);
  Atomics.store(h, RSP_EVENT, 1);
  for (let i = 4; i < SRING_HEADER_SIZE / 4; i++) h[i] = 0;
}
