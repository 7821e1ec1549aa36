// The publication journal (ARCHITECTURE.md, "Exactly-once completion across a daemon crash"):
// before the response slots of a batch overwrite its requests, the batch is recorded here, in a
// small per-device file mapped MAP_SHARED, so recording is a few memory stores and survives a
// SIGKILL at any instruction. On restart a batch whose end lies beyond the shared rsp_prod is
// published again from the record.
//
// Layout (u32 words): 0 magic, 1 version, 2 capacity, 3 ring key, 4 start, 5 count, 6 check,
// then from word 16, 4 words per response: id lo, id hi, operation, status (as u32).
// The check word is written last and zeroed first: a batch is valid iff check matches.
import * as fs from 'node:fs';
import { MAP_SHARED, PROT_READ, PROT_WRITE, mmap, munmap, type Mapping } from '../../io/libc';

const MAGIC = 0x4a504258; // "XBPJ"
const VERSION = 1;
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

export class JournalError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'JournalError';
  }
}

export class PublicationJournal {
  private readonly words: Uint32Array;
  private readonly statuses: Int32Array;

  private constructor(
    readonly path: string,
    private readonly fd: number,
    private readonly map: Mapping,
    readonly capacity: number,
    private readonly key: number,
  ) {
    this.words = new Uint32Array(map.buffer);
    this.statuses = new Int32Array(map.buffer);
  }

  /**
   * Opens (creating if needed) the journal of one ring. `key` names the ring (see ringKey): a
   * journal written for another ring, or by another layout, is reset, never replayed.
   */
  static open(path: string, capacity: number, key: number): { journal: PublicationJournal; reset: string | null } {
    if (!Number.isInteger(capacity) || capacity < 1 || capacity > 4096) throw new RangeError(`journal capacity ${capacity}`);
    const bytes = Math.ceil(((HEADER_WORDS + ENTRY_WORDS * capacity) * 4) / 4096) * 4096;
    let fd: number;
    try {
      fd = fs.openSync(path, fs.constants.O_RDWR | fs.constants.O_CREAT, 0o600);
    } catch (e) {
      throw new JournalError(`publication journal ${path}: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`);
    }
    let map: Mapping;
    try {
      const size = fs.fstatSync(fd).size;
      if (size !== bytes) fs.ftruncateSync(fd, bytes);
      map = mmap(bytes, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    } catch (e) {
      fs.closeSync(fd);
      throw new JournalError(`publication journal ${path}: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`);
    }
    const j = new PublicationJournal(path, fd, map, capacity, key >>> 0);
    const w = j.words;
    let reset: string | null = null;
    if (w[W_MAGIC] !== MAGIC || w[W_VERSION] !== VERSION || w[W_CAPACITY] !== capacity) {
      reset = w[W_MAGIC] === 0 ? null : 'written by another layout';
    } else if (w[W_KEY] !== j.key) {
      reset = w[W_CHECK] === 0 ? null : 'written for another ring';
    }
    if (w[W_MAGIC] !== MAGIC || w[W_VERSION] !== VERSION || w[W_CAPACITY] !== capacity || w[W_KEY] !== j.key) {
      w[W_CHECK] = 0;
      w[W_MAGIC] = MAGIC;
      w[W_VERSION] = VERSION;
      w[W_CAPACITY] = capacity;
      w[W_KEY] = j.key;
    }
    return { journal: j, reset };
  }

  /** The last batch recorded, if its record is complete. */
  recorded(): JournaledBatch | null {
    const w = this.words;
    const start = w[W_START];
    const count = w[W_COUNT];
    if (w[W_CHECK] === 0 || w[W_CHECK] !== checkOf(start, count, this.key)) return null;
    if (count < 1 || count > this.capacity) return null;
    return { start, count };
  }

  /** Starts a new record: the previous one stops being valid before any entry is overwritten. */
  begin(): void {
    this.words[W_CHECK] = 0;
  }

  setEntry(i: number, idLo: number, idHi: number, operation: number, status: number): void {
    const o = HEADER_WORDS + i * ENTRY_WORDS;
    const w = this.words;
    w[o] = idLo;
    w[o + 1] = idHi;
    w[o + 2] = operation;
    this.statuses[o + 3] = status;
  }

  /** Makes the record of [start, start+count) valid; entries 0..count-1 must be set. */
  commit(start: number, count: number): void {
    const w = this.words;
    w[W_START] = start >>> 0;
    w[W_COUNT] = count;
    w[W_CHECK] = checkOf(start >>> 0, count, this.key);
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

  /** Unmaps; remove: the ring is gone for good (a clean stop), so is the file. */
  close(remove: boolean): void {
    if (remove) this.words[W_CHECK] = 0;
    munmap(this.map.address, this.map.length);
    fs.closeSync(this.fd);
    if (remove) fs.rmSync(this.path, { force: true });
  }
}

/** Never 0 (0 marks "no valid record"). */
function checkOf(start: number, count: number, key: number): number {
  let h = Math.imul(start ^ 0x9e3779b9, 0x85ebca6b) ^ Math.imul(count + 0x7f4a7c15, 0xc2b2ae35) ^ key;
  h = Math.imul(h ^ (h >>> 16), 0x27d4eb2f);
  return (h ^ (h >>> 15)) >>> 0 || 1;
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
