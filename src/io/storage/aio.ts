// Linux native AIO (io_setup, io_submit, io_getevents) for O_DIRECT images: the transfers started
// in one turn of the event loop go to the kernel in one io_submit, and completions come back in
// batches from one io_getevents waiting on a worker thread. Through libuv's threadpool each
// request costs two thread hand-offs; on a busy host those wake-ups, not the device, set the pace.
// One context serves the whole process, so at most one worker thread waits in io_getevents.
// Transfers go with RWF_NOWAIT: what would block in io_submit (block allocation, a busy queue)
// comes back as EAGAIN instead of stalling every ring of the process.
import koffi = require('koffi');
import { allocDma, type DmaRegion } from '../dma';
import { errnoName } from '../libc';

/**
 * Someone waiting for one transfer: res is the byte count or -errno. -EAGAIN (or -EOPNOTSUPP)
 * means the kernel would have had to wait inside io_submit, on the event loop: the caller
 * issues that transfer some other way.
 */
export interface AioWaiter {
  aioDone(res: number): void;
}

interface Syscalls {
  readonly io_setup: number;
  readonly io_submit: number;
  readonly io_getevents: number;
}

const SYSCALLS: Partial<Record<string, Syscalls>> = {
  x64: { io_setup: 206, io_submit: 209, io_getevents: 208 },
  arm64: { io_setup: 0, io_submit: 2, io_getevents: 4 },
};

/** Fail with EAGAIN instead of blocking: io_submit runs on the event loop. */
const RWF_NOWAIT = 0x8;
const IOCB_CMD_PREAD = 0;
const IOCB_CMD_PWRITE = 1;
const IOCB_BYTES = 64;
const EVENT_BYTES = 32;
const EAGAIN = 11;
const EINTR = 4;
const TWO32 = 0x100000000;

/** Transfers the process-wide context has in flight at most; more wait their turn. */
export const AIO_CAPACITY = 1024;

type Call = ReturnType<koffi.LibraryHandle['func']>;

interface Waiting {
  w: AioWaiter;
  write: boolean;
  fd: number;
  addr: number;
  len: number;
  pos: number;
}

export class AioContext {
  private readonly iocbs: DataView;
  /** The iocb pointers of one io_submit. */
  private readonly batch: DataView;
  private readonly events: DataView;
  private readonly iocbAt: number;
  private readonly batchAt: number;
  private readonly eventsAt: number;
  private readonly waiters: (AioWaiter | null)[];
  private readonly freeSlots: Int32Array;
  private nFree: number;
  /** Slots filled and not yet accepted by io_submit: a FIFO ring over `capacity` entries. */
  private readonly pending: Int32Array;
  private pendingHead = 0;
  private nPending = 0;
  /** Transfers that found every slot taken. */
  private readonly overflow: Waiting[] = [];
  private inKernel = 0;
  private flushScheduled = false;
  private armed = false;
  private retryTimer: NodeJS.Timeout | null = null;
  private readonly flushCb = (): void => this.flush();
  private readonly reapCb = (err: unknown, n: number): void => this.reap(err, n);

  private constructor(
    private readonly ctx: number,
    private readonly mem: DmaRegion,
    readonly capacity: number,
    private readonly nr: Syscalls,
    private readonly sys: Call,
  ) {
    const base = mem.view.buffer;
    const addr = Number(mem.address);
    this.iocbAt = 0;
    this.batchAt = capacity * IOCB_BYTES;
    this.eventsAt = this.batchAt + capacity * 8;
    this.iocbs = new DataView(base, this.iocbAt, capacity * IOCB_BYTES);
    this.batch = new DataView(base, this.batchAt, capacity * 8);
    this.events = new DataView(base, this.eventsAt, capacity * EVENT_BYTES);
    this.iocbAt += addr;
    this.batchAt += addr;
    this.eventsAt += addr;
    this.waiters = new Array<AioWaiter | null>(capacity).fill(null);
    this.freeSlots = new Int32Array(capacity);
    for (let i = 0; i < capacity; i++) this.freeSlots[i] = capacity - 1 - i;
    this.nFree = capacity;
    this.pending = new Int32Array(capacity);
  }

  /** Transfers asked for and not yet answered. */
  get inFlight(): number {
    return this.capacity - this.nFree + this.overflow.length;
  }

  /**
   * Queues a transfer between [addr, addr + len) of this process's memory (aligned for O_DIRECT)
   * and fd at pos, submitted with the others of this tick. The waiter hears exactly once, never
   * before this call returns.
   */
  submit(w: AioWaiter, write: boolean, fd: number, addr: number, len: number, pos: number): void {
    if (this.nFree === 0) this.overflow.push({ w, write, fd, addr, len, pos });
    else this.fill(this.freeSlots[--this.nFree], w, write, fd, addr, len, pos);
  }

  private fill(slot: number, w: AioWaiter, write: boolean, fd: number, addr: number, len: number, pos: number): void {
    const v = this.iocbs;
    const o = slot * IOCB_BYTES;
    v.setUint32(o, slot, true); // aio_data: how the completion finds its waiter
    v.setUint32(o + 4, 0, true);
    v.setUint32(o + 8, 0, true); // aio_key
    v.setUint32(o + 12, RWF_NOWAIT, true); // aio_rw_flags
    v.setUint16(o + 16, write ? IOCB_CMD_PWRITE : IOCB_CMD_PREAD, true);
    v.setInt16(o + 18, 0, true); // aio_reqprio
    v.setUint32(o + 20, fd, true);
    v.setUint32(o + 24, addr % TWO32, true); // aio_buf
    v.setUint32(o + 28, Math.floor(addr / TWO32), true);
    v.setUint32(o + 32, len, true); // aio_nbytes
    v.setUint32(o + 36, 0, true);
    v.setUint32(o + 40, pos % TWO32, true); // aio_offset
    v.setUint32(o + 44, Math.floor(pos / TWO32), true);
    v.setUint32(o + 48, 0, true); // aio_reserved2
    v.setUint32(o + 52, 0, true);
    v.setUint32(o + 56, 0, true); // aio_flags
    v.setUint32(o + 60, 0, true); // aio_resfd
    this.waiters[slot] = w;
    this.pending[(this.pendingHead + this.nPending) % this.capacity] = slot;
    this.nPending++;
    if (!this.flushScheduled) {
      this.flushScheduled = true;
      process.nextTick(this.flushCb);
    }
  }

  /** Hands everything pending to the kernel, in as few io_submit calls as it accepts. */
  private flush(): void {
    this.flushScheduled = false;
    while (this.nPending > 0) {
      const n = this.nPending;
      for (let k = 0; k < n; k++) {
        const iocb = this.iocbAt + this.pending[(this.pendingHead + k) % this.capacity] * IOCB_BYTES;
        this.batch.setUint32(k * 8, iocb % TWO32, true);
        this.batch.setUint32(k * 8 + 4, Math.floor(iocb / TWO32), true);
      }
      const rc = this.sys(this.nr.io_submit, this.ctx, n, this.batchAt, 0, 0) as number;
      if (rc > 0) {
        this.inKernel += rc;
        this.dropPending(rc);
        continue;
      }
      const errno = rc < 0 ? koffi.errno() : EAGAIN;
      if (errno === EAGAIN || errno === EINTR) {
        // No room in the kernel now: a completion makes some; with none in flight, a timer.
        if (this.inKernel === 0 && this.retryTimer === null) {
          this.retryTimer = setTimeout(() => {
            this.retryTimer = null;
            this.flush();
          }, 1);
        }
        break;
      }
      // The first iocb was refused (EBADF, EINVAL...): answer it, go on with the rest.
      const slot = this.pending[this.pendingHead];
      this.dropPending(1);
      this.complete(slot, -errno);
    }
    this.arm();
  }

  private dropPending(count: number): void {
    this.pendingHead = (this.pendingHead + count) % this.capacity;
    this.nPending -= count;
  }

  private arm(): void {
    if (this.armed || this.inKernel === 0) return;
    this.armed = true;
    this.sys.async(this.nr.io_getevents, this.ctx, 1, this.capacity, this.eventsAt, 0, this.reapCb);
  }

  private reap(err: unknown, n: number): void {
    this.armed = false;
    if (err || n < 0) {
      const errno = err ? 0 : koffi.errno();
      // A signal interrupted the wait: wait again. Anything else leaves transfers unanswered.
      if (!err && errno === EINTR) return this.arm();
      throw new Error(`io_getevents: ${err ? String(err) : errnoName(errno)}`);
    }
    const ev = this.events;
    this.inKernel -= n;
    for (let k = 0; k < n; k++) {
      const o = k * EVENT_BYTES;
      const slot = ev.getUint32(o, true);
      const res = ev.getUint32(o + 16, true) + ev.getInt32(o + 20, true) * TWO32;
      this.complete(slot, res);
    }
    // Slots came back: transfers that waited for one get theirs.
    while (this.overflow.length > 0 && this.nFree > 0) {
      const t = this.overflow.shift()!;
      this.fill(this.freeSlots[--this.nFree], t.w, t.write, t.fd, t.addr, t.len, t.pos);
    }
    if (this.nPending > 0 && !this.flushScheduled) this.flush();
    else this.arm();
  }

  private complete(slot: number, res: number): void {
    const w = this.waiters[slot]!;
    this.waiters[slot] = null;
    this.freeSlots[this.nFree++] = slot;
    w.aioDone(res);
  }

  /** The process-wide context, made on first use; a string says why there is none. */
  static shared(): AioContext | string {
    if (shared === undefined) shared = AioContext.create(AIO_CAPACITY);
    return shared;
  }

  private static create(capacity: number): AioContext | string {
    const nr = SYSCALLS[process.arch];
    if (!nr) return `no Linux AIO syscalls known for ${process.arch}`;
    let sys: Call;
    try {
      // glibc's syscall() only moves registers: a fixed prototype calls it correctly.
      sys = koffi.load('libc.so.6').func('long syscall(long nr, uint64_t a, uint64_t b, uint64_t c, uint64_t d, uint64_t e)');
    } catch (e) {
      return `libc: ${(e as Error).message}`;
    }
    const bytes = capacity * (IOCB_BYTES + 8 + EVENT_BYTES);
    const mem = allocDma(bytes + 8);
    const rc = sys(nr.io_setup, capacity, Number(mem.address) + bytes, 0, 0, 0) as number;
    if (rc < 0) {
      const errno = koffi.errno();
      mem.free();
      return `io_setup: ${errnoName(errno)}`;
    }
    const v = new DataView(mem.view.buffer, bytes, 8);
    return new AioContext(v.getUint32(0, true) + v.getUint32(4, true) * TWO32, mem, capacity, nr, sys);
  }
}

let shared: AioContext | string | undefined;
