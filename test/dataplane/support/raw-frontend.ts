// A frontend that writes whatever it likes into the ring: for driving the dataplane request by
// request and for hostile input. The ring and data pages are the guest domain's real memory.
import { firstValueFrom, filter, take, timeout } from 'rxjs';
import { abiFor, BlkifRequestCopy, BlkifResponseCopy, initSharedRing, REQ_PROD, RSP_EVENT, RSP_PROD, SharedRingView, type BlkifAbi } from '../../../src/blkif';
import type { EvtchnPort } from '../../../src/io/ports';
import type { BlkifProtocol, ConnectParams } from '../../../src/machines/block/connect-params';
import type { SimDomain } from '../../../src/sim/domain';

export interface DataPage {
  frame: number;
  ref: number;
  view: Uint8Array;
}

/** Its own indexes, so that tests may write req_prod and slots directly. */
export class RawFrontend {
  readonly ring: SharedRingView;
  private prod = 0;
  private cons = 0;
  readonly abi: BlkifAbi;
  readonly params: ConnectParams;
  /** The shared ring's bytes and header words. */
  readonly view: Uint8Array;
  readonly header: Uint32Array;
  private readonly rsp = new BlkifResponseCopy();
  readonly received: BlkifResponseCopy[] = [];

  private constructor(
    readonly guest: SimDomain,
    readonly port: EvtchnPort,
    frames: number[],
    refs: number[],
    order: number,
    protocol: BlkifProtocol,
  ) {
    this.abi = abiFor(protocol);
    this.view = guest.memory.subarray(frames[0] * 4096, (frames[0] + frames.length) * 4096);
    this.header = new Uint32Array(this.view.buffer, this.view.byteOffset, 16);
    initSharedRing(this.view);
    this.ring = new SharedRingView(this.view, this.abi, frames.length);
    this.params = { ringPageOrder: order, ringRefs: refs, eventChannel: port.localPort, protocol, persistent: false };
    port.events$.subscribe(() => {
      port.unmask();
      this.collect();
    });
  }

  static async create(guest: SimDomain, order = 0, protocol: BlkifProtocol = 'x86_64-abi'): Promise<RawFrontend> {
    const frames = guest.allocPages(1 << order);
    const refs = frames.map((f) => guest.grantAccess(f, 0, false));
    const port = await guest.evtchn.allocUnbound(0);
    return new RawFrontend(guest, port, frames, refs, order, protocol);
  }

  dataPage(fill = 0, readonly = false): DataPage {
    const [frame] = this.guest.allocPages(1);
    const view = this.guest.page(frame);
    view.fill(fill);
    return { frame, ref: this.guest.grantAccess(frame, 0, readonly), view };
  }

  /** A request copy to fill in (fresh, all zero). */
  request(op: number, id: number, sector = 0): BlkifRequestCopy {
    const r = new BlkifRequestCopy();
    r.operation = op;
    r.idLo = id;
    r.sector = BigInt(sector);
    return r;
  }

  withSegment(r: BlkifRequestCopy, ref: number, first = 0, last = 7): BlkifRequestCopy {
    const i = r.segCount++;
    r.nrSegments = r.segCount;
    r.segGref[i] = ref;
    r.segFirst[i] = first;
    r.segLast[i] = last;
    return r;
  }

  /** Writes requests, publishes them and notifies. */
  send(...reqs: BlkifRequestCopy[]): void {
    for (const r of reqs) {
      this.abi.encodeRequest(this.ring.data, this.ring.slotOffset(this.prod), r);
      this.prod = (this.prod + 1) >>> 0;
    }
    this.ring.storeFence(REQ_PROD, this.prod);
    this.port.notify();
  }

  /** Waits until `n` responses in total were received. */
  async responses(n: number, ms = 5000): Promise<BlkifResponseCopy[]> {
    const end = Date.now() + ms;
    while (this.received.length < n) {
      this.collect();
      if (Date.now() > end) throw new Error(`${this.received.length} responses after ${ms} ms, ${n} expected`);
      await new Promise((r) => setTimeout(r, 2));
    }
    return this.received.slice(0, n);
  }

  get reqProd(): number {
    return Atomics.load(this.header, REQ_PROD);
  }

  get rspProd(): number {
    return Atomics.load(this.header, RSP_PROD);
  }

  /** Sets req_prod to anything (a broken or hostile frontend). */
  setReqProd(v: number): void {
    this.prod = v >>> 0;
    Atomics.store(this.header, REQ_PROD, v >>> 0);
  }

  notify(): void {
    this.port.notify();
  }

  async nextEvent(ms = 2000): Promise<void> {
    await firstValueFrom(this.port.events$.pipe(filter(() => true), take(1), timeout(ms)));
  }

  private collect(): void {
    for (;;) {
      const prod = this.ring.load(RSP_PROD);
      if (this.cons === prod) {
        this.ring.storeFence(RSP_EVENT, this.cons + 1);
        if (this.ring.load(RSP_PROD) === prod) return;
        continue;
      }
      this.abi.decodeResponse(this.ring.data, this.ring.slotOffset(this.cons), this.rsp);
      this.cons = (this.cons + 1) >>> 0;
      const c = new BlkifResponseCopy();
      c.idLo = this.rsp.idLo;
      c.idHi = this.rsp.idHi;
      c.operation = this.rsp.operation;
      c.status = this.rsp.status;
      this.received.push(c);
    }
  }
}
