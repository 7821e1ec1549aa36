// The simulated guest's block queue, as Linux blkfront drives a ring: a FrontRing over pages of
// the guest's memory granted to the backend, an unbound event-channel port for the backend to
// bind, data pages per request tag granted fresh for each request (or once, with persistent
// grants), and indirect descriptor pages for requests larger than 11 segments.
//
// Lifecycle: create() allocates and grants the ring (its ConnectParams are what the frontend
// publishes in xenstore); start(disk) once the backend is Connected; prepare/submit requests;
// close() ends every grant (retrying while the backend still maps them).
import type { Subscription } from 'rxjs';
import { abiFor } from '../../blkif/abi';
import { BLKIF_MAX_SEGMENTS_PER_REQUEST, BLKIF_OP_DISCARD, BLKIF_OP_FLUSH_DISKCACHE, BLKIF_OP_INDIRECT, BLKIF_OP_READ, BLKIF_OP_WRITE, BLKIF_OP_WRITE_BARRIER, SEGMENT_SIZE, MAX_RING_PAGE_ORDER, SEGMENTS_PER_INDIRECT_PAGE, SECTORS_PER_PAGE, XEN_PAGE_SIZE } from '../../blkif/constants';
import { FrontRing } from '../../blkif/front-ring';
import { BlkifRequestCopy, BlkifResponseCopy } from '../../blkif/messages';
import type { RingFault } from '../../blkif/ring-fault';
import { ringEntries } from '../../blkif/sring';
import type { EvtchnPort } from '../../io/ports';
import type { BackendDiskInfo } from '../../machines/block/backend-info';
import type { BlkifProtocol, ConnectParams } from '../../machines/block/connect-params';
import type { SimDomain } from '../domain';

export type GuestOp = 'read' | 'write' | 'flush' | 'barrier' | 'discard';

export interface GuestQueueOptions {
  readonly backendDomid: number;
  /** 0..4. */
  readonly ringPageOrder: number;
  readonly protocol: BlkifProtocol;
  /** Advertise feature-persistent; used only if the backend advertises it too. */
  readonly persistent: boolean;
  /** The frontend's own indirect-segment limit; 0: never send indirect requests. */
  readonly indirectSegments: number;
  /** Requests in flight at most (request tags). Default: the ring's entries. */
  readonly maxRequests?: number;
}

export class GuestQueueError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'GuestQueueError';
  }
}

/** One request tag: its pages and, while in flight, what was asked. Reused request after request. */
export class GuestRequest {
  op: GuestOp = 'read';
  sector = 0;
  nrSectors = 0;
  secure = false;
  /** Sector offset of the data inside the first page. */
  firstSect = 0;
  /** Data pages used by this request. */
  pages = 0;
  /** Distinguishes this use of the tag from earlier ones (the id's high word). */
  serial = 0;
  /** performance.now() at submission. */
  submittedAt = 0;
  inFlight = false;
  /** The data pages this tag owns (grows on demand); words: the same pages as u32. */
  readonly frames: number[] = [];
  readonly pageViews: Uint8Array[] = [];
  readonly pageWords: Uint32Array[] = [];
  /** Grant ref per data page for the request in flight (or the persistent ref). */
  readonly refs: number[] = [];
  readonly indirectFrames: number[] = [];
  readonly indirectViews: Uint8Array[] = [];
  readonly indirectRefs: number[] = [];
  /** Whether refs/indirectRefs are granted once for good (persistent grants). */
  persistentRefs = 0;

  constructor(readonly tag: number) {}

  /** The page holding the k-th 512-byte sector of the data, and its byte offset there. */
  pageOfSector(k: number): Uint8Array {
    return this.pageViews[((this.firstSect + k) / SECTORS_PER_PAGE) | 0];
  }
  wordsOfSector(k: number): Uint32Array {
    return this.pageWords[((this.firstSect + k) / SECTORS_PER_PAGE) | 0];
  }
  offsetOfSector(k: number): number {
    return ((this.firstSect + k) % SECTORS_PER_PAGE) * 512;
  }
}

export type CompletionHandler = (req: GuestRequest, status: number) => void;

interface Negotiated {
  readonly persistent: boolean;
  /** Segments a request may carry (11 direct; more with indirect descriptors). */
  readonly maxSegments: number;
  readonly indirect: boolean;
  readonly disk: BackendDiskInfo;
}

export class GuestBlockQueue {
  /** What the frontend publishes for the backend (ring refs, its port, protocol, persistent). */
  readonly params: ConnectParams;
  /** Called for each response, in ring order; the request is free again once it returns. */
  onComplete: CompletionHandler = () => {};
  /** Called when the backend breaks the ring (response overflow). */
  onFault: (fault: RingFault) => void = () => {};

  private readonly ring: FrontRing;
  private readonly requests: GuestRequest[] = [];
  private readonly freeTags: number[] = [];
  private readonly reqCopy = new BlkifRequestCopy();
  private readonly rsp = new BlkifResponseCopy();
  private negotiated: Negotiated | null = null;
  private sub: Subscription | null = null;
  private kickScheduled = false;
  private readonly kickCb = (): void => this.kick();
  private closing: Promise<void> | null = null;
  /** Grants the backend still mapped when we wanted them back: ended later. */
  private readonly lingering: number[] = [];
  private lingerTimer: NodeJS.Timeout | null = null;
  private nextSerial = 1;
  // Counters of backend misbehaviour (every request id must get exactly one response).
  private dupes = 0;
  private badOps = 0;
  private answered = 0;

  private constructor(
    private readonly domain: SimDomain,
    private readonly opts: Required<GuestQueueOptions>,
    private readonly ringFrames: number[],
    private readonly ringRefs: number[],
    private readonly port: EvtchnPort,
  ) {
    const pages = 1 << opts.ringPageOrder;
    const view = domain.memory.subarray(ringFrames[0] * XEN_PAGE_SIZE, (ringFrames[0] + pages) * XEN_PAGE_SIZE);
    this.ring = FrontRing.init(view, abiFor(opts.protocol), pages);
    this.params = {
      ringPageOrder: opts.ringPageOrder,
      ringRefs: [...ringRefs],
      eventChannel: port.localPort,
      protocol: opts.protocol,
      persistent: opts.persistent,
    };
    for (let t = opts.maxRequests - 1; t >= 0; t--) this.freeTags.push(t);
    for (let t = 0; t < opts.maxRequests; t++) this.requests.push(new GuestRequest(t));
  }

  /** Allocates and grants the ring, allocates the event-channel port for the backend. */
  static async create(domain: SimDomain, options: GuestQueueOptions): Promise<GuestBlockQueue> {
    const order = options.ringPageOrder;
    if (!Number.isInteger(order) || order < 0 || order > MAX_RING_PAGE_ORDER) {
      throw new GuestQueueError(`ring page order ${order} outside 0..${MAX_RING_PAGE_ORDER}`);
    }
    const pages = 1 << order;
    const abi = abiFor(options.protocol);
    const entries = ringEntries(abi, pages);
    const maxRequests = options.maxRequests ?? entries;
    if (!Number.isInteger(maxRequests) || maxRequests < 1 || maxRequests > entries) {
      throw new GuestQueueError(`max requests ${maxRequests} outside 1..${entries} (ring entries)`);
    }
    if (!Number.isInteger(options.indirectSegments) || options.indirectSegments < 0) {
      throw new GuestQueueError(`indirect segments ${options.indirectSegments} is not a count`);
    }
    const frames = contiguousPages(domain, pages);
    const refs = frames.map((f) => domain.grantAccess(f, options.backendDomid, false));
    const port = await domain.evtchn.allocUnbound(options.backendDomid);
    return new GuestBlockQueue(domain, { ...options, maxRequests }, frames, refs, port);
  }

  get entries(): number {
    return this.ring.entries;
  }

  /** Requests that can be prepared now. */
  get free(): number {
    return Math.min(this.freeTags.length, this.ring.freeRequests());
  }

  get inFlight(): number {
    return this.opts.maxRequests - this.freeTags.length;
  }

  get maxRequests(): number {
    return this.opts.maxRequests;
  }

  /** Responses whose id named no request in flight (a response answered twice, or made up). */
  get duplicates(): number {
    return this.dupes;
  }

  /** Responses whose operation did not match the request's. */
  get mismatchedOperations(): number {
    return this.badOps;
  }

  get responses(): number {
    return this.answered;
  }

  get fault(): RingFault | null {
    return this.ring.fault;
  }

  get disk(): BackendDiskInfo {
    if (this.negotiated === null) throw new GuestQueueError('queue not started');
    return this.negotiated.disk;
  }

  get usesPersistentGrants(): boolean {
    return this.negotiated?.persistent ?? false;
  }

  /** The most 512-byte sectors one request can move when its data starts at sector firstSect of a page. */
  maxSectors(firstSect = 0): number {
    if (this.negotiated === null) throw new GuestQueueError('queue not started');
    return this.negotiated.maxSegments * SECTORS_PER_PAGE - firstSect;
  }

  /** The backend is Connected with these properties: negotiate and start taking responses. */
  start(disk: BackendDiskInfo): void {
    if (this.negotiated !== null) throw new GuestQueueError('queue already started');
    const indirectMax = Math.min(this.opts.indirectSegments, disk.maxIndirectSegments);
    const indirect = indirectMax > BLKIF_MAX_SEGMENTS_PER_REQUEST;
    this.negotiated = {
      persistent: this.opts.persistent && disk.persistent,
      indirect,
      maxSegments: indirect ? indirectMax : BLKIF_MAX_SEGMENTS_PER_REQUEST,
      disk,
    };
    this.sub = this.port.events$.subscribe(() => this.onEvent());
  }

  /**
   * Takes a free request tag and lays out its pages for `nrSectors` sectors starting at sector
   * `firstSect` of the first page. null when no tag or ring slot is free.
   */
  prepare(op: GuestOp, sector: number, nrSectors: number, firstSect = 0): GuestRequest | null {
    const n = this.negotiated;
    if (n === null) throw new GuestQueueError('queue not started');
    if (this.closing !== null) throw new GuestQueueError('queue is closing');
    if (!Number.isSafeInteger(sector) || sector < 0) throw new GuestQueueError(`bad sector ${sector}`);
    if (!Number.isInteger(firstSect) || firstSect < 0 || firstSect >= SECTORS_PER_PAGE) throw new GuestQueueError(`bad first sector ${firstSect}`);
    const data = op === 'read' || op === 'write' || ((op === 'flush' || op === 'barrier') && nrSectors > 0);
    if (data && (!Number.isInteger(nrSectors) || nrSectors < 1 || nrSectors > this.maxSectors(firstSect))) {
      throw new GuestQueueError(`${op} of ${nrSectors} sectors: 1..${this.maxSectors(firstSect)} per request`);
    }
    if (op === 'discard' && (!Number.isSafeInteger(nrSectors) || nrSectors < 0)) throw new GuestQueueError(`bad discard length ${nrSectors}`);
    if (this.free === 0) return null;
    const r = this.requests[this.freeTags.pop()!];
    r.op = op;
    r.sector = sector;
    r.nrSectors = op === 'discard' || data ? nrSectors : 0;
    r.secure = false;
    r.firstSect = data ? firstSect : 0;
    r.pages = data ? Math.ceil((firstSect + nrSectors) / SECTORS_PER_PAGE) : 0;
    this.ensurePages(r, r.pages);
    r.inFlight = true;
    return r;
  }

  /** Gives back a prepared request that will not be submitted. */
  cancel(r: GuestRequest): void {
    if (!r.inFlight) return;
    r.inFlight = false;
    this.freeTags.push(r.tag);
  }

  /** Grants the request's pages and writes its ring slot; published at the next kick(). */
  submit(r: GuestRequest): void {
    const n = this.negotiated!;
    const q = this.reqCopy;
    const be = this.opts.backendDomid;
    r.serial = this.nextSerial;
    this.nextSerial = this.nextSerial === 0xffffffff ? 1 : this.nextSerial + 1;
    q.idLo = r.tag;
    q.idHi = r.serial;
    q.handle = 0;
    q.sectorLo = r.sector >>> 0;
    q.sectorHi = Math.floor(r.sector / 0x100000000);
    q.flag = 0;
    q.nrSectorsLo = 0;
    q.nrSectorsHi = 0;
    q.segCount = 0;
    q.nrSegments = 0;
    q.indirectOp = 0;
    const wireOp = wireOperation(r.op);
    if (r.op === 'discard') {
      q.operation = BLKIF_OP_DISCARD;
      q.flag = r.secure ? 1 : 0;
      q.nrSectorsLo = r.nrSectors >>> 0;
      q.nrSectorsHi = Math.floor(r.nrSectors / 0x100000000);
    } else {
      // The guest's pages: fresh grants (read-only for data going to the disk) or persistent ones.
      const toDisk = r.op !== 'read';
      if (!n.persistent) for (let i = 0; i < r.pages; i++) r.refs[i] = this.domain.grantAccess(r.frames[i], be, toDisk);
      if (r.pages <= BLKIF_MAX_SEGMENTS_PER_REQUEST) {
        q.operation = wireOp;
        q.nrSegments = r.pages;
        q.segCount = r.pages;
        for (let i = 0; i < r.pages; i++) {
          q.segGref[i] = r.refs[i];
          q.segFirst[i] = segFirst(r, i);
          q.segLast[i] = segLast(r, i);
        }
      } else {
        if (!n.indirect || (r.op !== 'read' && r.op !== 'write')) {
          throw new GuestQueueError(`${r.op} of ${r.pages} pages needs indirect descriptors`);
        }
        q.operation = BLKIF_OP_INDIRECT;
        q.indirectOp = wireOp;
        q.nrSegments = r.pages;
        const ipages = Math.ceil(r.pages / SEGMENTS_PER_INDIRECT_PAGE);
        this.ensureIndirectPages(r, ipages);
        for (let p = 0; p < ipages; p++) {
          const count = Math.min(SEGMENTS_PER_INDIRECT_PAGE, r.pages - p * SEGMENTS_PER_INDIRECT_PAGE);
          writeDescriptors(r.indirectViews[p], r, p * SEGMENTS_PER_INDIRECT_PAGE, count);
          if (!n.persistent) r.indirectRefs[p] = this.domain.grantAccess(r.indirectFrames[p], be, true);
          q.indirectGrefs[p] = r.indirectRefs[p];
        }
        for (let p = ipages; p < q.indirectGrefs.length; p++) q.indirectGrefs[p] = 0;
      }
    }
    r.submittedAt = performance.now();
    this.ring.writeRequest(q);
    if (!this.kickScheduled) {
      this.kickScheduled = true;
      queueMicrotask(this.kickCb);
    }
  }

  /** Publishes submitted requests; notifies the backend if it asked for it. */
  kick(): void {
    this.kickScheduled = false;
    if (this.ring.pushRequests()) this.port.notify();
  }

  /** Marks the next submission as a secure discard (BLKIF_DISCARD_SECURE). */
  setSecure(r: GuestRequest, secure: boolean): void {
    r.secure = secure;
  }

  /**
   * Stops taking responses and ends every grant: the ring, data and indirect pages. Grants the
   * backend still maps are retried until it lets go (or timeoutMs passes: then it throws).
   */
  close(timeoutMs = 10_000): Promise<void> {
    this.closing ??= (async () => {
      this.sub?.unsubscribe();
      this.sub = null;
      const refs = [...this.ringRefs, ...this.lingering.splice(0)];
      for (const r of this.requests) {
        if (this.negotiated?.persistent || r.inFlight) refs.push(...r.refs.slice(0, r.persistentRefs || r.pages));
        if (this.negotiated?.persistent || r.inFlight) refs.push(...r.indirectRefs);
      }
      const unique = [...new Set(refs)].filter((ref) => ref !== undefined);
      const deadline = Date.now() + timeoutMs;
      let left = unique.filter((ref) => !this.endGrant(ref));
      while (left.length > 0) {
        if (Date.now() > deadline) {
          throw new GuestQueueError(`${left.length} grants still mapped by the backend after ${timeoutMs} ms (refs ${left.slice(0, 8).join(',')})`);
        }
        await new Promise((r) => setTimeout(r, 5));
        left = left.filter((ref) => !this.endGrant(ref));
      }
      if (this.lingerTimer) clearTimeout(this.lingerTimer);
      await this.port.unbind();
      this.domain.freePages(this.ringFrames);
      for (const r of this.requests) {
        this.domain.freePages(r.frames);
        this.domain.freePages(r.indirectFrames);
      }
    })();
    return this.closing;
  }

  // ---- responses -----------------------------------------------------------------------------

  private onEvent(): void {
    this.port.unmask();
    const ring = this.ring;
    for (;;) {
      while (ring.consumeResponse(this.rsp)) this.onResponse(this.rsp);
      if (!ring.finalCheckForResponses()) break;
    }
    if (ring.fault !== null) {
      this.sub?.unsubscribe();
      this.sub = null;
      this.onFault(ring.fault);
    }
  }

  private onResponse(rsp: BlkifResponseCopy): void {
    this.answered++;
    const tag = rsp.idLo;
    const r = tag < this.requests.length ? this.requests[tag] : undefined;
    if (r === undefined || !r.inFlight || r.serial !== rsp.idHi) {
      this.dupes++;
      return;
    }
    // An indirect request is answered with its indirect_op: the same wire operation.
    if (rsp.operation !== wireOperation(r.op)) this.badOps++;
    if (!this.negotiated!.persistent && r.op !== 'discard') {
      for (let i = 0; i < r.pages; i++) this.endOrLinger(r.refs[i]);
      if (r.pages > BLKIF_MAX_SEGMENTS_PER_REQUEST) {
        for (let p = 0; p < Math.ceil(r.pages / SEGMENTS_PER_INDIRECT_PAGE); p++) this.endOrLinger(r.indirectRefs[p]);
      }
    }
    r.inFlight = false;
    this.freeTags.push(tag);
    this.onComplete(r, rsp.status);
  }

  /** Ends a grant now, or later if the backend still maps it (its unmap may trail its response). */
  private endOrLinger(ref: number): void {
    if (this.endGrant(ref)) return;
    this.lingering.push(ref);
    if (this.lingerTimer === null) this.lingerTimer = setTimeout(() => this.retryLingering(), 2);
  }

  private retryLingering(): void {
    this.lingerTimer = null;
    const left = this.lingering.splice(0).filter((ref) => !this.endGrant(ref));
    this.lingering.push(...left);
    if (left.length > 0 && this.closing === null) this.lingerTimer = setTimeout(() => this.retryLingering(), 5);
  }

  private endGrant(ref: number): boolean {
    try {
      return this.domain.endAccess(ref);
    } catch {
      return true; // already ended
    }
  }

  // ---- pages ---------------------------------------------------------------------------------

  private ensurePages(r: GuestRequest, pages: number): void {
    if (r.frames.length >= pages) return;
    const add = this.domain.allocPages(pages - r.frames.length);
    const persistent = this.negotiated!.persistent;
    for (const f of add) {
      const view = this.domain.page(f);
      r.frames.push(f);
      r.pageViews.push(view);
      r.pageWords.push(new Uint32Array(view.buffer, view.byteOffset, XEN_PAGE_SIZE / 4));
      // Persistent grants serve reads and writes: granted writable, once.
      if (persistent) r.refs.push(this.domain.grantAccess(f, this.opts.backendDomid, false));
    }
    if (persistent) r.persistentRefs = r.refs.length;
  }

  private ensureIndirectPages(r: GuestRequest, pages: number): void {
    while (r.indirectFrames.length < pages) {
      const [f] = this.domain.allocPages(1);
      r.indirectFrames.push(f);
      r.indirectViews.push(this.domain.page(f));
      if (this.negotiated!.persistent) r.indirectRefs.push(this.domain.grantAccess(f, this.opts.backendDomid, true));
      else r.indirectRefs.push(0);
    }
  }
}

/** A switch, not a table lookup by string: this runs twice per request. */
function wireOperation(op: GuestOp): number {
  switch (op) {
    case 'read':
      return BLKIF_OP_READ;
    case 'write':
      return BLKIF_OP_WRITE;
    case 'flush':
      return BLKIF_OP_FLUSH_DISKCACHE;
    case 'barrier':
      return BLKIF_OP_WRITE_BARRIER;
    case 'discard':
      return BLKIF_OP_DISCARD;
  }
}

function segFirst(r: GuestRequest, i: number): number {
  return i === 0 ? r.firstSect : 0;
}

function segLast(r: GuestRequest, i: number): number {
  const end = r.firstSect + r.nrSectors - i * SECTORS_PER_PAGE; // sectors left from this page's start
  return Math.min(SECTORS_PER_PAGE, end) - 1;
}

/** Segment descriptors of segments [from, from+count) into one indirect page (blkif_request_segment). */
function writeDescriptors(page: Uint8Array, r: GuestRequest, from: number, count: number): void {
  for (let k = 0, o = 0; k < count; k++, o += SEGMENT_SIZE) {
    const g = r.refs[from + k];
    page[o] = g & 0xff;
    page[o + 1] = (g >>> 8) & 0xff;
    page[o + 2] = (g >>> 16) & 0xff;
    page[o + 3] = g >>> 24;
    page[o + 4] = segFirst(r, from + k);
    page[o + 5] = segLast(r, from + k);
    page[o + 6] = 0;
    page[o + 7] = 0;
  }
}

/**
 * Ring pages must be contiguous in guest memory here (one view). Freed pages come back in any
 * order: sort what we got, and if that is no run, keep taking pages until one appears.
 */
function contiguousPages(domain: SimDomain, n: number): number[] {
  // Pages freed by an earlier queue come back in any order: look for a run, not the next n.
  const got = domain.allocContiguous(n);
  if (!got) throw new GuestQueueError(`no ${n} contiguous free pages for the ring`);
  return got;
}

