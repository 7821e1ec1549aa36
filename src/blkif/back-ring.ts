// The backend's half of a blkif ring: consumes requests, publishes responses.
//
// Responses are published in consumption order, so rspProdPvt is both the next slot to answer
// and the published rsp_prod: the slots [rspProdPvt, reqCons) are the requests consumed and not
// yet answered. Publication is split in two (write slots, then publish) so that the caller can
// journal a batch before its slots overwrite the requests (see ARCHITECTURE.md, exactly-once).
import type { BlkifAbi } from './abi';
import type { BlkifRequestCopy } from './messages';
import { ringFault, type RingFault } from './ring-fault';
import { REQ_EVENT, REQ_PROD, RSP_EVENT, RSP_PROD, SharedRingView } from './sring';

export class BackRing {
  private readonly ring: SharedRingView;
  private cons: number;
  private pvt: number;
  /** Requests known to be in the ring past cons, from the last read of req_prod. */
  private available = 0;
  private faultSeen: RingFault | null = null;

  private constructor(ring: SharedRingView, at: number) {
    this.ring = ring;
    this.cons = at >>> 0;
    this.pvt = at >>> 0;
  }

  /**
   * Attaches to a ring the frontend initialised. `at` (default: the shared rsp_prod) becomes
   * both req_cons and rsp_prod_pvt; after a restart the slots from rsp_prod to req_prod are
   * then exactly the requests that were never answered, and are consumed again.
   */
  static attach(view: Uint8Array, abi: BlkifAbi, pages: number, at?: number): BackRing {
    const ring = new SharedRingView(view, abi, pages);
    return new BackRing(ring, at ?? ring.load(RSP_PROD));
  }

  get abi(): BlkifAbi {
    return this.ring.abi;
  }

  get entries(): number {
    return this.ring.entries;
  }

  /** Next request index to consume. */
  get reqCons(): number {
    return this.cons;
  }

  /** Next response index to write, equal to the rsp_prod last published. */
  get rspProdPvt(): number {
    return this.pvt;
  }

  /** Requests consumed and not yet answered. */
  get unanswered(): number {
    return (this.cons - this.pvt) >>> 0;
  }

  /** Set once the frontend overflowed the ring; the ring then consumes nothing more. */
  get fault(): RingFault | null {
    return this.faultSeen;
  }

  /** Reads req_prod and returns how many requests can be consumed now (0 once faulted). */
  pendingRequests(): number {
    if (this.faultSeen !== null) return 0;
    const prod = this.ring.load(REQ_PROD);
    const room = this.ring.entries - this.unanswered;
    const ahead = (prod - this.cons) >>> 0;
    if (ahead > room) {
      // More requests than free slots, or req_prod moved backwards: a broken frontend.
      this.faultSeen = ringFault('request-overflow', prod, this.cons, room, this.ring.entries);
      this.available = 0;
      return 0;
    }
    this.available = ahead;
    return ahead;
  }

  /**
   * Copies the next request out of shared memory into `out` (each field read once; validate
   * the copy, never the slot) and advances req_cons. Returns false when there is none.
   */
  consumeRequest(out: BlkifRequestCopy): boolean {
    if (this.available === 0 && this.pendingRequests() === 0) return false;
    const ring = this.ring;
    ring.abi.decodeRequest(ring.data, ring.slotOffset(this.cons), out);
    this.cons = (this.cons + 1) >>> 0;
    this.available--;
    return true;
  }

  /**
   * RING_FINAL_CHECK_FOR_REQUESTS: true if requests are waiting; otherwise asks for an event on
   * the next one (req_event = req_cons + 1) and checks once more, closing the race with a
   * frontend that produced meanwhile without notifying.
   */
  finalCheckForRequests(): boolean {
    if (this.pendingRequests() > 0) return true;
    if (this.faultSeen !== null) return false;
    this.ring.storeFence(REQ_EVENT, this.cons + 1);
    return this.pendingRequests() > 0;
  }

  /**
   * Treats the next `count` slots as consumed without reading them. For replaying a
   * publication journal: those slots already hold responses waiting to be published.
   */
  markConsumed(count: number): void {
    const room = this.ring.entries - this.unanswered;
    if (!Number.isInteger(count) || count < 0 || count > room) {
      throw new RangeError(`markConsumed(${count}): ${room} slots free`);
    }
    this.cons = (this.cons + count) >>> 0;
    this.available = 0;
  }

  /**
   * Writes the response slot of request `index`, which must be consumed and not yet published
   * (rspProdPvt <= index < reqCons). Nothing is visible to the frontend before publish.
   */
  writeResponse(index: number, idLo: number, idHi: number, operation: number, status: number): void {
    if (((index - this.pvt) >>> 0) >= this.unanswered) {
      throw new RangeError(`response slot ${index >>> 0} outside unanswered [${this.pvt}, ${this.cons})`);
    }
    const ring = this.ring;
    ring.abi.encodeResponse(ring.data, ring.slotOffset(index), idLo, idHi, operation, status);
  }

  /**
   * RING_PUSH_RESPONSES_AND_CHECK_NOTIFY for the next `count` written responses: publishes
   * rsp_prod = rspProdPvt + count after the slot writes (a locked store, so also a full
   * barrier before rsp_event is read). Returns true when the frontend must be notified.
   */
  publishResponses(count: number): boolean {
    if (!Number.isInteger(count) || count < 0 || count > this.unanswered) {
      throw new RangeError(`publishResponses(${count}): ${this.unanswered} unanswered`);
    }
    if (count === 0) return false;
    const old = this.pvt;
    const next = (old + count) >>> 0;
    this.pvt = next;
    this.ring.storeFence(RSP_PROD, next);
    const event = this.ring.load(RSP_EVENT);
    return ((next - event) >>> 0) < ((next - old) >>> 0);
  }
}

/**
 * How many responses at the end of a journaled batch [start, start+count) are not yet
 * published, given the rsp_prod now in the shared ring: 0 when all are (or when rsp_prod does
 * not fall inside the batch, i.e. the journal is stale).
 */
export function unpublishedTail(start: number, count: number, rspProd: number): number {
  const missing = (start + count - rspProd) >>> 0;
  return missing >= 1 && missing <= count ? missing : 0;
}
