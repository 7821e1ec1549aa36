// An XState actor whose every input event is appended to its stream before it is applied, with
// periodic snapshots, and which comes back from its stream after a restart.
import { type AnyActorRef, type AnyStateMachine, createActor } from 'xstate';
import type { Clock, EventStore } from './events';
import { CREATED, type MachineEvent, foldEvents, toStoredData } from './fold';

export interface TransitionRecord {
  readonly stream: string;
  readonly version: number;
  readonly at: number;
  readonly event: MachineEvent;
  readonly from: unknown;
  readonly to: unknown;
}

export interface PersistentActorOptions<M extends AnyStateMachine> {
  store: EventStore;
  stream: string;
  machine: M;
  clock?: Clock;
  /** Snapshot (and compact) after this many events. Default 64. */
  snapshotEvery?: number;
  onTransition?: (t: TransitionRecord) => void;
  /** Called when the store refuses an event; the event is applied all the same. */
  onStoreError?: (err: unknown, event: MachineEvent) => void;
}

export class PersistentActor<M extends AnyStateMachine> {
  private version: number;
  private snapshotVersion: number;
  private tail: Promise<void> = Promise.resolve();
  private stopped = false;

  private constructor(
    private readonly opts: PersistentActorOptions<M>,
    readonly actor: AnyActorRef,
    version: number,
    snapshotVersion: number,
  ) {
    this.version = version;
    this.snapshotVersion = snapshotVersion;
  }

  get stream(): string {
    return this.opts.stream;
  }

  get streamVersion(): number {
    return this.version;
  }

  /** Starts a new stream whose CREATED event holds the machine's input. */
  static async create<M extends AnyStateMachine>(opts: PersistentActorOptions<M>, input: unknown): Promise<PersistentActor<M>> {
    const version = await opts.store.append(opts.stream, [{ type: CREATED, data: input }], 'no_stream');
    const actor = createActor(opts.machine as AnyStateMachine, { input: input as never });
    const pa = new PersistentActor(opts, actor, version, 0);
    actor.start();
    return pa;
  }

  /** Rebuilds the actor from its snapshot and later events, then starts it (invocations restart). */
  static async recover<M extends AnyStateMachine>(opts: PersistentActorOptions<M>): Promise<PersistentActor<M>> {
    const snap = await opts.store.loadSnapshot(opts.stream);
    const events = await opts.store.read(opts.stream, snap?.version ?? 0);
    const version = await opts.store.version(opts.stream);
    const persisted = foldEvents(opts.machine, opts.stream, snap?.state, events);
    const actor = createActor(opts.machine as AnyStateMachine, { snapshot: persisted as never });
    const pa = new PersistentActor(opts, actor, version, snap?.version ?? 0);
    actor.start();
    return pa;
  }

  getSnapshot(): ReturnType<AnyActorRef['getSnapshot']> {
    return this.actor.getSnapshot();
  }

  /** Persists then applies; events of one actor are applied in the order dispatched. */
  dispatch(event: MachineEvent): Promise<void> {
    const run = () => this.apply(event);
    this.tail = this.tail.then(run, run);
    return this.tail;
  }

  private async apply(event: MachineEvent): Promise<void> {
    if (this.stopped) return;
    const { store, stream } = this.opts;
    const { type, data } = toStoredData(event);
    try {
      this.version = await store.append(stream, [{ type, data }], this.version);
    } catch (err) {
      this.opts.onStoreError?.(err, event);
      this.version = await store.version(stream).catch(() => this.version);
    }
    if (this.stopped) return;
    const from = this.actor.getSnapshot().value;
    this.actor.send(event);
    const to = this.actor.getSnapshot().value;
    this.opts.onTransition?.({ stream, version: this.version, at: (this.opts.clock ?? Date.now)(), event, from, to });
    if (this.version - this.snapshotVersion >= (this.opts.snapshotEvery ?? 64)) await this.snapshot();
  }

  async snapshot(): Promise<void> {
    const version = this.version;
    const state = this.actor.getPersistedSnapshot();
    try {
      await this.opts.store.saveSnapshot(this.opts.stream, version, state);
      await this.opts.store.compact(this.opts.stream, version);
      this.snapshotVersion = version;
    } catch (err) {
      this.opts.onStoreError?.(err, { type: 'xenblkd.snapshot' });
    }
  }

  /** Stops the actor (its invocations are stopped); the stream stays for the next start. */
  async stop(): Promise<void> {
    await this.tail;
    this.stopped = true;
    this.actor.stop();
  }

  /** Stops and forgets: the entity is gone. */
  async destroy(): Promise<void> {
    await this.stop();
    await this.opts.store.deleteStream(this.opts.stream);
  }
}
