// The dataplane's record of one consumed request, reused for request after request: the
// validated request, where its data sits, and how far it got. One per ring slot, made at start;
// its segment records grow on the first indirect request that needs them.
import { BlkifRequest } from '../../blkif/request';
import type { IoCallback } from '../../io/storage/port';
import type { SharedMapping } from './mapped-grants';

/** Where a slot is. */
export const FREE = 0;
/** Consumed, valid, waiting its turn (behind a barrier, or for a buffer). */
export const QUEUED = 1;
/** Grants being mapped. */
export const MAPPING = 2;
/** Storage I/O in progress. */
export const IO = 3;
/** Answered (status set), waiting for publication in ring order. */
export const DONE = 4;

/** Steps of a flush or barrier: flush, write the data if any, flush again. */
export const STEP_PRE_FLUSH = 1;
export const STEP_WRITE = 2;
export const STEP_POST_FLUSH = 3;

/** How the slot's data moves between guest pages and its buffer. */
export const VIA_COPY = 0;
export const VIA_MAPPED = 1;

export class Slot {
  state = FREE;
  /** Free-running ring index of the request. */
  index = 0;
  readonly req: BlkifRequest;
  /** The request passed validation (counts in the per-kind statistics). */
  valid = false;
  status = 0;
  /** performance.now() at consumption. */
  t0 = 0;
  step = 0;
  /** Buffer id in the pool, -1 when none. */
  buf = -1;
  /** Read data still has to reach the guest (done at publication, batched). */
  copyOut = false;
  via = VIA_COPY;
  /** VIA_MAPPED: where segment i's page is mapped (page start offset in segView[i]). */
  segView: Uint8Array[];
  segBase: Int32Array;
  /** Map mode: the batch mapping this slot holds, released once its data moved. */
  shared: SharedMapping | null = null;
  /** Write data waits for the copy-in batch being built. */
  copyIn = false;
  /** Already counted in oo_req. */
  ooCounted = false;
  /** First copy-batch segment of this slot and how many. */
  copyFirst = 0;
  copyCount = 0;
  /** Set once: storage completions come back here. */
  onIo: IoCallback = () => {};

  constructor(capacity: number) {
    this.req = new BlkifRequest(capacity);
    this.segView = new Array<Uint8Array>(this.req.segGref.length);
    this.segBase = new Int32Array(this.req.segGref.length);
  }

  /** Grows the per-segment mapping records with the request's segment arrays (after parsing). */
  fitSegments(): void {
    const n = this.req.segGref.length;
    if (this.segBase.length >= n) return;
    this.segView = new Array<Uint8Array>(n);
    this.segBase = new Int32Array(n);
  }

  /** Data pages the request moves. */
  get pages(): number {
    return this.req.kind === 'discard' ? 0 : this.req.nrSegments;
  }
}
