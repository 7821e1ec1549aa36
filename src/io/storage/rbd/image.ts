// An open RBD image on the dataplane. Requests go to librbd's aio calls with a pooled slot index
// as the completion's argument; librbd signals completions on an eventfd that the event loop
// polls (koffi.node.poll), and rbd_poll_io_events hands them over in batches. No JS runs on
// librbd's threads for I/O (koffi's threaded callbacks would deadlock rbd_close with I/O in
// flight) and a request allocates no promise, closure or pointer object.
import koffi = require('koffi');
import { allocDma, dmaAddressOf, type DmaRegion } from '../../dma';
import { errnoName } from '../../libc';
import { StorageError } from '../errors';
import type { BlockImage, DiscardSupport, IoCallback, StorageCapabilities } from '../port';
import { callAsync, EVENT_TYPE_EVENTFD, UpdateCallback, type RbdLib } from './lib';
import { removeOwner } from './owner';
import { bufferProblem, rangeProblem } from '../bounds';

export interface RbdLogger {
  info(obj: object, msg: string): void;
  warn(obj: object, msg: string): void;
  error(obj: object, msg: string): void;
}

/**
 * How the image's exclusive lock was found at open: 'none' (free, or no exclusive-lock
 * feature, or read-only), 'broke-dead-owner' (held by this daemon's killed previous
 * incarnation, recorded in ownerFile: broken and blocklisted), 'cooperative' (held by another
 * live client: left alone, librbd asks it to hand the lock over on the first write).
 */
export type RbdTakeover = 'none' | 'broke-dead-owner' | 'cooperative';

export interface RbdImage extends BlockImage {
  readonly driver: 'rbd';
  readonly takeover: RbdTakeover;
  /** The lock owner found at open (an address), null when the lock was free. */
  readonly lockOwnerAtOpen: string | null;
  /** This client as lock owners are listed ("IP:PORT/NONCE") and its name ("client.N"). */
  readonly clientAddress: string;
  readonly clientName: string;
  readonly objectSize: number;
  readonly exclusiveLock: boolean;
}

const READ = 0;
const WRITE = 1;
const FLUSH = 2;
const DISCARD = 3;
const ZEROES = 4;
const OP_NAMES = ['read', 'write', 'flush', 'discard', 'write-zeroes'];
const ETIMEDOUT = 110;
const EFD_NONBLOCK = 0o4000;
const EFD_CLOEXEC = 0o2000000;
/** Completions taken per rbd_poll_io_events call. */
const BATCH = 64;
const TWO32 = 4294967296;

/** One request in flight; pooled, its index is the completion's argument. */
class RbdOp {
  kind = READ;
  cb: IoCallback | null = null;
  pos = 0;
  len = 0;
  /** Where a read through the bounce buffer lands; null when librbd wrote to it directly. */
  dest: Uint8Array | null = null;
  destOffset = 0;
  bounce: DmaRegion | null = null;
}

export interface RbdHandles {
  lib: RbdLib;
  cluster: unknown;
  ioctx: unknown;
  image: unknown;
}

export interface RbdSetup {
  path: string;
  readOnly: boolean;
  sizeBytes: number;
  objectSize: number;
  exclusiveLock: boolean;
  capabilities: StorageCapabilities;
  discard: DiscardSupport | null;
  takeover: RbdTakeover;
  lockOwnerAtOpen: string | null;
  clientAddress: string;
  clientName: string;
  timeoutMs: number;
  ownerFile: string | null;
  log: RbdLogger | null;
}

export class RbdImageHandle implements RbdImage {
  readonly driver = 'rbd' as const;
  readonly path: string;
  readonly readOnly: boolean;
  readonly sectorSize = 512;
  readonly physicalSectorSize = 4096;
  /** librbd talks to the OSDs itself: no page cache in between. */
  readonly direct = true;
  readonly capabilities: StorageCapabilities;
  readonly discardSupport: DiscardSupport | null;
  readonly takeover: RbdTakeover;
  readonly lockOwnerAtOpen: string | null;
  readonly clientAddress: string;
  readonly clientName: string;
  readonly objectSize: number;
  readonly exclusiveLock: boolean;

  private readonly lib: RbdLib;
  private readonly h: RbdHandles;
  private size: number;
  private readonly ops: RbdOp[] = [];
  private freeSlots: number[] = [];
  private inflight = 0;
  private closing: Promise<void> | null = null;
  private drained: (() => void) | null = null;
  private readonly compOut = new Uint32Array(2);
  private readonly comps = new Uint32Array(BATCH * 2);
  private readonly efdBuf = new Uint8Array(8);
  private readonly efd: number;
  private poller: koffi.node.PollHandle | null = null;
  private readonly listeners = new Set<(sizeBytes: number) => void>();
  private watchCb: bigint | null = null;
  private watchHandle: bigint | number | null = null;
  private refreshing = false;
  private refreshAgain = false;
  private announcedSize: number;
  private readonly timeoutMs: number;
  private readonly ownerFile: string | null;
  private readonly log: RbdLogger | null;
  private readonly onEventsBound = (): void => this.onEvents();

  constructor(h: RbdHandles, s: RbdSetup) {
    this.h = h;
    this.lib = h.lib;
    this.path = s.path;
    this.readOnly = s.readOnly;
    this.size = s.sizeBytes;
    this.announcedSize = s.sizeBytes;
    this.objectSize = s.objectSize;
    this.exclusiveLock = s.exclusiveLock;
    this.capabilities = s.capabilities;
    this.discardSupport = s.discard;
    this.takeover = s.takeover;
    this.lockOwnerAtOpen = s.lockOwnerAtOpen;
    this.clientAddress = s.clientAddress;
    this.clientName = s.clientName;
    this.timeoutMs = s.timeoutMs;
    this.ownerFile = s.ownerFile;
    this.log = s.log;
    const efd = this.lib.eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC) as number;
    if (efd < 0) throw new StorageError('EMFILE', `image ${this.path}: eventfd failed (errno ${koffi.errno()})`);
    this.efd = efd;
  }

  /** Arms the completion eventfd and the update watch; called once by open. */
  async start(): Promise<void> {
    const rc = this.lib.setImageNotification(this.h.image, this.efd, EVENT_TYPE_EVENTFD) as number;
    if (rc < 0) throw this.refuse(errnoName(-rc), `rbd_set_image_notification failed (${errnoName(-rc)})`);
    this.poller = koffi.node.poll(this.efd, { readable: true }, this.onEventsBound);
    // librbd calls this from its own thread; koffi relays it to the main thread. It only flags
    // and re-reads the size asynchronously: nothing here may wait for librbd.
    this.watchCb = koffi.register(() => this.onUpdate(), koffi.pointer(UpdateCallback));
    const handle: unknown[] = [0n];
    const wrc = await callAsync<number>(this.lib.updateWatch, this.h.image, handle, this.watchCb, null);
    if (wrc < 0) {
      koffi.unregister(this.watchCb);
      this.watchCb = null;
      this.log?.warn({ image: this.path, errno: errnoName(-wrc) }, 'rbd update watch refused: online resize will not be seen');
    } else {
      this.watchHandle = handle[0] as bigint;
    }
  }

  get sizeBytes(): number {
    return this.size;
  }

  read(buf: Uint8Array, bufOffset: number, len: number, pos: number, cb: IoCallback): void {
    const refusal = this.check('read', buf, bufOffset, len, pos);
    if (refusal !== null) return process.nextTick(cb, refusal);
    this.submit(READ, buf, bufOffset, len, pos, cb);
  }

  write(buf: Uint8Array, bufOffset: number, len: number, pos: number, cb: IoCallback): void {
    const refusal = this.readOnly
      ? this.refuse('EROFS', 'write to a read-only image')
      : this.check('write', buf, bufOffset, len, pos);
    if (refusal !== null) return process.nextTick(cb, refusal);
    // fua needs nothing more: capabilities.fua is only offered without librbd's cache, where a
    // write completes once the OSDs committed it.
    this.submit(WRITE, buf, bufOffset, len, pos, cb);
  }

  flush(cb: IoCallback): void {
    if (this.closing !== null) return process.nextTick(cb, this.refuse('EBADF', 'image closed'));
    this.submit(FLUSH, null, 0, 0, 0, cb);
  }

  discard(pos: number, len: number, secure: boolean, cb: IoCallback): void {
    let refusal: StorageError | null = null;
    if (this.closing !== null) refusal = this.refuse('EBADF', 'image closed');
    else if (this.readOnly) refusal = this.refuse('EROFS', 'discard on a read-only image');
    else if (secure) refusal = this.refuse('EOPNOTSUPP', 'secure discard not supported');
    else refusal = this.checkRange('discard', len, pos);
    if (refusal !== null) return process.nextTick(cb, refusal);
    if (len === 0) return process.nextTick(cb, null);
    this.submit(DISCARD, null, 0, len, pos, cb);
  }

  writeZeroes(pos: number, len: number, cb: IoCallback): void {
    let refusal: StorageError | null = null;
    if (this.closing !== null) refusal = this.refuse('EBADF', 'image closed');
    else if (this.readOnly) refusal = this.refuse('EROFS', 'write-zeroes on a read-only image');
    else if (this.lib.aioWriteZeroes === null) refusal = this.refuse('EOPNOTSUPP', 'this librbd has no write-zeroes');
    else refusal = this.checkRange('write-zeroes', len, pos);
    if (refusal !== null) return process.nextTick(cb, refusal);
    if (len === 0) return process.nextTick(cb, null);
    this.submit(ZEROES, null, 0, len, pos, cb);
  }

  async refreshSize(): Promise<number> {
    const out: unknown[] = [0n];
    const rc = await callAsync<number>(this.lib.getSize, this.h.image, out);
    if (rc < 0) throw this.refuse(errnoName(-rc), `rbd_get_size failed (${errnoName(-rc)})`);
    this.size = Number(out[0]);
    return this.size;
  }

  onResize(listener: (sizeBytes: number) => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  close(): Promise<void> {
    if (this.closing === null) this.closing = this.shut();
    return this.closing;
  }

  /** Requests in flight (for tests and status). */
  get inFlight(): number {
    return this.inflight;
  }

  private submit(kind: number, buf: Uint8Array | null, bufOffset: number, len: number, pos: number, cb: IoCallback): void {
    const slot = this.freeSlots.length > 0 ? this.freeSlots.pop()! : this.grow();
    const op = this.ops[slot]!;
    const lib = this.lib;
    let rc = lib.aioCreateCompletion(slot, null, this.compOut) as number;
    if (rc < 0) {
      this.freeSlots.push(slot);
      return process.nextTick(cb, this.refuse(errnoName(-rc), `rbd_aio_create_completion failed`));
    }
    const comp = this.compOut[0]! + this.compOut[1]! * TWO32;
    op.kind = kind;
    op.cb = cb;
    op.pos = pos;
    op.len = len;
    op.dest = null;
    let addr = 0;
    if (buf !== null) {
      addr = dmaAddressOf(buf);
      if (addr >= 0) addr += bufOffset;
      else addr = this.bounce(op, kind, buf, bufOffset, len);
    }
    const image = this.h.image;
    switch (kind) {
      case READ:
        rc = lib.aioRead(image, pos, len, addr, comp) as number;
        break;
      case WRITE:
        rc = lib.aioWrite(image, pos, len, addr, comp) as number;
        break;
      case FLUSH:
        rc = lib.aioFlush(image, comp) as number;
        break;
      case DISCARD:
        rc = lib.aioDiscard(image, pos, len, comp) as number;
        break;
      default:
        rc = lib.aioWriteZeroes!(image, pos, len, comp, 0, 0) as number;
    }
    if (rc < 0) {
      lib.aioRelease(comp);
      op.cb = null;
      op.dest = null;
      this.freeSlots.push(slot);
      return process.nextTick(cb, this.failure(op, rc));
    }
    this.inflight++;
  }

  /** A buffer that is not DMA memory goes through the slot's own native buffer. */
  private bounce(op: RbdOp, kind: number, buf: Uint8Array, bufOffset: number, len: number): number {
    if (op.bounce === null || op.bounce.length < len) {
      op.bounce?.free();
      op.bounce = allocDma(len);
    }
    if (kind === WRITE) op.bounce.view.set(buf.subarray(bufOffset, bufOffset + len));
    else {
      op.dest = buf;
      op.destOffset = bufOffset;
    }
    return Number(op.bounce.address);
  }

  private grow(): number {
    const slot = this.ops.length;
    this.ops.push(new RbdOp());
    return slot;
  }

  private onEvents(): void {
    const lib = this.lib;
    lib.read(this.efd, this.efdBuf, 8); // resets the eventfd; EAGAIN when already reset
    for (;;) {
      const n = lib.pollIoEvents(this.h.image, this.comps, BATCH) as number;
      for (let i = 0; i < n; i++) {
        const comp = this.comps[2 * i]! + this.comps[2 * i + 1]! * TWO32;
        const slot = lib.aioGetArg(comp) as number;
        const rv = lib.aioGetReturnValue(comp) as number;
        lib.aioRelease(comp);
        this.finish(Number(slot), Number(rv));
      }
      if (n < BATCH) break;
    }
  }

  private finish(slot: number, rv: number): void {
    const op = this.ops[slot]!;
    const cb = op.cb!;
    op.cb = null;
    let err: StorageError | null = null;
    if (rv < 0) err = this.failure(op, rv);
    else if (op.kind === READ && rv !== op.len) err = this.refuse('EIO', `short read: ${rv} of ${op.len} bytes at ${op.pos}`);
    else if (op.dest !== null) op.dest.set(op.bounce!.view.subarray(0, op.len), op.destOffset);
    op.dest = null;
    this.freeSlots.push(slot);
    this.inflight--;
    cb(err);
    if (this.inflight === 0 && this.drained !== null) this.drained();
  }

  private failure(op: RbdOp, rv: number): StorageError {
    const what = op.kind === FLUSH ? 'flush' : `${OP_NAMES[op.kind]} of ${op.len} bytes at ${op.pos}`;
    if (-rv === ETIMEDOUT) {
      // rados_osd_op_timeout: the cluster did not answer in time. The guest gets an I/O error.
      return this.refuse('EIO', `${what} timed out after ${this.timeoutMs} ms (the Ceph cluster did not answer)`);
    }
    const name = errnoName(-rv);
    return this.refuse(name.startsWith('errno') ? 'EIO' : name, `${what} failed: ${name}`);
  }

  private onUpdate(): void {
    if (this.closing !== null) return;
    if (this.refreshing) {
      this.refreshAgain = true;
      return;
    }
    this.refreshing = true;
    this.refreshSize().then(
      (size) => this.settleRefresh(size),
      (e: Error) => {
        this.log?.warn({ image: this.path, err: e.message }, 'rbd size re-read after an update failed');
        this.settleRefresh(null);
      },
    );
  }

  private settleRefresh(size: number | null): void {
    this.refreshing = false;
    if (size !== null && size !== this.announcedSize) {
      const before = this.announcedSize;
      this.announcedSize = size;
      // blkback passes shrinks on too (xen_vbd_resize): the guest is told, I/O past the new
      // end is refused here; shrinking a disk in use is the operator's risk, so say so.
      if (size < before) this.log?.warn({ image: this.path, before, after: size }, 'rbd image shrank while attached');
      else this.log?.info({ image: this.path, before, after: size }, 'rbd image grew');
      for (const l of this.listeners) l(size);
    }
    if (this.refreshAgain && this.closing === null) {
      this.refreshAgain = false;
      this.onUpdate();
    }
  }

  private async shut(): Promise<void> {
    if (this.inflight > 0) await new Promise<void>((resolve) => (this.drained = resolve));
    const lib = this.lib;
    const h = this.h;
    // Unwatch on a worker thread: it waits for a running update callback, which needs the
    // main thread, so the main thread must be free.
    if (this.watchHandle !== null) {
      const urc = await callAsync<number>(lib.updateUnwatch, h.image, this.watchHandle);
      if (urc < 0) this.log?.warn({ image: this.path, errno: errnoName(-urc) }, 'rbd update unwatch failed');
      this.watchHandle = null;
    }
    if (this.watchCb !== null) {
      koffi.unregister(this.watchCb);
      this.watchCb = null;
    }
    const rc = await callAsync<number>(lib.close, h.image);
    this.poller?.close();
    this.poller = null;
    lib.closeFd(this.efd);
    lib.ioctxDestroy(h.ioctx);
    await callAsync(lib.shutdown, h.cluster);
    for (const op of this.ops) op.bounce?.free();
    if (rc < 0) this.log?.warn({ image: this.path, errno: errnoName(-rc) }, 'rbd_close failed');
    if (this.ownerFile !== null && !this.readOnly) {
      await removeOwner(this.ownerFile, this.clientAddress).catch((e: Error) =>
        this.log?.warn({ image: this.path, ownerFile: this.ownerFile, err: e.message }, 'rbd owner record not removed'),
      );
    }
  }

  private check(what: string, buf: Uint8Array, bufOffset: number, len: number, pos: number): StorageError | null {
    if (this.closing !== null) return this.refuse('EBADF', 'image closed');
    const outside = bufferProblem(what, buf, bufOffset, len);
    if (outside !== null) return this.refuse('EINVAL', outside);
    if (len > this.capabilities.maxTransferBytes) {
      return this.refuse('EINVAL', `${what} of ${len} bytes is larger than ${this.capabilities.maxTransferBytes}`);
    }
    return this.checkRange(what, len, pos);
  }

  private checkRange(what: string, len: number, pos: number): StorageError | null {
    const outside = rangeProblem(what, len, pos, this.size);
    if (outside !== null) return this.refuse('ERANGE', outside);
    return null;
  }

  private refuse(code: string, message: string): StorageError {
    return new StorageError(code, `image ${this.path}: ${message}`, this.path);
  }
}
