// The raw image engine: a regular file or a block device, byte for byte. O_DIRECT where the
// file system allows it, buffered otherwise. Every request is checked against the image size
// here too (defence in depth): nothing outside [0, sizeBytes) is ever read, written or punched.
import * as fs from 'node:fs';
import * as os from 'node:os';
import { allocDma, dmaAddressOf } from '../dma';
import { AioContext, type AioWaiter } from './aio';
import {
  BLKDISCARD,
  BLKSECDISCARD,
  FALLOC_FL_KEEP_SIZE,
  FALLOC_FL_PUNCH_HOLE,
  fallocateAsync,
  errnoName,
  ioctlRangeAsync,
} from '../libc';
import { probeBlockDevice } from './blockdev';
import { memoryFileSystem } from './memory-fs';
import { openErrorMessage, StorageError } from './errors';
import type { BlockImage, DiscardSupport, IoCallback, OpenImageOptions } from './port';
import { bufferProblem, rangeProblem } from './bounds';

const SECTOR = 512;
const { EAGAIN, EOPNOTSUPP } = os.constants.errno;
const { O_RDONLY, O_RDWR, O_DIRECT, O_EXCL } = fs.constants;

export interface RawImageOptions extends OpenImageOptions {
  /**
   * Offer secure discard (BLKSECDISCARD) on a block device that discards. No probe can tell
   * without erasing data, so it is the caller's call; default false. Files never offer it.
   */
  secureDiscard?: boolean;
  /**
   * How reads and writes are issued: 'inline' (a synchronous syscall on the calling thread, the
   * callback still comes later), 'aio' (Linux native AIO, O_DIRECT only) or 'threads' (libuv's
   * threadpool). Default 'auto': inline for a file on a memory file system, where I/O is a
   * memcpy; aio for O_DIRECT elsewhere; threads for buffered I/O on a device (io_submit would
   * wait for the device there) or where AIO is not available.
   */
  issue?: 'auto' | IssueMode;
}

export type IssueMode = 'inline' | 'aio' | 'threads';

export interface RawImage extends BlockImage {
  readonly kind: 'file' | 'block-device';
  /** Why I/O is buffered although O_DIRECT was asked for; null otherwise. */
  readonly directFallback: string | null;
  /** Why discard is not offered (or stopped being offered); null while it is. */
  readonly discardNote: string | null;
  /** Bytes after the last whole 512-byte sector of a file: never exposed. */
  readonly ignoredTailBytes: number;
  readonly issue: IssueMode;
  /** Why reads and writes are issued that way. */
  readonly issueReason: string;
  /** AIO transfers the kernel could not start without blocking: they went to the threadpool. */
  readonly aioFallbacks: number;
}

function errnoCode(e: unknown): string | undefined {
  return (e as NodeJS.ErrnoException | null)?.code;
}

function openFd(path: string, flags: number): Promise<number> {
  return new Promise((resolve, reject) => fs.open(path, flags, (err, fd) => (err ? reject(err) : resolve(fd))));
}

function closeQuietly(fd: number): Promise<void> {
  return new Promise((resolve) => fs.close(fd, () => resolve()));
}

/** errno names for "cannot do that here" (ENOTSUP and EOPNOTSUPP are one value on Linux). */
function notSupported(code: string | undefined): boolean {
  return code === 'EOPNOTSUPP' || code === 'ENOTSUP' || code === 'ENOTTY' || code === 'ENOSYS';
}

function normalCode(code: string | undefined): string {
  return code === 'ENOTSUP' ? 'EOPNOTSUPP' : (code ?? 'EIO');
}

function fallocate(fd: number, mode: number, off: number, len: number): Promise<string | null> {
  return new Promise((resolve) =>
    fallocateAsync(fd, mode, off, len, (err) => resolve(err ? normalCode(err.code) : null)),
  );
}

/**
 * Reads one logical sector through a buffer aligned to that size only (a guest segment may
 * start at any sector of its page): the smallest alignment the dataplane will use. Returns the
 * errno name when O_DIRECT refuses it.
 */
function probeDirectAlignment(fd: number, sizeBytes: number, align: number): string | null {
  const dma = allocDma(3 * 4096);
  try {
    fs.readSync(fd, dma.view, align, align, sizeBytes >= 2 * align ? align : 0);
    return null;
  } catch (e) {
    return errnoCode(e) ?? 'EIO';
  } finally {
    dma.free();
  }
}

/** Opens a raw image (file or block device). Errors are StorageErrors with one-line messages. */
export async function openRawImage(path: string, opts: RawImageOptions = {}): Promise<RawImage> {
  const readOnly = opts.readOnly ?? false;
  const wantDirect = opts.direct ?? true;
  const fail = (code: string | undefined, message?: string): never => {
    throw new StorageError(code ?? 'EIO', message ?? openErrorMessage(path, code, readOnly), path);
  };

  let st: fs.Stats;
  try {
    st = await fs.promises.stat(path);
  } catch (e) {
    return fail(errnoCode(e));
  }
  if (st.isDirectory()) fail('EISDIR');
  const isBlock = st.isBlockDevice();
  if (!st.isFile() && !isBlock) fail('EINVAL', `image ${path} is not a regular file or block device`);

  // A writable block device is claimed exclusively (fails while mounted), as blkback does.
  const flags = (readOnly ? O_RDONLY : O_RDWR) | (isBlock && !readOnly ? O_EXCL : 0);
  let fd = -1;
  let direct = false;
  let directFallback: string | null = wantDirect ? null : 'not asked for';
  try {
    if (wantDirect) {
      try {
        fd = await openFd(path, flags | O_DIRECT);
        direct = true;
      } catch (e) {
        if (errnoCode(e) !== 'EINVAL') throw e;
        directFallback = 'the file system refuses O_DIRECT';
      }
    }
    if (fd < 0) fd = await openFd(path, flags);
  } catch (e) {
    return fail(errnoCode(e));
  }

  try {
    const fst = fs.fstatSync(fd);
    if (fst.ino !== st.ino || fst.dev !== st.dev) fail('EAGAIN', `image ${path} was replaced while being opened`);
    let rawSize: number;
    let logical = SECTOR;
    let physical = SECTOR;
    let discard: DiscardSupport | null = null;
    let discardNote: string | null = readOnly ? 'read-only' : null;
    if (isBlock) {
      const info = probeBlockDevice(fd, fst.rdev);
      rawSize = info.sizeBytes;
      logical = info.logicalSectorSize;
      physical = info.physicalSectorSize;
      if (!readOnly) {
        if (info.discardMaxBytes > 0) {
          const granularity = info.discardGranularity || logical;
          discard = { granularity, alignment: 0, secure: opts.secureDiscard === true };
        } else {
          discardNote = 'the device does not discard';
        }
      }
    } else {
      rawSize = fst.size;
    }
    const sizeBytes = Math.floor(rawSize / SECTOR) * SECTOR;
    if (sizeBytes === 0) {
      fail(
        'EINVAL',
        rawSize === 0
          ? `image ${path} is empty`
          : `image ${path} is smaller than one 512-byte sector (${rawSize} bytes)`,
      );
    }
    if (direct) {
      const refused = probeDirectAlignment(fd, sizeBytes, logical);
      if (refused !== null) {
        await closeQuietly(fd);
        fd = -1;
        fd = await openFd(path, flags).catch((e) => fail(errnoCode(e)));
        direct = false;
        directFallback = `O_DIRECT refused ${logical}-byte aligned I/O (${refused})`;
      }
    }
    if (!isBlock && !readOnly) {
      // Probe hole punching past the end of the file, where no data lives.
      const probeAt = Math.ceil(rawSize / 4096) * 4096;
      const refused = await fallocate(fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, probeAt, 4096);
      if (refused === null) discard = { granularity: fst.blksize || 4096, alignment: 0, secure: false };
      else discardNote = `the file system cannot punch holes (${refused})`;
    }
    const { issue, issueReason, aio } = chooseIssue(opts.issue ?? 'auto', isBlock ? null : memoryFileSystem(path), direct);
    return new RawImageFile(path, fd, {
      issue,
      issueReason,
      aio,
      kind: isBlock ? 'block-device' : 'file',
      sizeBytes,
      ignoredTailBytes: isBlock ? 0 : rawSize - sizeBytes,
      readOnly,
      logical,
      physical,
      discard,
      discardNote,
      direct,
      directFallback,
    });
  } catch (e) {
    if (fd >= 0) await closeQuietly(fd);
    if (e instanceof StorageError) throw e;
    return fail(errnoCode(e), `image ${path} cannot be used: ${(e as Error).message}`);
  }
}

function chooseIssue(
  asked: 'auto' | IssueMode,
  memFs: string | null,
  direct: boolean,
): { issue: IssueMode; issueReason: string; aio: AioContext | null } {
  if (asked === 'inline' || asked === 'threads') return { issue: asked, issueReason: 'asked for', aio: null };
  if (asked === 'auto' && memFs !== null) return { issue: 'inline', issueReason: `the file is in memory (${memFs})`, aio: null };
  if (!direct) {
    const why = asked === 'aio' ? 'Linux AIO needs O_DIRECT' : 'buffered I/O on a device';
    return { issue: 'threads', issueReason: why, aio: null };
  }
  const aio = AioContext.shared();
  if (typeof aio === 'string') return { issue: 'threads', issueReason: `Linux AIO is not available (${aio})`, aio: null };
  return { issue: 'aio', issueReason: asked === 'aio' ? 'asked for' : 'O_DIRECT on a device', aio };
}

interface Setup {
  issue: IssueMode;
  issueReason: string;
  aio: AioContext | null;
  kind: 'file' | 'block-device';
  sizeBytes: number;
  ignoredTailBytes: number;
  readOnly: boolean;
  logical: number;
  physical: number;
  discard: DiscardSupport | null;
  discardNote: string | null;
  direct: boolean;
  directFallback: string | null;
}

/** One read or write in flight; pooled so that a request allocates no closure. */
class IoOp implements AioWaiter {
  img!: RawImageFile;
  /** Address of buf[bufOffset] for AIO, -1 when buf is not DMA memory. */
  addr = -1;
  write = false;
  buf!: Uint8Array;
  bufOffset = 0;
  len = 0;
  pos = 0;
  done = 0;
  cb: IoCallback | null = null;
  /** Inline ops: the outcome, handed to cb on the next tick. */
  err: NodeJS.ErrnoException | null = null;
  readonly step = (err: NodeJS.ErrnoException | null, n: number): void => this.img.onStep(this, err, n);

  aioDone(res: number): void {
    this.img.onAio(this, res);
  }
}

class RawImageFile implements RawImage {
  readonly kind: 'file' | 'block-device';
  readonly readOnly: boolean;
  readonly sectorSize: number;
  readonly physicalSectorSize: number;
  readonly direct: boolean;
  readonly directFallback: string | null;
  readonly ignoredTailBytes: number;
  readonly issue: IssueMode;
  readonly issueReason: string;
  private readonly inline: boolean;
  private readonly aio: AioContext | null;
  /** AIO transfers that would have blocked and went to the threadpool instead. */
  aioFallbacks = 0;
  /** Inline ops done, their callbacks due on the next tick (one tick per batch). */
  private readonly settled: IoOp[] = [];
  private settleScheduled = false;
  private readonly settleBound = (): void => this.settleAll();
  private size: number;
  private discardSup: DiscardSupport | null;
  private note: string | null;
  private readonly pool: IoOp[] = [];
  private inflight = 0;
  private closing: Promise<void> | null = null;
  private drained: (() => void) | null = null;

  constructor(
    readonly path: string,
    private readonly fd: number,
    s: Setup,
  ) {
    this.kind = s.kind;
    this.size = s.sizeBytes;
    this.ignoredTailBytes = s.ignoredTailBytes;
    this.readOnly = s.readOnly;
    this.sectorSize = s.logical;
    this.physicalSectorSize = s.physical;
    this.discardSup = s.discard;
    this.note = s.discardNote;
    this.direct = s.direct;
    this.directFallback = s.directFallback;
    this.issue = s.issue;
    this.issueReason = s.issueReason;
    this.inline = s.issue === 'inline';
    this.aio = s.aio;
  }

  get sizeBytes(): number {
    return this.size;
  }

  get discardSupport(): DiscardSupport | null {
    return this.discardSup;
  }

  get discardNote(): string | null {
    return this.note;
  }

  read(buf: Uint8Array, bufOffset: number, len: number, pos: number, cb: IoCallback): void {
    const refusal = this.check('read', buf, bufOffset, len, pos);
    if (refusal !== null) return process.nextTick(cb, refusal);
    this.start(false, buf, bufOffset, len, pos, cb);
  }

  write(buf: Uint8Array, bufOffset: number, len: number, pos: number, cb: IoCallback): void {
    const refusal = this.readOnly
      ? this.refuse('EROFS', 'write to a read-only image')
      : this.check('write', buf, bufOffset, len, pos);
    if (refusal !== null) return process.nextTick(cb, refusal);
    this.start(true, buf, bufOffset, len, pos, cb);
  }

  flush(cb: IoCallback): void {
    if (this.closing !== null) return process.nextTick(cb, this.refuse('EBADF', 'image closed'));
    this.inflight++;
    fs.fdatasync(this.fd, (err) => {
      this.finished();
      cb(err ? this.wrap(err, 'flush') : null);
    });
  }

  discard(pos: number, len: number, secure: boolean, cb: IoCallback): void {
    const sup = this.discardSup;
    let refusal: StorageError | null = null;
    if (this.closing !== null) refusal = this.refuse('EBADF', 'image closed');
    else if (this.readOnly) refusal = this.refuse('EROFS', 'discard on a read-only image');
    else if (sup === null || (secure && !sup.secure)) {
      refusal = this.refuse('EOPNOTSUPP', `${secure ? 'secure ' : ''}discard not supported`);
    }
    else refusal = this.checkRange('discard', len, pos);
    if (refusal !== null) return process.nextTick(cb, refusal);
    if (len === 0) return process.nextTick(cb, null);
    this.inflight++;
    const done = (err: NodeJS.ErrnoException | null): void => {
      this.finished();
      if (err && notSupported(err.code)) {
        // Refused on real use: stop offering it, and say so.
        if (secure && this.discardSup) this.discardSup = { ...this.discardSup, secure: false };
        else this.discardSup = null;
        const by = this.kind === 'file' ? 'file system' : 'device';
        this.note = `${secure ? 'secure ' : ''}discard refused by the ${by} (${normalCode(err.code)})`;
        return cb(this.refuse('EOPNOTSUPP', this.note));
      }
      cb(err ? this.wrap(err, `discard of ${len} bytes at ${pos}`) : null);
    };
    if (this.kind === 'file') fallocateAsync(this.fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, pos, len, done);
    else ioctlRangeAsync(this.fd, secure ? BLKSECDISCARD : BLKDISCARD, pos, len, done);
  }

  async refreshSize(): Promise<number> {
    let raw: number;
    if (this.kind === 'file') {
      raw = await new Promise<number>((resolve, reject) =>
        fs.fstat(this.fd, (e, st) => (e ? reject(e) : resolve(st.size))),
      );
    }
    else raw = probeBlockDevice(this.fd, fs.fstatSync(this.fd).rdev).sizeBytes;
    this.size = Math.floor(raw / SECTOR) * SECTOR;
    return this.size;
  }

  close(): Promise<void> {
    if (this.closing === null) {
      this.closing = (async () => {
        // An fd closed under an in-flight read could be reused by another open: wait.
        if (this.inflight > 0) await new Promise<void>((resolve) => (this.drained = resolve));
        await closeQuietly(this.fd);
      })();
    }
    return this.closing;
  }

  /** Continues or completes one op; called by IoOp.step. */
  onStep(op: IoOp, err: NodeJS.ErrnoException | null, n: number): void {
    if (err === null) {
      op.done += n;
      if (op.done < op.len && n > 0) return this.submit(op);
    }
    this.settle(op, err);
  }

  /** An AIO transfer (or what was left of one) ended with res bytes or -errno. */
  onAio(op: IoOp, res: number): void {
    if (res === -EAGAIN || res === -EOPNOTSUPP) {
      // It would have blocked the event loop: the threadpool does what is left.
      this.aioFallbacks++;
      return this.submit(op);
    }
    if (res < 0) {
      const code = errnoName(-res);
      return this.settle(op, Object.assign(new Error(code), { code, errno: res }));
    }
    op.done += res;
    if (op.done < op.len && res > 0) return this.aio!.submit(op, op.write, this.fd, op.addr + op.done, op.len - op.done, op.pos + op.done);
    this.settle(op, null);
  }

  /** The op ended (err, or short at EOF when done < len): answers its callback. */
  private settle(op: IoOp, err: NodeJS.ErrnoException | null): void {
    if (err === null && op.done < op.len) {
      // EOF inside the image (a file truncated behind our back): reads see zeros.
      if (op.write) err = this.refuse('EIO', `short write at ${op.pos + op.done}`);
      else op.buf.fill(0, op.bufOffset + op.done, op.bufOffset + op.len);
    }
    const cb = op.cb!;
    let failure: StorageError | null = null;
    if (err !== null) {
      const what = `${op.write ? 'write' : 'read'} of ${op.len} bytes at ${op.pos}`;
      failure = err instanceof StorageError ? err : this.wrap(err, what);
    }
    op.cb = null;
    op.err = null;
    op.buf = EMPTY;
    this.pool.push(op);
    this.finished();
    cb(failure);
  }

  private start(write: boolean, buf: Uint8Array, bufOffset: number, len: number, pos: number, cb: IoCallback): void {
    if (len === 0) return process.nextTick(cb, null);
    const op = this.pool.pop() ?? new IoOp();
    op.img = this;
    op.write = write;
    op.buf = buf;
    op.bufOffset = bufOffset;
    op.len = len;
    op.pos = pos;
    op.done = 0;
    op.cb = cb;
    this.inflight++;
    if (this.inline) return this.runInline(op);
    if (this.aio !== null) {
      const at = dmaAddressOf(buf);
      if (at >= 0) {
        op.addr = at + bufOffset;
        return this.aio.submit(op, write, this.fd, op.addr, len, pos);
      }
    }
    op.addr = -1;
    this.submit(op);
  }

  /** The whole transfer now, on this thread; the callback follows on the next tick. */
  private runInline(op: IoOp): void {
    try {
      while (op.done < op.len) {
        const d = op.done;
        const n = op.write
          ? fs.writeSync(this.fd, op.buf, op.bufOffset + d, op.len - d, op.pos + d)
          : fs.readSync(this.fd, op.buf, op.bufOffset + d, op.len - d, op.pos + d);
        if (n === 0) break;
        op.done += n;
      }
    } catch (e) {
      op.err = e as NodeJS.ErrnoException;
    }
    this.settled.push(op);
    if (!this.settleScheduled) {
      this.settleScheduled = true;
      process.nextTick(this.settleBound);
    }
  }

  private settleAll(): void {
    // Ops settled by the callbacks themselves join this loop.
    const q = this.settled;
    let i = 0;
    try {
      for (; i < q.length; i++) this.settle(q[i], q[i].err);
    } finally {
      // A throwing callback leaves the rest for another tick.
      q.splice(0, Math.min(i + 1, q.length));
      this.settleScheduled = q.length > 0;
      if (this.settleScheduled) process.nextTick(this.settleBound);
    }
  }

  private submit(op: IoOp): void {
    const d = op.done;
    if (op.write) fs.write(this.fd, op.buf, op.bufOffset + d, op.len - d, op.pos + d, op.step);
    else fs.read(this.fd, op.buf, op.bufOffset + d, op.len - d, op.pos + d, op.step);
  }

  private finished(): void {
    this.inflight--;
    if (this.inflight === 0 && this.drained !== null) {
      const resolve = this.drained;
      this.drained = null;
      resolve();
    }
  }

  private check(what: string, buf: Uint8Array, bufOffset: number, len: number, pos: number): StorageError | null {
    if (this.closing !== null) return this.refuse('EBADF', 'image closed');
    const outside = bufferProblem(what, buf, bufOffset, len);
    if (outside !== null) return this.refuse('EINVAL', outside);
    const align = this.sectorSize;
    if (this.direct && (pos % align !== 0 || len % align !== 0)) {
      return this.refuse('EINVAL', `${what}: O_DIRECT needs ${align}-byte multiples (pos ${pos}, ${len} bytes)`);
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

  private wrap(err: NodeJS.ErrnoException, what: string): StorageError {
    const code = normalCode(err.code);
    return new StorageError(code, `image ${this.path}: ${what}: ${code}`, this.path);
  }
}

const EMPTY = new Uint8Array(0);
