// Writes a session file: records are buffered and written once per tick with one write() (each
// line is whole once written), so recording costs little and a SIGKILL leaves a valid file, at
// worst with a torn last line. Opening an existing session appends to it (a restarted daemon
// goes on in the same file); a torn last line left by a kill is cut off first.
import * as fs from 'node:fs';
import type { Intent } from '../effects/intents';
import { type IntentsByOwner, type SessionHeader, SESSION_FORMAT, SESSION_VERSION, type SessionRecord } from './format';
import { SessionFormatError, parseHeader } from './parse';

export class RecorderError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'RecorderError';
  }
}

export interface RecorderOptions {
  /** Who writes the file: "daemon", "sim" or "world". */
  readonly source: string;
  readonly description?: string;
  readonly clock?: () => number;
  /** Called once if a write fails; the recorder then stops writing. */
  readonly onError?: (err: Error) => void;
}

/** A record before the recorder numbers it. */
export type PendingRecord = SessionRecord extends infer R ? (R extends SessionRecord ? Omit<R, 'n' | 'at'> & { at?: number } : never) : never;

const CHUNK = 1 << 16;

export class SessionRecorder {
  private buffer: string[] = [];
  private scheduled = false;
  private fd: number | null;
  private n: number;
  private written = 0;
  private failed: Error | null = null;
  /** Intents reported since the last record of each owner. */
  private readonly pending = new Map<string, Intent[]>();
  private readonly clock: () => number;

  private constructor(
    readonly file: string,
    fd: number,
    lastN: number,
    private readonly opts: RecorderOptions,
  ) {
    this.fd = fd;
    this.n = lastN;
    this.clock = opts.clock ?? Date.now;
  }

  /** Creates the file with its header, or appends to an existing session. */
  static open(file: string, opts: RecorderOptions): SessionRecorder {
    let fd: number;
    try {
      fd = fs.openSync(file, fs.constants.O_RDWR | fs.constants.O_CREAT | fs.constants.O_APPEND, 0o640);
    } catch (err) {
      throw new RecorderError(`cannot open session file ${file}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`);
    }
    try {
      let lastN = 0;
      if (fs.fstatSync(fd).size === 0) {
        const header: SessionHeader = {
          kind: 'header',
          format: SESSION_FORMAT,
          version: SESSION_VERSION,
          created: new Date(opts.clock?.() ?? Date.now()).toISOString(),
          source: opts.source,
          ...(opts.description !== undefined && { description: opts.description }),
        };
        fs.writeSync(fd, `${JSON.stringify(header)}\n`);
      } else {
        lastN = resumeAppend(fd, file);
      }
      return new SessionRecorder(file, fd, lastN, opts);
    } catch (err) {
      fs.closeSync(fd);
      if (err instanceof RecorderError) throw err;
      throw new RecorderError(`cannot record into ${file}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`);
    }
  }

  /** Records written by this recorder so far. */
  get records(): number {
    return this.written;
  }

  get error(): Error | null {
    return this.failed;
  }

  /** Collects intents for the next record of their owner. */
  addIntents(owner: string, intents: readonly Intent[]): void {
    if (intents.length === 0) return;
    const list = this.pending.get(owner);
    if (list) list.push(...intents);
    else this.pending.set(owner, [...intents]);
  }

  takeIntents(owner: string): Intent[] {
    const list = this.pending.get(owner);
    if (!list) return [];
    this.pending.delete(owner);
    return list;
  }

  /** Takes the pending intents of every owner that matches. */
  takeIntentsWhere(match: (owner: string) => boolean): IntentsByOwner {
    const out: Record<string, Intent[]> = {};
    for (const owner of [...this.pending.keys()].sort()) {
      if (match(owner)) out[owner] = this.takeIntents(owner);
    }
    return out;
  }

  write(record: PendingRecord): void {
    if (this.fd === null || this.failed) return;
    const { kind, at, ...rest } = record as PendingRecord & Record<string, unknown>;
    this.n += 1;
    this.buffer.push(`${JSON.stringify({ kind, n: this.n, at: at ?? this.clock(), ...rest })}\n`);
    this.written += 1;
    if (!this.scheduled) {
      this.scheduled = true;
      setImmediate(() => this.flush());
    }
  }

  /** Writes what is buffered now (one write call). */
  flush(): void {
    this.scheduled = false;
    if (this.fd === null || this.buffer.length === 0 || this.failed) return;
    const data = this.buffer.join('');
    this.buffer = [];
    try {
      fs.writeSync(this.fd, data);
    } catch (err) {
      this.failed = new RecorderError(`writing session file ${this.file} failed: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}; recording stopped`);
      this.opts.onError?.(this.failed);
    }
  }

  close(): void {
    if (this.fd === null) return;
    this.flush();
    fs.closeSync(this.fd);
    this.fd = null;
  }
}

/** Checks the file is a session this version writes, cuts a torn last line, returns the last n. */
function resumeAppend(fd: number, file: string): number {
  const head = Buffer.alloc(CHUNK);
  const got = fs.readSync(fd, head, 0, CHUNK, 0);
  const firstLine = head.subarray(0, got).toString('utf8').split('\n')[0];
  try {
    const header = parseHeader(firstLine);
    if (header.version !== SESSION_VERSION) {
      throw new RecorderError(`${file} is a session of format version ${header.version}; this xenblkd writes ${SESSION_VERSION}`);
    }
  } catch (err) {
    if (err instanceof SessionFormatError) throw new RecorderError(`${file}: ${err.message}; not appending to it`);
    throw err;
  }
  let size = fs.fstatSync(fd).size;
  const end = lastNewlineBefore(fd, size);
  if (end < 0) {
    // Only a header, without its newline.
    fs.writeSync(fd, '\n');
    return 0;
  }
  if (end < size - 1) {
    // A torn last line (a recorder killed in the middle of a write): never complete, drop it.
    fs.ftruncateSync(fd, end + 1);
    size = end + 1;
  }
  const start = lastNewlineBefore(fd, size - 1) + 1;
  const line = Buffer.alloc(size - 1 - start);
  fs.readSync(fd, line, 0, line.length, start);
  if (start === 0) return 0;
  try {
    const n = (JSON.parse(line.toString('utf8')) as { n?: unknown }).n;
    if (typeof n === 'number' && Number.isSafeInteger(n)) return n;
  } catch {
    // fall through
  }
  throw new RecorderError(`${file}: its last record is not readable; not appending to it`);
}

/** The offset of the last '\n' before `end` (exclusive), or -1. */
function lastNewlineBefore(fd: number, end: number): number {
  const buf = Buffer.alloc(CHUNK);
  let pos = end;
  while (pos > 0) {
    const from = Math.max(0, pos - CHUNK);
    const len = pos - from;
    fs.readSync(fd, buf, 0, len, from);
    const i = buf.subarray(0, len).lastIndexOf(0x0a);
    if (i >= 0) return from + i;
    pos = from;
  }
  return -1;
}
