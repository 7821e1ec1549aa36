// Preallocated DMA buffers for request data: one small buffer per ring slot (a direct request
// moves at most 11 pages) and a few big ones for indirect requests, made on first need and kept.
// A request that finds no big buffer free waits (counted as oo_req); nothing is allocated per
// request.
import { BLKIF_MAX_SEGMENTS_PER_REQUEST, XEN_PAGE_SIZE } from '../../blkif/constants';
import { allocDma, type DmaRegion } from '../../io/dma';

export const SMALL_PAGES = BLKIF_MAX_SEGMENTS_PER_REQUEST;

export class BufferPool {
  private readonly small: DmaRegion;
  private readonly smallFree: Int32Array;
  private smallTop = 0;
  private readonly big: DmaRegion[] = [];
  private readonly bigFree: number[] = [];

  constructor(
    readonly smallCount: number,
    /** Pages of one big buffer (the advertised indirect segment maximum); 0: none. */
    readonly bigPages: number,
    readonly maxBig: number,
  ) {
    this.small = allocDma(smallCount * SMALL_PAGES * XEN_PAGE_SIZE);
    this.smallFree = new Int32Array(smallCount);
    for (let i = smallCount - 1; i >= 0; i--) this.smallFree[this.smallTop++] = i;
  }

  /** A buffer id for `pages` pages, or -1 when none is free now. */
  acquire(pages: number): number {
    if (pages <= SMALL_PAGES) return this.smallTop > 0 ? this.smallFree[--this.smallTop] : -1;
    if (pages > this.bigPages) return -1;
    const b = this.bigFree.pop();
    if (b !== undefined) return this.smallCount + b;
    if (this.big.length >= this.maxBig) return -1;
    this.big.push(allocDma(this.bigPages * XEN_PAGE_SIZE));
    return this.smallCount + this.big.length - 1;
  }

  release(id: number): void {
    if (id < this.smallCount) this.smallFree[this.smallTop++] = id;
    else this.bigFree.push(id - this.smallCount);
  }

  region(id: number): DmaRegion {
    return id < this.smallCount ? this.small : this.big[id - this.smallCount];
  }

  offset(id: number): number {
    return id < this.smallCount ? id * SMALL_PAGES * XEN_PAGE_SIZE : 0;
  }

  /** Whether a request of `pages` pages can ever get a buffer. */
  fits(pages: number): boolean {
    return pages <= SMALL_PAGES || (pages <= this.bigPages && this.maxBig > 0);
  }

  free(): void {
    this.small.free();
    for (const b of this.big) b.free();
    this.big.length = 0;
  }
}
