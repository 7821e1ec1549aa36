// Event-sourcing vocabulary: readonly facts, one stream per entity, appended with an expected version.

/** The format written into every stored record; readers refuse newer ones. */
export const STORE_FORMAT_VERSION = 1;

export interface EventMetadata {
  /** Position of the event in its stream, from 1. */
  readonly streamVersion: number;
  /** Milliseconds since the epoch, from the injected clock. */
  readonly recordedAt: number;
  readonly formatVersion: number;
}

export interface NewEvent<T extends string = string, D = unknown> {
  readonly type: T;
  readonly data: D;
}

export interface StoredEvent<T extends string = string, D = unknown> extends NewEvent<T, D> {
  readonly metadata: EventMetadata;
}

/** 'no_stream': the stream must not exist yet; 'any': no check; a number: the current version. */
export type ExpectedVersion = number | 'no_stream' | 'any';

export interface Snapshot<S = unknown> {
  /** Version of the last event folded into the state. */
  readonly version: number;
  readonly state: S;
  readonly formatVersion: number;
}

export interface EventStore {
  /** Appends atomically; returns the stream's new version. */
  append(stream: string, events: readonly NewEvent[], expected: ExpectedVersion): Promise<number>;
  /** Events with streamVersion > afterVersion, in order. */
  read(stream: string, afterVersion?: number): Promise<StoredEvent[]>;
  /** 0 for a stream that does not exist. */
  version(stream: string): Promise<number>;
  /** Every stream whose name starts with prefix, sorted. */
  streams(prefix?: string): Promise<string[]>;
  saveSnapshot(stream: string, version: number, state: unknown): Promise<void>;
  loadSnapshot(stream: string): Promise<Snapshot | undefined>;
  /** Drops the events a snapshot covers (streamVersion <= version). Returns how many went. */
  compact(stream: string, upToVersion: number): Promise<number>;
  /** Removes the stream, its snapshot and its version. */
  deleteStream(stream: string): Promise<void>;
  /** Bytes on disk (approximate), for metrics. */
  sizeBytes(): Promise<number>;
  close(): Promise<void>;
}

export class ConcurrencyError extends Error {
  constructor(
    readonly stream: string,
    readonly expected: ExpectedVersion,
    readonly actual: number,
  ) {
    super(`stream ${stream}: expected version ${expected}, found ${actual}`);
    this.name = 'ConcurrencyError';
  }
}

/**
 * The store cannot be used: locked by another daemon, corrupt, written by a newer version, its
 * folder failing (io: full, read-only, no permission; code is the errno name), or closed while
 * writes still waited for the folder.
 */
export class StoreError extends Error {
  constructor(
    message: string,
    readonly reason: 'locked' | 'corrupt' | 'newer-format' | 'io' | 'closed',
    readonly code?: string,
  ) {
    super(message);
    this.name = 'StoreError';
  }
}

export type Clock = () => number;

export function checkExpected(stream: string, expected: ExpectedVersion, actual: number): void {
  if (expected === 'any') return;
  const want = expected === 'no_stream' ? 0 : expected;
  if (want !== actual) throw new ConcurrencyError(stream, expected, actual);
}
