// DMA buffers for request data: one small buffer per ring slot (a direct request moves at most
// 11 pages), made in chunks of 32 as the queue depth first needs them, and a few big ones for
// indirect requests, made on first need; all kept. A request that finds no big buffer free waits
// (counted as oo_req); nothing is allocated per request, and an idle device holds no buffer.
import { BLKIF_MAX_SEGMENTS_PER_REQUEST, XEN_PAGE_SIZE } from '../../blkif/constants';
import { allocDma, type DmaRegion } from '../../io/dma';

export const SMALL_PAGES = BLKIF_MAX_SEGMENTS_PER_REQUEST;

/** Small buffers per chunk: a 32-slot ring's worth (1.4 MiB). */
const CHUNK = 32;
const SMALL_BYTES = SMALL_PAGES * XEN_PAGE_SIZE;

export class BufferPool {
  private readonly chunks: DmaRegion[] = [];
  private readonly smallFree: Int32Array;
  private smallTop = 0;
  /** Small buffer ids made so far (chunk by chunk). */
  private smallMade = 0;
  private readonly big: DmaRegion[] = [];
  private readonly bigFree: number[] = [];

  constructor(
    readonly smallCount: number,
    /** Pages of one big buffer (the advertised indirect segment maximum); 0: none. */
    readonly bigPages: number,
    readonly maxBig: number,
  ) {
    this.smallFree = new Int32Array(smallCount);
  }

  private growSmall(): boolean {
    const n = Math.min(CHUNK, this.smallCount - this.smallMade);
    if (n <= 0) return false;
    this.chunks.push(allocDma(n * SMALL_BYTES));
    for (let i = this.smallMade + n - 1; i >= this.smallMade; i--) this.smallFree[this.smallTop++] = i;
    this.smallMade += n;
    return true;
  }

  /** A buffer id for `pages` pages, or -1 when none is free now. */
  acquire(pages: number): number {
    if (pages <= SMALL_PAGES) return this.smallTop > 0 || this.growSmall() ? this.smallFree[--this.smallTop] : -1;
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
    return id < this.smallCount ? this.chunks[(id / CHUNK) | 0] : this.big[id - this.smallCount];
  }

  offset(id: number): number {
    return id < this.smallCount ? (id % CHUNK) * SMALL_BYTES : 0;
  }

  /** Whether a request of `pages` pages can ever get a buffer. */
  fits(pages: number): boolean {
    return pages <= SMALL_PAGES || (pages <= this.bigPages && this.maxBig > 0);
  }

  free(): void {
    for (const c of this.chunks) c.free();
    this.chunks.length = 0;
    for (const b of this.big) b.free();
    this.big.length = 0;
  }
}
