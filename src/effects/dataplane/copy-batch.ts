// One batch of grant-copy segments, filled in place (the segment objects are made once) and
// executed with one GrantTable.copy call: one hypercall per batch on a real host.
import type { DmaRegion } from '../../io/dma';
import type { GrantCopySegment, GrantTable } from '../../io/ports';

/** What a segment points at before its first use (always overwritten by add). */
const NO_REGION: DmaRegion = { view: new Uint8Array(0), address: 0n, length: 0, free: () => undefined };

export class CopyBatch {
  private readonly segs: GrantCopySegment[];
  readonly statuses: Int16Array;
  private n = 0;

  constructor(readonly capacity: number) {
    // Made as first needed, then kept: thousands of them would slow a restart for nothing.
    this.segs = [];
    this.statuses = new Int16Array(capacity);
  }

  get length(): number {
    return this.n;
  }

  get room(): number {
    return this.capacity - this.n;
  }

  /** Appends one segment; returns its index (its status is statuses[index] after run). */
  add(toGuest: boolean, domid: number, ref: number, guestOffset: number, len: number, local: DmaRegion, localOffset: number): number {
    const i = this.n;
    if (i >= this.capacity) throw new RangeError(`copy batch full (${this.capacity} segments)`);
    if (i === this.segs.length) {
      this.segs.push({ toGuest: false, domid: 0, ref: 0, guestOffset: 0, len: 0, local: NO_REGION, localOffset: 0 });
    }
    const s = this.segs[i];
    s.toGuest = toGuest;
    s.domid = domid;
    s.ref = ref;
    s.guestOffset = guestOffset;
    s.len = len;
    s.local = local;
    s.localOffset = localOffset;
    this.n = i + 1;
    return i;
  }

  /** Executes the batch; returns the number of failed segments. The batch stays readable until clear. */
  run(gnttab: GrantTable): number {
    if (this.n === 0) return 0;
    return gnttab.copy(this.segs, this.n, this.statuses);
  }

  /** True when segments [first, first+count) all succeeded. */
  allOk(first: number, count: number): boolean {
    const st = this.statuses;
    for (let i = first; i < first + count; i++) if (st[i] !== 0) return false;
    return true;
  }

  clear(): void {
    this.n = 0;
  }
}
