// The publication journal (ARCHITECTURE.md, "Exactly-once completion across a daemon crash"):
// before the response slots of a batch overwrite its requests, the batch is recorded in a small
// per-device file, so a SIGKILL at any instruction leaves either a complete record or none. On
// restart a batch whose end lies beyond the shared rsp_prod is published again from the record.
//
// The file is written, never mapped: a mapping faults (SIGBUS) on a full file system or when the
// file is truncated under it; a write returns an error the dataplane can report. Its space is
// allocated at open (every byte written once), so that a batch's write overwrites blocks the file
// already owns. One write per batch; the record only has to survive the process, not the machine
// (no fsync).
//
// Record (u32 words): 0 magic, 1 version, 2 capacity, 3 ring key, 4 start, 5 count, 6 check,
// then from word 16, 4 words per response: id lo, id hi, operation, status (as u32). The check
// covers the header and the count entries: a torn or partial write (a process killed mid-write,
// a short write on a full disk) fails it and is never replayed. The previous record is not needed
// once a new batch is written: its batch was fully published before the next one started.
import * as fs from 'node:fs';
import { pwrite } from '../../io/libc';

const MAGIC = 0x4a504258; // "XBPJ"
/** 2: written with pwrite, check over header and entries (1 was a mapping, check over the header). */
const VERSION = 2;
const HEADER_WORDS = 16;
const ENTRY_WORDS = 4;
const W_MAGIC = 0;
const W_VERSION = 1;
const W_CAPACITY = 2;
const W_KEY = 3;
const W_START = 4;
const W_COUNT = 5;
const W_CHECK = 6;

/** A batch recorded and possibly not (fully) published. */
export interface JournaledBatch {
  readonly start: number;
  readonly count: number;
}

/** The journal cannot be opened or written: an errno code (ENOSPC, EROFS, EACCES, EIO...) and a line. */
export class JournalError extends Error {
  constructor(
    message: string,
    readonly code: string,
  ) {
    super(message);
    this.name = 'JournalError';
  }
}

function errnoOf(e: unknown): string {
  return (e as NodeJS.ErrnoException).code ?? 'EIO';
}

function journalError(path: string, what: string, e: unknown): JournalError {
  const code = errnoOf(e);
  return new JournalError(`publication journal ${path}: ${what}: ${code}`, code);
}

/** Bytes of the file for a ring of `capacity` entries (whole pages). */
export function journalBytes(capacity: number): number {
  return Math.ceil(((HEADER_WORDS + ENTRY_WORDS * capacity) * 4) / 4096) * 4096;
}

export class PublicationJournal {
  /** The record as last written (and the file's whole contents at open). */
  private readonly buf: Buffer;
  private readonly words: Uint32Array;
  private readonly statuses: Int32Array;
  private fd: number;
  private ino: number;
  /** The last failure (errno code and what failed), until a write succeeds again. */
  lastError: JournalError | null = null;

  private constructor(
    readonly path: string,
    fd: number,
    ino: number,
    buf: Buffer,
    readonly capacity: number,
    private readonly key: number,
  ) {
    this.fd = fd;
    this.ino = ino;
    this.buf = buf;
    this.words = new Uint32Array(buf.buffer, buf.byteOffset, buf.byteLength >> 2);
    this.statuses = new Int32Array(buf.buffer, buf.byteOffset, buf.byteLength >> 2);
  }

  /**
   * Opens (creating if needed) the journal of one ring and allocates its space. `key` names the
   * ring (see ringKey): a journal written for another ring, or by another layout, is reset, never
   * replayed. Throws JournalError when the file cannot be opened, read or allocated, unless
   * `degrade`: then the record on file (if it can be read) is still there to republish, and the
   * journal starts unwritable (`unwritable` says why; every commit fails until check() repairs it).
   * A ring that was already serving takes that, rather than stop answering its guest.
   */
  static open(
    path: string,
    capacity: number,
    key: number,
    opts: { degrade?: boolean } = {},
  ): { journal: PublicationJournal; reset: string | null; unwritable: JournalError | null } {
    if (!Number.isInteger(capacity) || capacity < 1 || capacity > 4096) throw new RangeError(`journal capacity ${capacity}`);
    const bytes = journalBytes(capacity);
    const buf = Buffer.alloc(bytes);
    let unwritable: JournalError | null = null;
    let fd = -1;
    try {
      fd = fs.openSync(path, fs.constants.O_RDWR | fs.constants.O_CREAT, 0o600);
    } catch (e) {
      unwritable = journalError(path, 'open', e);
      if (!opts.degrade) throw unwritable;
      // Read-only (or no room for a new inode): what a predecessor recorded can still be read.
      fd = openReadOnly(path);
    }
    let ino = 0;
    if (fd >= 0) {
      try {
        const st = fs.fstatSync(fd);
        ino = st.ino;
        const have = Math.min(st.size, bytes);
        for (let at = 0; at < have; ) {
          const n = fs.readSync(fd, buf, at, have - at, at);
          if (n === 0) break;
          at += n;
        }
        if (st.size > bytes && unwritable === null) fs.ftruncateSync(fd, bytes);
      } catch (e) {
        fs.closeSync(fd);
        if (!opts.degrade) throw journalError(path, 'read', e);
        unwritable ??= journalError(path, 'read', e);
        buf.fill(0);
        fd = -1;
      }
    }
    if (unwritable !== null && fd >= 0) {
      fs.closeSync(fd);
      fd = -1;
    }
    const j = new PublicationJournal(path, fd, ino, buf, capacity, key >>> 0);
    const w = j.words;
    let reset: string | null = null;
    if (w[W_MAGIC] !== MAGIC || w[W_VERSION] !== VERSION || w[W_CAPACITY] !== capacity) {
      reset = w[W_MAGIC] === 0 ? null : 'written by another layout';
    } else if (w[W_KEY] !== j.key) {
      reset = j.validCount() === 0 ? null : 'written for another ring';
    }
    if (w[W_MAGIC] !== MAGIC || w[W_VERSION] !== VERSION || w[W_CAPACITY] !== capacity || w[W_KEY] !== j.key) {
      buf.fill(0);
      w[W_MAGIC] = MAGIC;
      w[W_VERSION] = VERSION;
      w[W_CAPACITY] = capacity;
      w[W_KEY] = j.key;
    }
    // Every byte written once: the file owns its blocks before the first batch needs them.
    if (fd >= 0) {
      try {
        j.writeAll(fd);
      } catch (e) {
        unwritable = journalError(path, 'allocate', e);
        if (!opts.degrade) {
          fs.closeSync(fd);
          throw unwritable;
        }
      }
    }
    if (unwritable !== null) j.lastError = unwritable;
    return { journal: j, reset, unwritable };
  }

  /** The count of the record in memory if it is complete and belongs to this ring, else 0. */
  private validCount(): number {
    const w = this.words;
    const count = w[W_COUNT];
    if (w[W_MAGIC] !== MAGIC || w[W_VERSION] !== VERSION || w[W_CAPACITY] !== this.capacity) return 0;
    if (count < 1 || count > this.capacity) return 0;
    return w[W_CHECK] === checkOf(w, count) ? count : 0;
  }

  /** The last batch recorded, if its record is complete. */
  recorded(): JournaledBatch | null {
    const count = this.words[W_KEY] === this.key ? this.validCount() : 0;
    return count === 0 ? null : { start: this.words[W_START], count };
  }

  setEntry(i: number, idLo: number, idHi: number, operation: number, status: number): void {
    const o = HEADER_WORDS + i * ENTRY_WORDS;
    const w = this.words;
    w[o] = idLo;
    w[o + 1] = idHi;
    w[o + 2] = operation;
    this.statuses[o + 3] = status;
  }

  /**
   * Records [start, start+count) with entries 0..count-1 as set: one write. Returns false when
   * the write failed or came out short (the record on file is then invalid, never replayed; see
   * lastError; the engine counts them). `torn` writes only the first half of the record (a crash test's torn
   * write; the caller dies right after).
   */
  commit(start: number, count: number, torn = false): boolean {
    const w = this.words;
    w[W_START] = start >>> 0;
    w[W_COUNT] = count;
    w[W_CHECK] = checkOf(w, count);
    const len = (HEADER_WORDS + ENTRY_WORDS * count) * 4;
    const want = torn ? len >> 1 : len;
    // No file to write (it could not be opened at start): fail without a system call.
    if (this.fd < 0) return this.failed(this.lastError ?? new JournalError(`publication journal ${this.path}: not open`, 'EBADF'));
    let wrote: number;
    try {
      wrote = pwrite(this.fd, this.buf, want, 0);
    } catch (e) {
      return this.failed(journalError(this.path, 'write', e));
    }
    if (wrote !== want) return this.failed(new JournalError(`publication journal ${this.path}: short write (${wrote} of ${want} bytes)`, 'ENOSPC'));
    if (this.lastError !== null) this.lastError = null;
    return true;
  }

  private failed(e: JournalError): false {
    this.lastError = e;
    return false;
  }

  /**
   * Repairs the file under the running ring: re-creates it when it was deleted or replaced,
   * re-allocates it when it was truncated, rewrites it after a failed write. Returns what was
   * repaired ('created': it could not be opened at start; 'recreated', 'extended', 'rewritten'),
   * null when nothing was wrong; throws a
   * JournalError when the repair itself fails (it is tried again at the next check).
   */
  check(): string | null {
    let onDisk: fs.Stats | undefined;
    try {
      onDisk = fs.statSync(this.path);
    } catch (e) {
      if (errnoOf(e) !== 'ENOENT') throw journalError(this.path, 'stat', e);
    }
    if (this.fd < 0 || onDisk === undefined || onDisk.ino !== this.ino) {
      let fd: number;
      try {
        fd = fs.openSync(this.path, fs.constants.O_RDWR | fs.constants.O_CREAT, 0o600);
      } catch (e) {
        throw journalError(this.path, 'create', e);
      }
      try {
        this.writeAll(fd);
        this.ino = fs.fstatSync(fd).ino;
      } catch (e) {
        fs.closeSync(fd);
        fs.rmSync(this.path, { force: true });
        throw journalError(this.path, 'allocate', e);
      }
      if (this.fd >= 0) fs.closeSync(this.fd);
      const hadFile = this.fd >= 0;
      this.fd = fd;
      this.lastError = null;
      return hadFile ? 'recreated' : 'created';
    }
    const what = onDisk.size < this.buf.byteLength ? 'extended' : this.lastError !== null ? 'rewritten' : null;
    if (what === null) return null;
    try {
      this.writeAll(this.fd);
    } catch (e) {
      throw journalError(this.path, 'allocate', e);
    }
    this.lastError = null;
    return what;
  }

  /** The whole file from memory (the current record and the allocated space after it). */
  private writeAll(fd: number): void {
    const bytes = this.buf.byteLength;
    for (let at = 0; at < bytes; ) {
      const n = fs.writeSync(fd, this.buf, at, bytes - at, at);
      if (n === 0) throw Object.assign(new Error('short write'), { code: 'ENOSPC' });
      at += n;
    }
  }

  entryIdLo(i: number): number {
    return this.words[HEADER_WORDS + i * ENTRY_WORDS];
  }
  entryIdHi(i: number): number {
    return this.words[HEADER_WORDS + i * ENTRY_WORDS + 1];
  }
  entryOperation(i: number): number {
    return this.words[HEADER_WORDS + i * ENTRY_WORDS + 2] & 0xff;
  }
  entryStatus(i: number): number {
    return this.statuses[HEADER_WORDS + i * ENTRY_WORDS + 3];
  }

  /** Closes; remove: the ring is gone for good (a clean stop), so is the file. */
  close(remove: boolean): void {
    if (this.fd >= 0) fs.closeSync(this.fd);
    if (remove) fs.rmSync(this.path, { force: true });
  }
}

/** The file opened for reading only, or -1 when it cannot be (absent, unreadable). */
function openReadOnly(path: string): number {
  try {
    return fs.openSync(path, fs.constants.O_RDONLY);
  } catch {
    return -1;
  }
}

/** A 32-bit hash of header words 0..5 and the first `count` entries (word 6, the check, excluded). */
function checkOf(w: Uint32Array, count: number): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < W_CHECK; i++) h = mix(h, w[i]);
  const end = HEADER_WORDS + ENTRY_WORDS * count;
  for (let i = HEADER_WORDS; i < end; i++) h = mix(h, w[i]);
  h = Math.imul(h ^ (h >>> 16), 0x85ebca6b);
  h = Math.imul(h ^ (h >>> 13), 0xc2b2ae35);
  return (h ^ (h >>> 16)) >>> 0;
}

function mix(h: number, v: number): number {
  let k = Math.imul(v, 0xcc9e2d51);
  k = (k << 15) | (k >>> 17);
  h ^= Math.imul(k, 0x1b873593);
  h = (h << 13) | (h >>> 19);
  return (Math.imul(h, 5) + 0xe6546b64) | 0;
}

/** FNV-1a over the values that name a ring: a new ring (new refs or port) gets a new key. */
export function ringKey(values: readonly number[]): number {
  let h = 0x811c9dc5;
  for (const v of values) {
    for (let s = 0; s < 32; s += 8) {
      h ^= (v >>> s) & 0xff;
      h = Math.imul(h, 0x01000193);
    }
  }
  return h >>> 0;
}

/** One file per device, named from its identity. */
export function journalFileName(backendType: string, frontendDomid: number, devid: number): string {
  const safeType = backendType.replace(/[^A-Za-z0-9_-]/g, '_');
  return `${safeType}-${frontendDomid}-${devid}.pubjournal`;
}
