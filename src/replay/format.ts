// The session file (docs/session-format.md): JSON Lines, a header, then one record per line.
// These are the typed records; parse.ts reads them, recorder.ts writes them.
import type { Intent } from '../effects/intents';

export const SESSION_FORMAT = 'xenblkd-session';
export const SESSION_VERSION = 1;

/** The machines a session knows, and the process each runs in. */
export const MACHINES = { bus: 'daemon', vbd: 'daemon', blkfront: 'sim' } as const;
export type MachineName = keyof typeof MACHINES;
export type ProcessRole = (typeof MACHINES)[MachineName];
export const PROCESS_ROLES: readonly ProcessRole[] = ['daemon', 'sim'];

export interface SessionHeader {
  readonly kind: 'header';
  readonly format: typeof SESSION_FORMAT;
  readonly version: number;
  /** ISO time the file was created. */
  readonly created: string;
  /** Who wrote it first: "daemon", "sim" or "world" (both in one process). */
  readonly source: string;
  /** Free text (what the session shows), optional. */
  readonly description?: string;
}

/** What every record after the header has: its number in the file and the wall-clock time. */
interface Base {
  readonly n: number;
  readonly at: number;
}

/** A machine instance: the bus, or a device (`device` is its key "<frontend domid>/<devid>"). */
export interface OwnerRef {
  readonly machine: MachineName;
  readonly device?: string;
}

/** Intents grouped by owner key (see ownerKey). */
export type IntentsByOwner = Readonly<Record<string, readonly Intent[]>>;

/** A process (daemon or simulated host) started; one that started before without a stop crashed. */
export interface StartRecord extends Base {
  readonly kind: 'start';
  readonly process: ProcessRole;
  readonly pid: number;
}

/** The process stopped gracefully; what its actors asked when they stopped. */
export interface StopRecord extends Base {
  readonly kind: 'stop';
  readonly process: ProcessRole;
  readonly intents: IntentsByOwner;
}

/** Recording was turned on in a running process; checkpoint records of its actors follow. */
export interface AttachRecord extends Base {
  readonly kind: 'attach';
  readonly process: ProcessRole;
  readonly pid: number;
}

/** Recording was turned off; nothing after this (until the next start or attach) is known. */
export interface DetachRecord extends Base {
  readonly kind: 'detach';
  readonly process: ProcessRole;
}

/** A persisted stream as a recovering daemon read it: its snapshot and the events after it. */
export interface PersistedStream {
  readonly version: number;
  readonly snapshot: { readonly version: number; readonly state: unknown } | null;
  readonly events: readonly PersistedEvent[];
}

export interface PersistedEvent {
  readonly version: number;
  readonly type: string;
  readonly data: unknown;
  readonly at: number;
}

/** The state of an actor when recording was attached (its persisted snapshot and input). */
export interface CheckpointRecord extends Base, OwnerRef {
  readonly kind: 'checkpoint';
  readonly stream: string;
  readonly version: number;
  readonly input: unknown;
  readonly snapshot: unknown;
}

/** An actor was created with this input (a stream's CREATED event for persisted machines). */
export interface CreatedRecord extends Base, OwnerRef {
  readonly kind: 'created';
  readonly stream?: string;
  readonly input: unknown;
  /** Expected: the state value once started, and what its first invocations asked. */
  readonly state: unknown;
  readonly intents: readonly Intent[];
}

/** An actor was recovered from its persisted stream (daemon start after a stop or a crash). */
export interface RecoveredRecord extends Base, OwnerRef {
  readonly kind: 'recovered';
  readonly stream: string;
  readonly persisted: PersistedStream;
  /** Expected: the recovered state value and what its restarted invocations asked. */
  readonly state: unknown;
  readonly intents: readonly Intent[];
}

/** One event an actor processed (an observation, an effect outcome or a request). */
export interface InputRecord extends Base, OwnerRef {
  readonly kind: 'input';
  readonly stream?: string;
  readonly event: { readonly type: string } & Record<string, unknown>;
  /** Expected: the stream version after it (persisted machines), the transition and the intents. */
  readonly version?: number;
  readonly from: unknown;
  readonly to: unknown;
  readonly intents: readonly Intent[];
}

/** The actor was stopped for good (device retired, frontend removed). */
export interface RetiredRecord extends Base, OwnerRef {
  readonly kind: 'retired';
  /** Expected: what its invocations asked as they stopped. */
  readonly intents: readonly Intent[];
}

export type SessionRecord =
  | StartRecord
  | StopRecord
  | AttachRecord
  | DetachRecord
  | CheckpointRecord
  | CreatedRecord
  | RecoveredRecord
  | InputRecord
  | RetiredRecord;

export type RecordKind = SessionRecord['kind'];
export const RECORD_KINDS: readonly RecordKind[] = ['start', 'stop', 'attach', 'detach', 'checkpoint', 'created', 'recovered', 'input', 'retired'];

/** "bus", "vbd:1/51712", "blkfront:1/51712". */
export function ownerKey(machine: string, device: string | undefined): string {
  return device === undefined ? machine : `${machine}:${device}`;
}

export function processOf(machine: MachineName): ProcessRole {
  return MACHINES[machine];
}

/** A record as read from a file, with the line it came from. */
export type LocatedRecord = SessionRecord & { readonly line: number };
