// The frontend's half of a blkif ring (for the simulated guests): produces requests, consumes
// responses. The backend is not trusted either: a rsp_prod beyond what was requested stops it.
import type { BlkifAbi } from './abi';
import type { BlkifRequestCopy, BlkifResponseCopy } from './messages';
import { ringFault, type RingFault } from './ring-fault';
import { initSharedRing, REQ_EVENT, REQ_PROD, RSP_EVENT, RSP_PROD, SharedRingView } from './sring';

export class FrontRing {
  private readonly ring: SharedRingView;
  private prodPvt: number;
  private cons: number;
  /** The req_prod last published. */
  private pushed: number;
  private available = 0;
  private faultSeen: RingFault | null = null;

  private constructor(ring: SharedRingView, at: number) {
    this.ring = ring;
    this.prodPvt = at >>> 0;
    this.cons = at >>> 0;
    this.pushed = at >>> 0;
  }

  /** XEN_FRONT_RING_INIT: initialises the shared header, then attaches at index 0. */
  static init(view: Uint8Array, abi: BlkifAbi, pages: number): FrontRing {
    const ring = new SharedRingView(view, abi, pages);
    initSharedRing(view);
    return new FrontRing(ring, 0);
  }

  /** FRONT_RING_ATTACH at index `at` (nothing outstanding). */
  static attach(view: Uint8Array, abi: BlkifAbi, pages: number, at: number): FrontRing {
    return new FrontRing(new SharedRingView(view, abi, pages), at);
  }

  get abi(): BlkifAbi {
    return this.ring.abi;
  }

  get entries(): number {
    return this.ring.entries;
  }

  get reqProdPvt(): number {
    return this.prodPvt;
  }

  get rspCons(): number {
    return this.cons;
  }

  get fault(): RingFault | null {
    return this.faultSeen;
  }

  /** Slots free for new requests (RING_FREE_REQUESTS). */
  freeRequests(): number {
    return this.ring.entries - ((this.prodPvt - this.cons) >>> 0);
  }

  /** Encodes req into the next slot; returns its index. Published by pushRequests(). */
  writeRequest(req: BlkifRequestCopy): number {
    if (this.freeRequests() === 0) throw new RangeError('front ring full');
    const index = this.prodPvt;
    const ring = this.ring;
    ring.abi.encodeRequest(ring.data, ring.slotOffset(index), req);
    this.prodPvt = (index + 1) >>> 0;
    return index;
  }

  /** RING_PUSH_REQUESTS_AND_CHECK_NOTIFY: true when the backend must be notified. */
  pushRequests(): boolean {
    const old = this.pushed;
    const next = this.prodPvt;
    if (old === next) return false;
    this.pushed = next;
    this.ring.storeFence(REQ_PROD, next);
    const event = this.ring.load(REQ_EVENT);
    return ((next - event) >>> 0) < ((next - old) >>> 0);
  }

  /** Reads rsp_prod and returns how many responses can be consumed now (0 once faulted). */
  pendingResponses(): number {
    if (this.faultSeen !== null) return 0;
    const prod = this.ring.load(RSP_PROD);
    const outstanding = (this.pushed - this.cons) >>> 0;
    const ahead = (prod - this.cons) >>> 0;
    if (ahead > outstanding) {
      this.faultSeen = ringFault('response-overflow', prod, this.cons, outstanding, this.ring.entries);
      this.available = 0;
      return 0;
    }
    this.available = ahead;
    return ahead;
  }

  /** Copies the next response into out and advances rsp_cons; false when there is none. */
  consumeResponse(out: BlkifResponseCopy): boolean {
    if (this.available === 0 && this.pendingResponses() === 0) return false;
    const ring = this.ring;
    ring.abi.decodeResponse(ring.data, ring.slotOffset(this.cons), out);
    this.cons = (this.cons + 1) >>> 0;
    this.available--;
    return true;
  }

  /** RING_FINAL_CHECK_FOR_RESPONSES. */
  finalCheckForResponses(): boolean {
    if (this.pendingResponses() > 0) return true;
    if (this.faultSeen !== null) return false;
    this.ring.storeFence(RSP_EVENT, this.cons + 1);
    return this.pendingResponses() > 0;
  }
}
