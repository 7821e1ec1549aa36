// The request loop of one ring: consume everything available, validate each copy, move data by
// grant copy (one call per batch) or through mappings, run storage I/O with callbacks, and
// publish responses in ring order through the publication journal, one notify per batch.
// Nothing is allocated per request on the copy path: slots, buffers and copy segments are reused.
import { performance } from 'node:perf_hooks';
import type { Subscription } from 'rxjs';
import type { BackRing } from '../../blkif/back-ring';
import { BLKIF_RSP_EOPNOTSUPP, BLKIF_RSP_ERROR, BLKIF_RSP_OKAY, SECTOR_SIZE, SEGMENT_SIZE, SEGMENTS_PER_INDIRECT_PAGE, XEN_PAGE_SIZE } from '../../blkif/constants';
import { statusForError, type BlkifRequestError } from '../../blkif/errors';
import { parseIndirectSegments } from '../../blkif/indirect';
import { BlkifRequestCopy } from '../../blkif/messages';
import { parseRequest, type BlkifDeviceLimits } from '../../blkif/request';
import type { RingFault } from '../../blkif/ring-fault';
import { allocDma, type DmaRegion } from '../../io/dma';
import type { EvtchnPort, GrantTable } from '../../io/ports';
import { capabilitiesOf, type BlockImage } from '../../io/storage/port';
import type { Logger } from '../../log';
import type { DataplaneStats } from '../dataplane-port';
import type { BufferPool } from './buffers';
import { CopyBatch } from './copy-batch';
import type { CrashHooks } from './crash-points';
import { DataplaneError } from './errors';
import type { PublicationJournal } from './journal';
import { LatencyHistogram } from './latency-histogram';
import { PersistentGrantCache, SharedMapping } from './mapped-grants';
import { Publisher } from './publisher';
import { SlotQueue } from './slot-queue';
import {
  DONE,
  FREE,
  IO,
  MAPPING,
  QUEUED,
  Slot,
  STEP_POST_FLUSH,
  STEP_PRE_FLUSH,
  STEP_WRITE,
  VIA_COPY,
  VIA_MAPPED,
} from './slot';

export type DataPath = 'copy' | 'map' | 'persistent';
/** ring: responses in ring order (crash-safe, the default). completion: as requests finish (measurement only). */
export type PublicationOrder = 'ring' | 'completion';

export interface EngineOptions {
  readonly ring: BackRing;
  readonly port: EvtchnPort;
  readonly gnttab: GrantTable;
  readonly domid: number;
  readonly image: BlockImage;
  readonly limits: BlkifDeviceLimits;
  readonly dataPath: DataPath;
  readonly journal: PublicationJournal;
  readonly buffers: BufferPool;
  readonly crash: CrashHooks;
  readonly logger: Logger;
  readonly onFatal: (err: Error) => void;
  readonly order: PublicationOrder;
  /** Persistent grants kept mapped at most. */
  readonly persistentCapacity: number;
}

const copyBytes = Buffer.prototype.copy;
/** Refs per map call in map and persistent modes. */
const MAP_CHUNK = 1024;
/** Invalid requests logged one by one before the log is thinned out. */
const LOUD_REFUSALS = 8;
/** Journal failures: one log line per this many ms at most. */
const JOURNAL_LOG_MS = 10_000;

export class RingEngine {
  private readonly ring: BackRing;
  private readonly port: EvtchnPort;
  private readonly gnttab: GrantTable;
  private readonly domid: number;
  private readonly image: BlockImage;
  /** The storage makes a single write durable (barrier and flush requests with data use it). */
  private readonly fua: boolean;
  /** Replaced (not mutated) on an online resize. */
  private limits: BlkifDeviceLimits;
  private readonly journal: PublicationJournal;
  private readonly buffers: BufferPool;
  private readonly crash: CrashHooks;
  private readonly log: Logger;
  private readonly inOrder: boolean;
  private readonly dataPath: DataPath;

  private readonly copy = new BlkifRequestCopy();
  private readonly freeSlots: Slot[] = [];
  /** Ring order: the slot of each unanswered ring index (index & mask). */
  private readonly byIndex: (Slot | undefined)[];
  private readonly mask: number;
  /** Consumed in the current drain, in ring order. */
  private readonly consumed: Slot[] = [];
  private nConsumed = 0;
  /** Valid requests waiting their turn, in ring order. */
  private readonly queue: SlotQueue;
  /** Picked by pump(), started together by startPicked(). */
  private readonly picked: Slot[] = [];
  private nPicked = 0;
  /** Reads whose data goes to the guest at the next publication. */
  private readonly copyOut: Slot[] = [];
  private nCopyOut = 0;
  /** Completion order (PublicationOrder 'completion'). */
  private readonly completed: Slot[] = [];
  private nCompleted = 0;

  private readonly batch: CopyBatch;
  private readonly publisher: Publisher;
  /**
   * Indirect descriptor pages of one drain, one region of pages per consumed position; made on
   * the first indirect request (an idle device holds no scratch memory).
   */
  private indirectScratch: DmaRegion | null = null;
  private readonly indirectViews: Uint8Array[] = [];
  private readonly indirectPages: number;
  private readonly slotCapacity: number;
  private readonly persistent: PersistentGrantCache | null;

  /** A barrier being executed: nothing after it starts before it is answered. */
  private fence: Slot | null = null;
  /** Slots started and not finished (mapping or I/O). */
  private running = 0;
  private inFlightCount = 0;
  private consuming = true;
  private fatalSeen = false;
  private publishScheduled = false;
  /** An event was taken: the port is unmasked at the next publication, in the same write as its notify. */
  private unmaskDue = false;
  private readonly publishCb = (): void => this.guard(() => this.publish());
  private sub: Subscription | null = null;
  private drained: (() => void) | null = null;
  private refusals = 0;

  // Statistics (DataplaneStats).
  private rdReq = 0;
  private wrReq = 0;
  private fReq = 0;
  private dsReq = 0;
  private ooReq = 0;
  private rdSect = 0;
  private wrSect = 0;
  private errors = 0;
  private readonly latency = new LatencyHistogram();
  private journalFailures = 0;
  /** When the last journal failure was logged (ms): one line per JOURNAL_LOG_MS at most. */
  private journalLoggedAt = -Infinity;
  private journalUnlogged = 0;

  constructor(private readonly o: EngineOptions) {
    this.ring = o.ring;
    this.port = o.port;
    this.gnttab = o.gnttab;
    this.domid = o.domid;
    this.image = o.image;
    this.fua = capabilitiesOf(o.image).fua;
    this.limits = o.limits;
    this.journal = o.journal;
    this.buffers = o.buffers;
    this.crash = o.crash;
    this.log = o.logger;
    this.inOrder = o.order === 'ring';
    this.dataPath = o.dataPath;
    const entries = o.ring.entries;
    this.mask = entries - 1;
    this.byIndex = new Array<Slot | undefined>(entries);
    this.slotCapacity = Math.max(o.limits.maxIndirectSegments, 11);
    this.queue = new SlotQueue(entries);
    const b = o.buffers;
    const indirectPages = Math.ceil(o.limits.maxIndirectSegments / 512);
    this.batch = new CopyBatch(Math.max(entries * 11 + b.maxBig * b.bigPages, entries * indirectPages));
    this.indirectPages = indirectPages;
    this.persistent = o.dataPath === 'persistent' ? new PersistentGrantCache(o.persistentCapacity, o.gnttab, o.domid) : null;
    this.publisher = new Publisher(o.ring, o.journal, o.crash, () => this.journalFailed());
  }

  /** Starts serving: answers what the ring holds, then follows the event channel. */
  start(): void {
    this.sub = this.port.events$.subscribe({
      next: () => this.guard(() => this.onEvent()),
      complete: () => {
        if (this.consuming) this.fatal(new DataplaneError('event-channel-lost', 'the event channel was closed under the ring'));
      },
    });
    // The frontend may have produced (and notified) while nobody listened.
    this.port.notify();
    this.guard(() => this.drain());
  }

  /** Stops consuming; resolves once every consumed request is answered and published. */
  stop(): Promise<void> {
    this.consuming = false;
    this.sub?.unsubscribe();
    this.sub = null;
    if (this.inFlightCount === 0) return Promise.resolve();
    return new Promise<void>((resolve) => (this.drained = resolve));
  }

  /**
   * Slots are made as the queue depth first reaches them, then kept: a 16-page ring has 512 and a
   * guest that never queues that deep would hold them for nothing.
   */
  private newSlot(): Slot {
    const s = new Slot(this.slotCapacity);
    s.onIo = (err) => this.guard(() => this.onIo(s, err));
    return s;
  }

  private makeIndirectScratch(): DmaRegion {
    const per = this.indirectPages * XEN_PAGE_SIZE;
    const entries = this.mask + 1;
    const region = allocDma(entries * per);
    for (let i = 0; i < entries; i++) this.indirectViews.push(region.view.subarray(i * per, (i + 1) * per));
    this.indirectScratch = region;
    return region;
  }

  /** Releases what the engine holds (after stop resolved). */
  async dispose(): Promise<void> {
    this.indirectScratch?.free();
    await this.persistent?.close();
  }

  get inFlight(): number {
    return this.inFlightCount;
  }

  get stats(): DataplaneStats {
    return {
      rdReq: this.rdReq,
      wrReq: this.wrReq,
      fReq: this.fReq,
      dsReq: this.dsReq,
      ooReq: this.ooReq,
      rdSect: this.rdSect,
      wrSect: this.wrSect,
      errors: this.errors,
      journalFailures: this.journalFailures,
      inFlight: this.inFlightCount,
      latency: this.latency.snapshot(),
    };
  }

  /** The image grew or shrank: requests are bounded by the new size from now on. */
  resized(sizeBytes: number): void {
    this.limits = { ...this.limits, sectors: Math.floor(sizeBytes / SECTOR_SIZE) };
  }

  get persistentGrants(): number {
    return this.persistent?.size ?? 0;
  }

  private onEvent(): void {
    // The port stays masked until publish() runs later in this turn of the event loop: a notify
    // meanwhile is kept pending and raises a new event at the unmask, so none is lost, and the
    // unmask travels with the responses' notify instead of costing a wake-up of its own.
    this.unmaskDue = true;
    this.schedulePublish();
    this.drain();
  }

  // ---- consumption -------------------------------------------------------------------------

  private drain(): void {
    if (!this.consuming) return;
    const ring = this.ring;
    const t0 = performance.now();
    for (;;) {
      while (ring.consumeRequest(this.copy)) this.accept(t0);
      if (ring.fault !== null) return this.ringFault(ring.fault);
      if (!ring.finalCheckForRequests()) {
        if (ring.fault !== null) return this.ringFault(ring.fault);
        break;
      }
    }
    if (this.nConsumed === 0) return;
    if (this.crash.armed) this.crash.at('after-consume');
    this.fetchIndirect();
    const n = this.nConsumed;
    this.nConsumed = 0;
    for (let i = 0; i < n; i++) {
      const s = this.consumed[i];
      if (s.state === QUEUED) this.queue.push(s);
    }
    // A socket driver sends the batch's requests in one write (Linux's block plug).
    this.image.plug?.();
    this.pump();
    this.startPicked();
    this.image.unplug?.();
  }

  /** Takes the request just copied into this.copy: validates it into a free slot. */
  private accept(t0: number): void {
    // Unanswered <= entries: a slot is free, or one more can be made.
    const s = this.freeSlots.pop() ?? this.newSlot();
    s.index = (this.ring.reqCons - 1) >>> 0;
    s.t0 = t0;
    s.buf = -1;
    s.copyOut = false;
    s.via = VIA_COPY;
    s.step = 0;
    s.shared = null;
    s.copyIn = false;
    s.ooCounted = false;
    this.inFlightCount++;
    if (this.inOrder) this.byIndex[s.index & this.mask] = s;
    this.consumed[this.nConsumed++] = s;
    const err = parseRequest(this.copy, this.limits, s.req);
    if (err !== null) return this.refuse(s, err);
    s.valid = true;
    s.state = QUEUED;
    if (s.req.indirect) {
      s.fitSegments();
      const pages = s.req.indirectPages;
      const local = this.indirectScratch ?? this.makeIndirectScratch();
      const base = (this.nConsumed - 1) * this.indirectViews[0].byteLength;
      s.copyFirst = this.batch.length;
      s.copyCount = pages;
      // Only the descriptors' bytes: a 16-segment request needs 128 of the page's 4096.
      const nr = s.req.nrSegments;
      for (let p = 0; p < pages; p++) {
        const inPage = Math.min(SEGMENTS_PER_INDIRECT_PAGE, nr - p * SEGMENTS_PER_INDIRECT_PAGE);
        this.batch.add(false, this.domid, s.req.indirectGrefs[p], 0, inPage * SEGMENT_SIZE, local, base + p * XEN_PAGE_SIZE);
      }
    }
  }

  /** One copy for the descriptor pages of every indirect request consumed, then their segments. */
  private fetchIndirect(): void {
    const batch = this.batch;
    if (batch.length === 0) return;
    batch.run(this.gnttab);
    for (let i = 0; i < this.nConsumed; i++) {
      const s = this.consumed[i];
      if (s.state !== QUEUED || !s.req.indirect) continue;
      if (!batch.allOk(s.copyFirst, s.copyCount)) {
        this.refuseText(s, BLKIF_RSP_ERROR, 'indirect descriptor pages cannot be copied (grant refused)');
        continue;
      }
      const err = parseIndirectSegments(this.indirectViews[i], s.req, this.limits);
      if (err !== null) this.refuse(s, err);
    }
    batch.clear();
  }

  private refuse(s: Slot, err: BlkifRequestError): void {
    this.refuseText(s, statusForError(err), err.message);
  }

  private refuseText(s: Slot, status: number, why: string): void {
    s.valid = false;
    this.refusals++;
    if (this.refusals <= LOUD_REFUSALS || (this.refusals & 1023) === 0) {
      this.log.warn({ index: s.index, refused: this.refusals }, `request refused: ${why}`);
    }
    this.complete(s, status);
  }

  // ---- scheduling ----------------------------------------------------------------------------

  /** Picks queued requests that may start now, in ring order. */
  private pump(): void {
    const q = this.queue;
    while (q.length > 0 && this.fence === null) {
      const s = q.peek();
      const isBarrier = s.req.kind === 'barrier';
      if (isBarrier && this.running > 0) return; // drain what is in flight first
      const pages = s.pages;
      if (pages > 0) {
        const id = this.buffers.acquire(pages);
        if (id < 0) {
          if (!s.ooCounted) {
            s.ooCounted = true;
            this.ooReq++;
          }
          return;
        }
        s.buf = id;
      }
      q.shift();
      if (isBarrier) this.fence = s;
      this.running++;
      this.picked[this.nPicked++] = s;
    }
  }

  /** Brings write data in (one grant copy for the batch), then starts the storage I/O. */
  private startPicked(): void {
    const n = this.nPicked;
    if (n === 0) return;
    this.nPicked = 0;
    const batch = this.batch;
    let viaCopyIn = 0;
    let mapReads: Slot[] | null = null;
    let mapWrites: Slot[] | null = null;
    let missing: Set<number> | null = null;
    let waitPersistent: Slot[] | null = null;
    for (let i = 0; i < n; i++) {
      const s = this.picked[i];
      if (s.pages === 0) {
        this.startIo(s);
        continue;
      }
      if (this.dataPath === 'persistent') {
        const p = this.persistent!;
        if (p.resolve(s.req.segGref, s.req.nrSegments, s.segView, s.segBase)) {
          s.via = VIA_MAPPED;
          if (s.req.kind !== 'read') this.copyInMapped(s);
          this.startIo(s);
          continue;
        }
        missing ??= new Set();
        if (p.collectMissing(s.req.segGref, s.req.nrSegments, missing)) {
          s.state = MAPPING;
          (waitPersistent ??= []).push(s);
          continue;
        }
      } else if (this.dataPath === 'map') {
        s.state = MAPPING;
        if (s.req.kind === 'read') (mapReads ??= []).push(s);
        else (mapWrites ??= []).push(s);
        continue;
      }
      if (s.req.kind === 'read') this.startIo(s);
      else {
        this.addCopyIn(s);
        viaCopyIn++;
      }
    }
    if (viaCopyIn > 0) this.runCopyIn(this.picked, n);
    if (mapReads) this.mapBatch(mapReads, true);
    if (mapWrites) this.mapBatch(mapWrites, false);
    if (waitPersistent) this.mapPersistent([...missing!], waitPersistent);
    if (batch.length !== 0) throw new Error('copy batch left non-empty');
    if (this.crash.armed) this.crash.at('mid-io');
  }

  private addCopyIn(s: Slot): void {
    const req = s.req;
    const region = this.buffers.region(s.buf);
    let off = this.buffers.offset(s.buf);
    s.copyFirst = this.batch.length;
    s.copyCount = req.nrSegments;
    s.copyIn = true;
    for (let i = 0; i < req.nrSegments; i++) {
      const len = req.segLength(i);
      this.batch.add(false, this.domid, req.segGref[i], req.segOffset(i), len, region, off);
      off += len;
    }
  }

  /** Runs the copy-in batch, then starts the slots among `list` that were waiting for it. */
  private runCopyIn(list: Slot[], n: number): void {
    const batch = this.batch;
    batch.run(this.gnttab);
    for (let i = 0; i < n; i++) {
      const s = list[i];
      if (!s.copyIn) continue;
      s.copyIn = false;
      if (batch.allOk(s.copyFirst, s.copyCount)) this.startIo(s);
      else this.fail(s, BLKIF_RSP_ERROR, 'write data cannot be copied from the guest (grant refused)');
    }
    batch.clear();
  }

  private mapBatch(list: Slot[], forReads: boolean): void {
    for (let from = 0; from < list.length; ) {
      let refs = 0;
      let to = from;
      while (to < list.length && (to === from || refs + list[to].req.nrSegments <= MAP_CHUNK)) refs += list[to++].req.nrSegments;
      const group = list.slice(from, to);
      from = to;
      const grefs: number[] = [];
      for (const s of group) for (let i = 0; i < s.req.nrSegments; i++) grefs.push(s.req.segGref[i]);
      // Reads write into guest pages: writable; writes only read them (the guest may grant read-only).
      this.gnttab.map(this.domid, grefs, forReads).then(
        (m) =>
          this.guard(() => {
            const shared = new SharedMapping(m, group.length, this.log);
            let page = 0;
            for (const s of group) {
              s.via = VIA_MAPPED;
              s.shared = shared;
              for (let i = 0; i < s.req.nrSegments; i++, page++) {
                s.segView[i] = m.view;
                s.segBase[i] = page * XEN_PAGE_SIZE;
              }
              if (!forReads) {
                this.copyInMapped(s);
                this.releaseShared(s);
              }
              this.startIo(s);
            }
          }),
        () => this.guard(() => this.fallBackToCopy(group)),
      );
    }
  }

  private mapPersistent(refs: number[], waiting: Slot[]): void {
    const p = this.persistent!;
    const chunks: Promise<boolean>[] = [];
    for (let i = 0; i < refs.length; i += MAP_CHUNK) chunks.push(p.add(refs.slice(i, i + MAP_CHUNK)));
    void Promise.all(chunks).then(() =>
      this.guard(() => {
        const viaCopy: Slot[] = [];
        for (const s of waiting) {
          if (p.resolve(s.req.segGref, s.req.nrSegments, s.segView, s.segBase)) {
            s.via = VIA_MAPPED;
            if (s.req.kind !== 'read') this.copyInMapped(s);
            this.startIo(s);
          } else viaCopy.push(s);
        }
        if (viaCopy.length > 0) this.fallBackToCopy(viaCopy);
      }),
    );
  }

  /** Slots whose grants could not be mapped: grant copy tells each segment's fate. */
  private fallBackToCopy(list: Slot[]): void {
    let copyIns = 0;
    for (const s of list) {
      s.via = VIA_COPY;
      s.shared = null;
      if (s.req.kind === 'read') this.startIo(s);
      else {
        this.addCopyIn(s);
        copyIns++;
      }
    }
    if (copyIns > 0) this.runCopyIn(list, list.length);
  }

  private copyInMapped(s: Slot): void {
    const req = s.req;
    const dst = this.buffers.region(s.buf).view;
    let off = this.buffers.offset(s.buf);
    for (let i = 0; i < req.nrSegments; i++) {
      const len = req.segLength(i);
      const src = s.segBase[i] + req.segOffset(i);
      copyBytes.call(s.segView[i], dst, off, src, src + len);
      off += len;
    }
  }

  private copyOutMapped(s: Slot): void {
    const req = s.req;
    const src = this.buffers.region(s.buf).view;
    let off = this.buffers.offset(s.buf);
    for (let i = 0; i < req.nrSegments; i++) {
      const len = req.segLength(i);
      copyBytes.call(src, s.segView[i], s.segBase[i] + req.segOffset(i), off, off + len);
      off += len;
    }
  }

  private releaseShared(s: Slot): void {
    if (s.shared !== null) {
      s.shared.release();
      s.shared = null;
    }
  }

  // ---- storage -------------------------------------------------------------------------------

  private startIo(s: Slot): void {
    s.state = IO;
    const req = s.req;
    const pos = req.sector * SECTOR_SIZE;
    const len = req.nrSectors * SECTOR_SIZE;
    switch (req.kind) {
      case 'read':
        return this.image.read(this.buffers.region(s.buf).view, this.buffers.offset(s.buf), len, pos, s.onIo);
      case 'write':
        return this.image.write(this.buffers.region(s.buf).view, this.buffers.offset(s.buf), len, pos, s.onIo);
      case 'discard':
        return this.image.discard(pos, len, req.secure, s.onIo);
      case 'flush':
      case 'barrier':
        s.step = STEP_PRE_FLUSH;
        return this.image.flush(s.onIo);
    }
  }

  private onIo(s: Slot, err: NodeJS.ErrnoException | null): void {
    if (s.state !== IO) throw new Error(`storage completion for a slot in state ${s.state}`);
    const req = s.req;
    if (err !== null) {
      const status = err.code === 'EOPNOTSUPP' ? BLKIF_RSP_EOPNOTSUPP : BLKIF_RSP_ERROR;
      return this.fail(s, status, `${req.kind} of ${req.nrSectors} sectors at ${req.sector}: ${err.message}`);
    }
    switch (req.kind) {
      case 'read':
        if (s.via === VIA_MAPPED) {
          this.copyOutMapped(s);
          this.releaseShared(s);
        } else {
          s.copyOut = true;
          this.copyOut[this.nCopyOut++] = s;
        }
        return this.finish(s, BLKIF_RSP_OKAY);
      case 'write':
      case 'discard':
        return this.finish(s, BLKIF_RSP_OKAY);
      case 'flush':
      case 'barrier': {
        // Durable: answered only after the data written before (and with) it reached storage.
        const pos = req.sector * SECTOR_SIZE;
        if (s.step === STEP_PRE_FLUSH && req.nrSegments > 0) {
          // A FUA write is durable when it completes: no flush after it.
          s.step = this.fua ? STEP_POST_FLUSH : STEP_WRITE;
          return this.image.write(this.buffers.region(s.buf).view, this.buffers.offset(s.buf), req.nrSectors * SECTOR_SIZE, pos, s.onIo, this.fua);
        }
        if (s.step === STEP_WRITE) {
          s.step = STEP_POST_FLUSH;
          return this.image.flush(s.onIo);
        }
        return this.finish(s, BLKIF_RSP_OKAY);
      }
    }
  }

  private fail(s: Slot, status: number, why: string): void {
    this.refusals++;
    if (this.refusals <= LOUD_REFUSALS || (this.refusals & 1023) === 0) {
      this.log.warn({ index: s.index, failed: this.refusals }, `request failed: ${why}`);
    }
    this.releaseShared(s);
    this.finish(s, status);
  }

  /** The request's outcome is known; it waits for publication. */
  private finish(s: Slot, status: number): void {
    this.running--;
    if (s === this.fence) this.fence = null;
    if (!s.copyOut && s.buf >= 0) {
      this.buffers.release(s.buf);
      s.buf = -1;
    }
    this.complete(s, status);
  }

  private complete(s: Slot, status: number): void {
    s.status = status;
    s.state = DONE;
    if (!this.inOrder) this.completed[this.nCompleted++] = s;
    this.schedulePublish();
  }

  private schedulePublish(): void {
    if (!this.publishScheduled) {
      this.publishScheduled = true;
      setImmediate(this.publishCb);
    }
  }

  // ---- publication ---------------------------------------------------------------------------

  private publish(): void {
    this.publishScheduled = false;
    if (this.unmaskDue) {
      this.unmaskDue = false;
      if (this.consuming) this.port.unmask();
    }
    if (this.nCopyOut > 0) this.copyReadsOut();
    const ring = this.ring;
    const start = ring.rspProdPvt;
    let n = 0;
    if (this.inOrder) {
      const max = ring.unanswered;
      while (n < max && this.byIndex[(start + n) & this.mask]!.state === DONE) n++;
    } else {
      n = this.nCompleted;
    }
    if (n > 0) this.publishBatch(start, n);
    // Buffers came back and the fence may have lifted: start what waited.
    this.pump();
    this.startPicked();
    if (this.inFlightCount === 0 && this.drained !== null) {
      const resolve = this.drained;
      this.drained = null;
      resolve();
    }
  }

  /** One grant copy for the data of every read completed since the last publication. */
  private copyReadsOut(): void {
    const batch = this.batch;
    const n = this.nCopyOut;
    this.nCopyOut = 0;
    for (let k = 0; k < n; k++) {
      const s = this.copyOut[k];
      const req = s.req;
      const region = this.buffers.region(s.buf);
      let off = this.buffers.offset(s.buf);
      s.copyFirst = batch.length;
      s.copyCount = req.nrSegments;
      for (let i = 0; i < req.nrSegments; i++) {
        const len = req.segLength(i);
        batch.add(true, this.domid, req.segGref[i], req.segOffset(i), len, region, off);
        off += len;
      }
    }
    batch.run(this.gnttab);
    for (let k = 0; k < n; k++) {
      const s = this.copyOut[k];
      if (!batch.allOk(s.copyFirst, s.copyCount)) {
        s.status = BLKIF_RSP_ERROR;
        this.refusals++;
        if (this.refusals <= LOUD_REFUSALS) this.log.warn({ index: s.index }, 'read data cannot be copied to the guest (grant refused)');
      }
      s.copyOut = false;
      this.buffers.release(s.buf);
      s.buf = -1;
    }
    batch.clear();
  }

  /** Journal, slots, rsp_prod (the Publisher), then notify. */
  private publishBatch(start: number, n: number): void {
    const pub = this.publisher;
    const list = this.inOrder ? null : this.completed;
    for (let k = 0; k < n; k++) {
      const s = list === null ? this.byIndex[(start + k) & this.mask]! : list[k];
      pub.set(k, s.req.idLo, s.req.idHi, s.req.operation, s.status);
    }
    const notify = pub.publish(start, n);
    if (notify) this.port.notify();
    const now = performance.now();
    for (let k = 0; k < n; k++) {
      const s = list === null ? this.byIndex[(start + k) & this.mask]! : list[k];
      this.account(s, now);
      if (list === null) this.byIndex[(start + k) & this.mask] = undefined;
      s.state = FREE;
      s.valid = false;
      this.freeSlots.push(s);
      this.inFlightCount--;
    }
    this.nCompleted = 0;
  }

  /** A batch published without its journal record (the write failed). */
  private journalFailed(): void {
    this.journalFailures++;
    this.journalProblem(this.journal.lastError?.message ?? 'publication journal write failed');
  }

  /** Logs a journal failure, at most one line per JOURNAL_LOG_MS (with how many were not logged). */
  private journalProblem(message: string): void {
    const now = performance.now();
    if (now - this.journalLoggedAt < JOURNAL_LOG_MS) {
      this.journalUnlogged++;
      return;
    }
    this.journalLoggedAt = now;
    this.log.error(
      { journalFailures: this.journalFailures, notLogged: this.journalUnlogged },
      `${message}: responses are published without their journal record (exactly-once is not guaranteed across a crash until it is repaired)`,
    );
    this.journalUnlogged = 0;
  }

  /**
   * Periodic repair of the journal file (deleted, truncated or failing under the ring). A failed
   * repair counts as a failure and is tried again at the next call.
   */
  checkJournal(): void {
    if (!this.consuming) return;
    let repaired: string | null;
    try {
      repaired = this.journal.check();
    } catch (e) {
      this.journalFailures++;
      this.journalProblem((e as Error).message);
      return;
    }
    if (repaired !== null) {
      // Found only now (deleted or truncated under the ring): a failure no commit counted.
      if (repaired === 'recreated' || repaired === 'extended') this.journalFailures++;
      this.journalLoggedAt = -Infinity;
      this.log.warn({ journalFailures: this.journalFailures }, `publication journal ${this.journal.path} ${repaired}: publication is journaled again`);
    }
  }

  private account(s: Slot, now: number): void {
    this.latency.record((now - s.t0) * 1000);
    if (s.status !== BLKIF_RSP_OKAY) this.errors++;
    if (!s.valid) return;
    const req = s.req;
    const ok = s.status === BLKIF_RSP_OKAY;
    switch (req.kind) {
      case 'read':
        this.rdReq++;
        if (ok) this.rdSect += req.nrSectors;
        return;
      case 'write':
        this.wrReq++;
        if (ok) this.wrSect += req.nrSectors;
        return;
      case 'discard':
        this.dsReq++;
        return;
      case 'flush':
      case 'barrier':
        this.fReq++;
        if (req.nrSegments > 0) {
          this.wrReq++;
          if (ok) this.wrSect += req.nrSectors;
        }
        return;
    }
  }

  // ---- faults --------------------------------------------------------------------------------

  private ringFault(f: RingFault): void {
    this.fatal(new DataplaneError('ring-fault', `frontend d${this.domid}: ${f.message}`));
  }

  private fatal(err: Error): void {
    this.consuming = false;
    if (this.fatalSeen) return;
    this.fatalSeen = true;
    this.log.error({ err: err.message }, 'ring stopped');
    this.o.onFatal(err);
  }

  /** A bug in a callback costs this ring, never the process. */
  private guard(f: () => void): void {
    try {
      f();
    } catch (e) {
      this.fatal(new DataplaneError('internal', `internal error: ${(e as Error).stack ?? String(e)}`));
    }
  }
}
