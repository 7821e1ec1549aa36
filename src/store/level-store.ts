// The LevelDB event store. Appends are group-committed: appends that arrive while a batch is being
// written go out together in the next one, so many devices persisting at once cost few writes.
import * as fs from 'node:fs';
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

type Db = ClassicLevel<string, string>;
type BatchOp = { type: 'put'; key: string; value: string } | { type: 'del'; key: string };

const STREAM_NAME = /^[A-Za-z0-9/_.:@-]+$/;
const eventKey = (stream: string, version: number) => `e!${stream}!${String(version).padStart(10, '0')}`;
const versionKey = (stream: string) => `v!${stream}`;
const snapshotKey = (stream: string) => `s!${stream}`;
const FORMAT_KEY = 'meta!format';

interface PendingAppend {
  ops: BatchOp[];
  resolve: () => void;
  reject: (e: unknown) => void;
}

export class LevelEventStore implements EventStore {
  private readonly versions = new Map<string, number>();
  private queue: PendingAppend[] = [];
  private writing = false;

  private constructor(
    private readonly db: Db,
    readonly dir: string,
    private readonly clock: Clock,
  ) {}

  static async open(dir: string, opts: { clock?: Clock } = {}): Promise<LevelEventStore> {
    fs.mkdirSync(dir, { recursive: true });
    const db: Db = new ClassicLevel(dir, { valueEncoding: 'utf8' });
    try {
      await db.open();
    } catch (e) {
      const cause = (e as { cause?: { code?: string; message?: string } }).cause;
      if (cause?.code === 'LEVEL_LOCKED') {
        throw new StoreError(`state folder ${dir} is in use by another xenblkd`, 'locked');
      }
      throw new StoreError(`state folder ${dir} is unreadable: ${cause?.message ?? (e as Error).message}`, 'corrupt');
    }
    const store = new LevelEventStore(db, dir, opts.clock ?? Date.now);
    try {
      await store.checkFormat();
      await store.loadVersions();
    } catch (e) {
      await db.close();
      throw e;
    }
    return store;
  }

  private async checkFormat(): Promise<void> {
    const format = await this.db.get(FORMAT_KEY);
    if (format === undefined) {
      await this.db.put(FORMAT_KEY, String(STORE_FORMAT_VERSION));
    } else if (Number(format) > STORE_FORMAT_VERSION) {
      throw new StoreError(
        `state folder ${this.dir} was written by a newer xenblkd (format ${format}, this one reads ${STORE_FORMAT_VERSION})`,
        'newer-format',
      );
    }
  }

  private async loadVersions(): Promise<void> {
    for await (const [key, value] of this.db.iterator({ gt: 'v!', lt: 'v"' })) {
      const version = Number(value);
      if (!Number.isSafeInteger(version) || version < 0) {
        throw new StoreError(`state folder ${this.dir}: bad version record ${key}`, 'corrupt');
      }
      this.versions.set(key.slice(2), version);
    }
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
    return this.enqueue(ops).then(
      () => newVersion,
      (err) => {
        // The batch did not land: forget the claim; the next caller re-reads the truth.
        this.versions.delete(stream);
        return this.reloadVersion(stream).then(() => Promise.reject(err));
      },
    );
  }

  private async reloadVersion(stream: string): Promise<void> {
    const v = await this.db.get(versionKey(stream));
    if (v !== undefined) this.versions.set(stream, Number(v));
  }

  private enqueue(ops: BatchOp[]): Promise<void> {
    return new Promise((resolve, reject) => {
      this.queue.push({ ops, resolve, reject });
      if (!this.writing) void this.flushQueue();
    });
  }

  private async flushQueue(): Promise<void> {
    this.writing = true;
    while (this.queue.length > 0) {
      const batch = this.queue;
      this.queue = [];
      try {
        await this.db.batch(batch.flatMap((p) => p.ops));
        for (const p of batch) p.resolve();
      } catch (e) {
        for (const p of batch) p.reject(e);
      }
    }
    this.writing = false;
  }

  async read(stream: string, afterVersion = 0): Promise<StoredEvent[]> {
    const out: StoredEvent[] = [];
    const range = { gt: eventKey(stream, afterVersion), lt: `e!${stream}!a` };
    for await (const [key, value] of this.db.iterator(range)) {
      const record = this.parse(key, value) as { type: string; data: unknown; at: number; f: number };
      out.push({
        type: record.type,
        data: record.data,
        metadata: { streamVersion: Number(key.slice(key.lastIndexOf('!') + 1)), recordedAt: record.at, formatVersion: record.f },
      });
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
    await this.enqueue([{ type: 'put', key: snapshotKey(stream), value }]);
  }

  async loadSnapshot(stream: string): Promise<Snapshot | undefined> {
    const value = await this.db.get(snapshotKey(stream));
    if (value === undefined) return undefined;
    const record = this.parse(snapshotKey(stream), value) as { f: number; version: number; state: unknown };
    return { version: record.version, state: record.state, formatVersion: record.f };
  }

  async compact(stream: string, upToVersion: number): Promise<number> {
    const ops: BatchOp[] = [];
    for await (const key of this.db.keys({ gt: `e!${stream}!`, lte: eventKey(stream, upToVersion) })) {
      ops.push({ type: 'del', key });
    }
    if (ops.length > 0) await this.enqueue(ops);
    return ops.length;
  }

  async deleteStream(stream: string): Promise<void> {
    const ops: BatchOp[] = [];
    for await (const key of this.db.keys({ gt: `e!${stream}!`, lt: `e!${stream}!a` })) ops.push({ type: 'del', key });
    ops.push({ type: 'del', key: versionKey(stream) }, { type: 'del', key: snapshotKey(stream) });
    this.versions.delete(stream);
    await this.enqueue(ops);
  }

  async sizeBytes(): Promise<number> {
    let total = 0;
    for (const f of await fs.promises.readdir(this.dir)) {
      total += (await fs.promises.stat(path.join(this.dir, f))).size;
    }
    return total;
  }

  async close(): Promise<void> {
    while (this.writing || this.queue.length > 0) await new Promise((r) => setImmediate(r));
    await this.db.close();
  }
}
