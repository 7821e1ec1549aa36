// The LevelDB event store. Appends are group-committed: appends that arrive while a batch is being
// written go out together in the next one, so many devices persisting at once cost few writes.
//
// A batch the state folder refuses (full, read-only, no permission, failing disk) is never
// dropped: it stays at the head of the queue, with everything behind it, and is tried again with
// backoff until it lands; its appenders wait. Before the next try the database is reopened (a
// LevelDB whose log write failed may have left half a record, which would misalign every later
// record of that log), once a probe file shows the folder takes writes again. A store whose folder
// cannot be written at open is read from a copy in a scratch folder meanwhile.
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { ClassicLevel } from 'classic-level';
import {
  type Clock,
  type EventStore,
  type ExpectedVersion,
  type NewEvent,
  type Snapshot,
  type StoredEvent,
  STORE_FORMAT_VERSION,
  StoreError,
  checkExpected,
} from './events';
import { classifyStoreError } from './level-errors';
import { StoreHealth } from './store-health';

type Db = ClassicLevel<string, string>;
type BatchOp = { type: 'put'; key: string; value: string } | { type: 'del'; key: string };

const STREAM_NAME = /^[A-Za-z0-9/_.:@-]+$/;
const eventKey = (stream: string, version: number) => `e!${stream}!${String(version).padStart(10, '0')}`;
const versionKey = (stream: string) => `v!${stream}`;
const snapshotKey = (stream: string) => `s!${stream}`;
const FORMAT_KEY = 'meta!format';
const LEVELDB_FILE = /^(MANIFEST-\d+|\d+\.(log|ldb|sst))$/;
const PROBE_FILE = '.write-probe';
/** Enough for the reopen's level-0 table and manifest in the common case; a reopen that still fails is retried. */
const PROBE_BYTES = 256 * 1024;

export interface LevelStoreOptions {
  readonly clock?: Clock;
  /**
   * Called synchronously after each batch lands, with the number of events it held (not
   * snapshots or deletes), before the appenders' promises resolve. It must not throw.
   */
  readonly onCommitted?: (events: number) => void;
  /** Where the store is copied to be read when its folder cannot be written at open (default: the OS temp folder). */
  readonly scratchDir?: string;
  /** Backoff between tries of a refused write: first delay and cap, ms (default 100 and 2000). */
  readonly retry?: { readonly firstMs: number; readonly maxMs: number };
}

interface PendingWrite {
  /** Built when written (deletes of what is stored then). */
  ops: BatchOp[] | (() => Promise<BatchOp[]>);
  events: number;
  /** The stream version this write makes durable, or null when it deletes the stream. */
  commit?: { stream: string; version: number | null };
  resolve: () => void;
  reject: (e: unknown) => void;
}

async function openDb(location: string): Promise<Db> {
  const db: Db = new ClassicLevel(location, { valueEncoding: 'utf8' });
  await db.open();
  return db;
}

/** A folder with LevelDB files but no CURRENT would be taken for a new database and its files deleted. */
function checkCurrent(dir: string): void {
  // A folder that cannot be listed is not judged here: opening it says what is wrong.
  const names = namesIn(dir);
  if (!names.includes('CURRENT') && names.some((n) => LEVELDB_FILE.test(n))) {
    throw new StoreError(`state folder ${dir} is corrupt: its CURRENT file is missing`, 'corrupt');
  }
}

/** A folder's entries; none when it cannot be listed (absent, or not a folder). */
function namesIn(dir: string): string[] {
  try {
    return fs.readdirSync(dir);
  } catch {
    return [];
  }
}

const SCRATCH_PREFIX = 'xenblkd-events-';

/** Copies left by daemons that died while reading from one (their pid is in the name). */
function removeStaleCopies(scratchDir: string): void {
  for (const name of namesIn(scratchDir)) {
    const pid = Number(/^xenblkd-events-(\d+)-/.exec(name)?.[1]);
    if (!pid || pid === process.pid || isAlive(pid)) continue;
    fs.rmSync(path.join(scratchDir, name), { recursive: true, force: true });
  }
}

function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

function probeWritable(dir: string): void {
  const file = path.join(dir, PROBE_FILE);
  const fd = fs.openSync(file, 'w');
  try {
    fs.writeSync(fd, Buffer.alloc(PROBE_BYTES));
    fs.fsyncSync(fd);
  } finally {
    fs.closeSync(fd);
    fs.rmSync(file, { force: true });
  }
}

export class LevelEventStore implements EventStore {
  /** Versions including appends still queued (what the next append checks against). */
  private readonly versions = new Map<string, number>();
  /** Versions that landed. */
  private readonly committed = new Map<string, number>();
  private queue: PendingWrite[] = [];
  private writing = false;
  private needsReopen = false;
  private closing = false;
  private closed = false;
  private formatMissing = false;
  private wake: (() => void) | undefined;
  readonly health = new StoreHealth();

  private constructor(
    private db: Db,
    readonly dir: string,
    private readonly opts: LevelStoreOptions,
    /** The scratch copy reads come from while the folder cannot be written. */
    private scratch?: string,
  ) {}

  private get clock(): Clock {
    return this.opts.clock ?? Date.now;
  }

  /** Where the data read now comes from: the state folder, or its scratch copy. */
  get readingFrom(): string {
    return this.scratch ?? this.dir;
  }

  static async open(dir: string, opts: LevelStoreOptions = {}): Promise<LevelEventStore> {
    let cause: StoreError;
    try {
      fs.mkdirSync(dir, { recursive: true });
      checkCurrent(dir);
      const db = await openDb(dir).catch((e: unknown) => {
        throw classifyStoreError(e, dir, 'open the event store');
      });
      const store = new LevelEventStore(db, dir, opts);
      try {
        await store.load(db);
      } catch (e) {
        await db.close().catch(() => undefined);
        throw e;
      }
      store.writeFormatIfMissing();
      return store;
    } catch (e) {
      cause = classifyStoreError(e, dir, 'open the event store');
      if (cause.reason !== 'io') throw cause;
    }
    return LevelEventStore.openCopy(dir, opts, cause);
  }

  /** The folder cannot be written: serve reads from a copy, write to the folder once it can. */
  private static async openCopy(dir: string, opts: LevelStoreOptions, cause: StoreError): Promise<LevelEventStore> {
    const scratchDir = opts.scratchDir ?? os.tmpdir();
    removeStaleCopies(scratchDir);
    const scratch = fs.mkdtempSync(path.join(scratchDir, `${SCRATCH_PREFIX}${process.pid}-`));
    let store: LevelEventStore;
    try {
      if (fs.existsSync(dir)) {
        for (const name of fs.readdirSync(dir)) {
          if (name !== 'LOCK' && name !== PROBE_FILE) fs.copyFileSync(path.join(dir, name), path.join(scratch, name));
        }
      }
      const db = await openDb(scratch);
      store = new LevelEventStore(db, dir, opts, scratch);
      try {
        await store.load(db);
      } catch (e) {
        await db.close().catch(() => undefined);
        throw e;
      }
    } catch (e) {
      fs.rmSync(scratch, { recursive: true, force: true });
      const err = classifyStoreError(e, dir, 'read a copy of the event store');
      if (err.reason === 'corrupt') throw err;
      throw new StoreError(`${cause.message}; and a copy cannot be read either: ${err.message}`, 'io', cause.code);
    }
    store.needsReopen = true;
    store.health.failed(cause);
    store.writeFormatIfMissing();
    store.kick();
    return store;
  }

  /** A new store gets its format record with its first batch (queued: it may wait for the folder). */
  private writeFormatIfMissing(): void {
    if (!this.formatMissing) return;
    this.formatMissing = false;
    void this.enqueue([{ type: 'put', key: FORMAT_KEY, value: String(STORE_FORMAT_VERSION) }], 0).catch(() => undefined);
  }

  /** Reads every record once (a damaged table shows now, not at some later read), then the versions. */
  private async load(db: Db): Promise<void> {
    try {
      for await (const _ of db.iterator({ fillCache: false })) void _;
      const format = await db.get(FORMAT_KEY);
      this.formatMissing = format === undefined;
      if (format === undefined) {
        // Written once the store is set up (see writeFormatIfMissing).
      } else if (Number(format) > STORE_FORMAT_VERSION) {
        throw new StoreError(
          `state folder ${this.dir} was written by a newer xenblkd (format ${format}, this one reads ${STORE_FORMAT_VERSION})`,
          'newer-format',
        );
      }
      this.committed.clear();
      for await (const [key, value] of db.iterator({ gt: 'v!', lt: 'v"' })) {
        const version = Number(value);
        if (!Number.isSafeInteger(version) || version < 0) {
          throw new StoreError(`state folder ${this.dir}: bad version record ${key}`, 'corrupt');
        }
        this.committed.set(key.slice(2), version);
      }
    } catch (e) {
      throw classifyStoreError(e, this.dir, 'read the event store');
    }
    // Claims of appends still queued (a reopen) stand; the rest is what landed.
    for (const [stream, version] of this.committed) if (!this.claimedByQueue(stream)) this.versions.set(stream, version);
  }

  private claimedByQueue(stream: string): boolean {
    return this.queue.some((p) => p.commit?.stream === stream);
  }

  append(stream: string, events: readonly NewEvent[], expected: ExpectedVersion): Promise<number> {
    if (!STREAM_NAME.test(stream)) return Promise.reject(new Error(`invalid stream name '${stream}'`));
    let version = this.versions.get(stream) ?? 0;
    try {
      checkExpected(stream, expected, version);
    } catch (e) {
      return Promise.reject(e);
    }
    const recordedAt = this.clock();
    const ops: BatchOp[] = [];
    for (const e of events) {
      version += 1;
      const record = { f: STORE_FORMAT_VERSION, type: e.type, data: e.data, at: recordedAt };
      ops.push({ type: 'put', key: eventKey(stream, version), value: JSON.stringify(record) });
    }
    ops.push({ type: 'put', key: versionKey(stream), value: String(version) });
    // Claimed now so that the next append to this stream checks against it.
    this.versions.set(stream, version);
    const newVersion = version;
    return this.enqueue(ops, events.length, { stream, version: newVersion }).then(() => newVersion);
  }

  private enqueue(ops: PendingWrite['ops'], events: number, commit?: PendingWrite['commit']): Promise<void> {
    if (this.closed) return Promise.reject(new StoreError(`the event store in ${this.dir} is closed`, 'closed'));
    return new Promise((resolve, reject) => {
      this.queue.push({ ops, events, commit, resolve, reject });
      this.kick();
    });
  }

  private kick(): void {
    if (!this.writing) void this.flushQueue();
  }

  private async flushQueue(): Promise<void> {
    this.writing = true;
    let failures = 0;
    while (this.queue.length > 0 || (this.health.fault && !this.closing)) {
      if (this.health.fault || this.needsReopen) {
        if (this.closing) {
          this.failQueued();
          break;
        }
        if (failures > 0) await this.sleep(this.backoff(failures));
        if (this.closing) continue;
        if (this.needsReopen && !(await this.reopen())) {
          failures += 1;
          continue;
        }
      }
      const batch = this.queue;
      this.queue = [];
      try {
        // Nothing queued while the store is faulted: a small write tells whether it takes writes again.
        const ops = batch.length === 0 ? [{ type: 'put' as const, key: FORMAT_KEY, value: String(STORE_FORMAT_VERSION) }] : await this.opsOf(batch);
        await this.db.batch(ops);
      } catch (e) {
        this.queue = batch.concat(this.queue);
        this.needsReopen = true;
        this.health.failed(classifyStoreError(e, this.dir, 'write the event store'));
        failures += 1;
        continue;
      }
      failures = 0;
      this.landed(batch);
      this.health.recovered();
    }
    this.writing = false;
  }

  private async opsOf(batch: PendingWrite[]): Promise<BatchOp[]> {
    const ops: BatchOp[] = [];
    for (const p of batch) {
      if (typeof p.ops === 'function') p.ops = await p.ops();
      for (const op of p.ops) ops.push(op);
    }
    return ops;
  }

  private landed(batch: PendingWrite[]): void {
    let events = 0;
    for (const p of batch) {
      events += p.events;
      if (!p.commit) continue;
      if (p.commit.version === null) this.committed.delete(p.commit.stream);
      else this.committed.set(p.commit.stream, p.commit.version);
    }
    if (events > 0 && this.opts.onCommitted) {
      try {
        this.opts.onCommitted(events);
      } catch (err) {
        // A throwing hook is a bug of its own: shown, without wedging the queue.
        queueMicrotask(() => {
          throw err;
        });
      }
    }
    for (const p of batch) p.resolve();
  }

  /** Closing while the folder refuses writes: what waited fails, its claims are withdrawn. */
  private failQueued(): void {
    const fault = this.health.fault;
    const err = new StoreError(
      `the event store in ${this.dir} closed before the state folder took writes again${fault?.code ? ` (${fault.code})` : ''}`,
      'closed',
      fault?.code,
    );
    const batch = this.queue;
    this.queue = [];
    for (const p of batch) {
      if (!p.commit) continue;
      const landed = this.committed.get(p.commit.stream);
      if (landed === undefined) this.versions.delete(p.commit.stream);
      else this.versions.set(p.commit.stream, landed);
    }
    for (const p of batch) p.reject(err);
  }

  private backoff(failures: number): number {
    const { firstMs, maxMs } = this.opts.retry ?? { firstMs: 100, maxMs: 2000 };
    return Math.min(maxMs, firstMs * 2 ** Math.min(failures - 1, 20));
  }

  private sleep(ms: number): Promise<void> {
    return new Promise<void>((resolve) => {
      const timer = setTimeout(done, ms);
      function done() {
        clearTimeout(timer);
        resolve();
      }
      this.wake = done;
    }).finally(() => {
      this.wake = undefined;
    });
  }

  /** Reopens the folder's database once a probe write shows it takes writes; false when not yet. */
  private async reopen(): Promise<boolean> {
    try {
      probeWritable(this.dir);
    } catch (e) {
      this.health.failed(classifyStoreError(e, this.dir, 'write to the state folder'));
      return false;
    }
    const previous = this.readingFrom;
    await this.db.close().catch(() => undefined);
    try {
      checkCurrent(this.dir);
      const db = await openDb(this.dir);
      try {
        await this.load(db);
      } catch (e) {
        await db.close().catch(() => undefined);
        throw e;
      }
      this.db = db;
      if (this.scratch) fs.rmSync(this.scratch, { recursive: true, force: true });
      this.scratch = undefined;
      this.needsReopen = false;
      this.writeFormatIfMissing();
      return true;
    } catch (e) {
      this.health.failed(classifyStoreError(e, this.dir, 'reopen the event store'));
      // Reads go on from what was open before, if it opens again.
      this.db = await openDb(previous).catch(() => this.db);
      return false;
    }
  }

  async read(stream: string, afterVersion = 0): Promise<StoredEvent[]> {
    const out: StoredEvent[] = [];
    const range = { gt: eventKey(stream, afterVersion), lt: `e!${stream}!a` };
    try {
      for await (const [key, value] of this.db.iterator(range)) {
        const record = this.parse(key, value) as { type: string; data: unknown; at: number; f: number };
        out.push({
          type: record.type,
          data: record.data,
          metadata: { streamVersion: Number(key.slice(key.lastIndexOf('!') + 1)), recordedAt: record.at, formatVersion: record.f },
        });
      }
    } catch (e) {
      throw classifyStoreError(e, this.dir, `read stream ${stream}`);
    }
    return out;
  }

  private parse(key: string, value: string): { f: number } & Record<string, unknown> {
    let record: { f?: unknown } & Record<string, unknown>;
    try {
      record = JSON.parse(value) as typeof record;
    } catch {
      throw new StoreError(`state folder ${this.dir}: record ${key} is not valid JSON`, 'corrupt');
    }
    if (typeof record.f !== 'number') throw new StoreError(`state folder ${this.dir}: record ${key} has no format version`, 'corrupt');
    if (record.f > STORE_FORMAT_VERSION) {
      throw new StoreError(`state folder ${this.dir}: record ${key} has format ${record.f}, newer than ${STORE_FORMAT_VERSION}`, 'newer-format');
    }
    return record as { f: number } & Record<string, unknown>;
  }

  async version(stream: string): Promise<number> {
    return this.versions.get(stream) ?? 0;
  }

  async streams(prefix = ''): Promise<string[]> {
    return [...this.versions.keys()].filter((s) => s.startsWith(prefix)).sort();
  }

  async saveSnapshot(stream: string, version: number, state: unknown): Promise<void> {
    const value = JSON.stringify({ f: STORE_FORMAT_VERSION, version, state });
    await this.enqueue([{ type: 'put', key: snapshotKey(stream), value }], 0);
  }

  async loadSnapshot(stream: string): Promise<Snapshot | undefined> {
    let value: string | undefined;
    try {
      value = await this.db.get(snapshotKey(stream));
    } catch (e) {
      throw classifyStoreError(e, this.dir, `read the snapshot of ${stream}`);
    }
    if (value === undefined) return undefined;
    const record = this.parse(snapshotKey(stream), value) as { f: number; version: number; state: unknown };
    return { version: record.version, state: record.state, formatVersion: record.f };
  }

  /** The stored keys in a range, read when the delete is written (so it waits with the queue). */
  private keysIn(range: { gt: string; lt?: string; lte?: string }): () => Promise<BatchOp[]> {
    return async () => {
      const ops: BatchOp[] = [];
      for await (const key of this.db.keys(range)) ops.push({ type: 'del', key });
      return ops;
    };
  }

  async compact(stream: string, upToVersion: number): Promise<number> {
    const build = this.keysIn({ gt: `e!${stream}!`, lte: eventKey(stream, upToVersion) });
    let count = 0;
    await this.enqueue(async () => {
      const ops = await build();
      count = ops.length;
      return ops;
    }, 0);
    return count;
  }

  async deleteStream(stream: string): Promise<void> {
    const build = this.keysIn({ gt: `e!${stream}!`, lt: `e!${stream}!a` });
    this.versions.delete(stream);
    await this.enqueue(
      async () => [...(await build()), { type: 'del', key: versionKey(stream) }, { type: 'del', key: snapshotKey(stream) }],
      0,
      { stream, version: null },
    );
  }

  async sizeBytes(): Promise<number> {
    let total = 0;
    const dir = this.readingFrom;
    for (const f of await fs.promises.readdir(dir).catch(() => [] as string[])) {
      // LevelDB deletes files as it compacts: one gone between the listing and its stat counts nothing.
      total += (await fs.promises.stat(path.join(dir, f)).catch(() => ({ size: 0 }))).size;
    }
    return total;
  }

  /**
   * From now on a write the state folder refuses fails (reason 'closed') instead of waiting: a
   * stopping daemon does not hang on a full disk. Writes that land still land.
   */
  stopWaiting(): void {
    this.closing = true;
    this.wake?.();
  }

  async close(): Promise<void> {
    this.stopWaiting();
    while (this.writing) await new Promise((r) => setTimeout(r, 5));
    this.closed = true;
    await this.db.close();
    if (this.scratch) fs.rmSync(this.scratch, { recursive: true, force: true });
  }
}
