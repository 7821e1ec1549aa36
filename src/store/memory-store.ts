// An in-memory EventStore: the reference the LevelDB store is checked against.
import {
  type Clock,
  type EventStore,
  type ExpectedVersion,
  type NewEvent,
  type Snapshot,
  type StoredEvent,
  STORE_FORMAT_VERSION,
  checkExpected,
} from './events';

export class MemoryEventStore implements EventStore {
  private readonly events = new Map<string, StoredEvent[]>();
  private readonly versions = new Map<string, number>();
  private readonly snapshots = new Map<string, Snapshot>();

  constructor(private readonly clock: Clock = Date.now) {}

  async append(stream: string, events: readonly NewEvent[], expected: ExpectedVersion): Promise<number> {
    let version = this.versions.get(stream) ?? 0;
    checkExpected(stream, expected, version);
    const list = this.events.get(stream) ?? [];
    const recordedAt = this.clock();
    for (const e of events) {
      version += 1;
      list.push(structuredClone({
        type: e.type,
        data: e.data,
        metadata: { streamVersion: version, recordedAt, formatVersion: STORE_FORMAT_VERSION },
      }));
    }
    this.events.set(stream, list);
    this.versions.set(stream, version);
    return version;
  }

  async read(stream: string, afterVersion = 0): Promise<StoredEvent[]> {
    return structuredClone((this.events.get(stream) ?? []).filter((e) => e.metadata.streamVersion > afterVersion));
  }

  async version(stream: string): Promise<number> {
    return this.versions.get(stream) ?? 0;
  }

  async streams(prefix = ''): Promise<string[]> {
    return [...this.versions.keys()].filter((s) => s.startsWith(prefix)).sort();
  }

  async saveSnapshot(stream: string, version: number, state: unknown): Promise<void> {
    this.snapshots.set(stream, structuredClone({ version, state, formatVersion: STORE_FORMAT_VERSION }));
  }

  async loadSnapshot(stream: string): Promise<Snapshot | undefined> {
    const s = this.snapshots.get(stream);
    return s && structuredClone(s);
  }

  async compact(stream: string, upToVersion: number): Promise<number> {
    const list = this.events.get(stream) ?? [];
    const kept = list.filter((e) => e.metadata.streamVersion > upToVersion);
    this.events.set(stream, kept);
    return list.length - kept.length;
  }

  async deleteStream(stream: string): Promise<void> {
    this.events.delete(stream);
    this.versions.delete(stream);
    this.snapshots.delete(stream);
  }

  async sizeBytes(): Promise<number> {
    return JSON.stringify([...this.events.values(), ...this.snapshots.values()]).length;
  }

  async close(): Promise<void> {}
}
