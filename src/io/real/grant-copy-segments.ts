// xengnttab_grant_copy_segment_t (tools/libs/gnttab/include/xengnttab.h; identical to Linux's
// struct gntdev_grant_copy_segment) on x86_64, built in a preallocated array:
//   source @0, dest @8: union { void *virt; struct { u32 ref @0; u16 offset @4; u16 domid @6 } }
//   len u16 @16, flags u16 @18, status i16 @20; 24 bytes, 8-aligned.
import { allocDma, type DmaRegion } from '../dma';

export const SEGMENT_BYTES = 24;
export const SEG_SOURCE = 0;
export const SEG_DEST = 8;
export const SEG_FOREIGN_REF = 0;
export const SEG_FOREIGN_OFFSET = 4;
export const SEG_FOREIGN_DOMID = 6;
export const SEG_LEN = 16;
export const SEG_FLAGS = 18;
export const SEG_STATUS = 20;

/** GNTCOPY_* (xen/include/public/grant_table.h). */
export const GNTCOPY_source_gref = 1 << 0;
export const GNTCOPY_dest_gref = 1 << 1;

const TWO32 = 2 ** 32;

/** A growable array of segments in page-aligned memory the library reads and writes in place. */
export class CopySegmentArray {
  private region: DmaRegion;
  private u16!: Uint16Array;
  private i16!: Int16Array;
  private u32!: Uint32Array;

  constructor(capacity = 64) {
    this.region = allocDma(capacity * SEGMENT_BYTES);
    this.views();
  }

  get capacity(): number {
    return Math.floor(this.region.length / SEGMENT_BYTES);
  }

  /** The segments' memory, to pass as `xengnttab_grant_copy_segment_t *`. */
  get bytes(): Uint8Array {
    return this.region.view;
  }

  /** Makes room for n segments (contents are not kept). */
  reserve(n: number): void {
    if (n <= this.capacity) return;
    this.region.free();
    this.region = allocDma(Math.max(n, 2 * this.capacity) * SEGMENT_BYTES);
    this.views();
  }

  /**
   * Writes segment k. toGuest: local -> guest page (dest is the grant); otherwise guest page ->
   * local. localAddress is a virtual address in this process (< 2^53).
   */
  set(k: number, toGuest: boolean, domid: number, ref: number, guestOffset: number, len: number, localAddress: number): void {
    const base = k * SEGMENT_BYTES;
    const foreign = base + (toGuest ? SEG_DEST : SEG_SOURCE);
    const local = base + (toGuest ? SEG_SOURCE : SEG_DEST);
    this.u32[(foreign + SEG_FOREIGN_REF) >> 2] = ref;
    this.u16[(foreign + SEG_FOREIGN_OFFSET) >> 1] = guestOffset;
    this.u16[(foreign + SEG_FOREIGN_DOMID) >> 1] = domid;
    this.u32[local >> 2] = localAddress % TWO32;
    this.u32[(local >> 2) + 1] = Math.floor(localAddress / TWO32);
    this.u16[(base + SEG_LEN) >> 1] = len;
    this.u16[(base + SEG_FLAGS) >> 1] = toGuest ? GNTCOPY_dest_gref : GNTCOPY_source_gref;
    this.i16[(base + SEG_STATUS) >> 1] = 0;
  }

  status(k: number): number {
    return this.i16[(k * SEGMENT_BYTES + SEG_STATUS) >> 1];
  }

  free(): void {
    this.region.free();
  }

  private views(): void {
    const b = this.region.view.buffer;
    this.u16 = new Uint16Array(b);
    this.i16 = new Int16Array(b);
    this.u32 = new Uint32Array(b);
  }
}
