// A stream as the event store holds it (snapshot + later events), read for a recording, and an
// in-memory EventStore that replay seeds with what a recording says was persisted, so that
// recovery runs through PersistentActor.recover exactly as in the daemon.
import {
  type EventStore,
  type ExpectedVersion,
  type NewEvent,
  type Snapshot,
  type StoredEvent,
  STORE_FORMAT_VERSION,
  checkExpected,
} from '../store/events';
import type { PersistedStream } from './format';

/** Reads what recovery of `stream` is about to fold. */
export async function readPersisted(store: EventStore, stream: string): Promise<PersistedStream> {
  const snap = await store.loadSnapshot(stream);
  const events = await store.read(stream, snap?.version ?? 0);
  return {
    version: await store.version(stream),
    snapshot: snap ? { version: snap.version, state: snap.state } : null,
    events: events.map((e) => ({ version: e.metadata.streamVersion, type: e.type, data: e.data, at: e.metadata.recordedAt })),
  };
}

interface Stream {
  version: number;
  events: StoredEvent[];
  snapshot?: Snapshot;
}

/** In-memory, no copies: replay owns every object it appends. */
export class ReplayEventStore implements EventStore {
  private readonly streamsByName = new Map<string, Stream>();

  constructor(private readonly clock: () => number) {}

  /** Replaces a stream with a persisted one. */
  seed(stream: string, persisted: PersistedStream): void {
    this.streamsByName.set(stream, {
      version: persisted.version,
      snapshot: persisted.snapshot ? { version: persisted.snapshot.version, state: persisted.snapshot.state, formatVersion: STORE_FORMAT_VERSION } : undefined,
      events: persisted.events.map((e) => ({
        type: e.type,
        data: e.data,
        metadata: { streamVersion: e.version, recordedAt: e.at, formatVersion: STORE_FORMAT_VERSION },
      })),
    });
  }

  /** The events of a stream this store holds (not covered by a snapshot). */
  eventsOf(stream: string): readonly StoredEvent[] {
    return this.streamsByName.get(stream)?.events ?? [];
  }

  async append(stream: string, events: readonly NewEvent[], expected: ExpectedVersion): Promise<number> {
    let s = this.streamsByName.get(stream);
    checkExpected(stream, expected, s?.version ?? 0);
    if (!s) {
      s = { version: 0, events: [] };
      this.streamsByName.set(stream, s);
    }
    const recordedAt = this.clock();
    for (const e of events) {
      s.version += 1;
      s.events.push({ type: e.type, data: e.data, metadata: { streamVersion: s.version, recordedAt, formatVersion: STORE_FORMAT_VERSION } });
    }
    return s.version;
  }

  async read(stream: string, afterVersion = 0): Promise<StoredEvent[]> {
    return (this.streamsByName.get(stream)?.events ?? []).filter((e) => e.metadata.streamVersion > afterVersion);
  }

  async version(stream: string): Promise<number> {
    return this.streamsByName.get(stream)?.version ?? 0;
  }

  async streams(prefix = ''): Promise<string[]> {
    return [...this.streamsByName.keys()].filter((s) => s.startsWith(prefix)).sort();
  }

  async saveSnapshot(stream: string, version: number, state: unknown): Promise<void> {
    const s = this.streamsByName.get(stream);
    if (s) s.snapshot = { version, state, formatVersion: STORE_FORMAT_VERSION };
  }

  async loadSnapshot(stream: string): Promise<Snapshot | undefined> {
    return this.streamsByName.get(stream)?.snapshot;
  }

  async compact(stream: string, upToVersion: number): Promise<number> {
    const s = this.streamsByName.get(stream);
    if (!s) return 0;
    const before = s.events.length;
    s.events = s.events.filter((e) => e.metadata.streamVersion > upToVersion);
    return before - s.events.length;
  }

  async deleteStream(stream: string): Promise<void> {
    this.streamsByName.delete(stream);
  }

  async sizeBytes(): Promise<number> {
    return 0;
  }

  async close(): Promise<void> {}
}
