// An XState actor whose every processed event is appended to its stream, in order, with periodic
// snapshots, and which comes back from its stream after a restart. Events come from outside
// (send) and from the actor's own effects (sendBack); both are seen through inspection, after
// they were applied. A crash between applying and persisting loses at most the tail of the
// stream; the restored machine is then a step behind and its restarted (idempotent) effects
// bring it forward again.
//
// A write the store refuses is never skipped: it stays at the head of the actor's queue, with
// everything after it, and is tried again with backoff; flushed() waits for it. Only a store that
// closed while its folder refused writes (a daemon stopping on a full disk) ends the wait: what was
// not stored is then the lost tail of a crash, and nothing of it was shown (persist, then show).
import { type AnyActorRef, type AnyStateMachine, type InspectionEvent, createActor } from 'xstate';
import { type Clock, ConcurrencyError, type EventStore, type NewEvent, StoreError } from './events';
import { CREATED, type FoldBase, type MachineEvent, foldEvents, toStoredData } from './fold';

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
  /**
   * Also snapshot when this turns true (a device settled in Connected): a restart then finds the
   * state whole and folds nothing, which is most of what recovering a thousand devices costs.
   */
  snapshotWhen?: (snapshot: ReturnType<AnyActorRef['getSnapshot']>) => boolean;
  onTransition?: (t: TransitionRecord) => void;
  /** Called with the actor before its machine starts (its first effects may wait for flushed()). */
  onActor?: (actor: PersistentActor<M>) => void;
  /** Called when the store starts refusing this actor's writes (once, not at every try). */
  onStoreError?: (err: unknown) => void;
  /** Called when a write lands after onStoreError. */
  onStoreRecovered?: () => void;
  /** Called when writes are given up (their count): the store closed, or the stream moved under the actor (a ConcurrencyError). */
  onWritesAbandoned?: (writes: number, err: unknown) => void;
  /** Backoff between tries of a refused write: first delay and cap, ms (default 100 and 2000). */
  retry?: { firstMs: number; maxMs: number };
}

type Write = { kind: 'event'; event: NewEvent; version: number } | { kind: 'snapshot'; version: number; state: unknown };

export class PersistentActor<M extends AnyStateMachine> {
  private actor!: AnyActorRef;
  private version: number;
  private sinceSnapshot = 0;
  private settled = false;
  private lastValue: unknown;
  private writes: Write[] = [];
  private writing: Promise<void> | null = null;
  private stopped = false;
  private input: unknown;

  private constructor(
    private readonly opts: PersistentActorOptions<M>,
    version: number,
  ) {
    this.version = version;
    opts.onActor?.(this);
  }

  get stream(): string {
    return this.opts.stream;
  }

  /** The version of the last event applied (persisted or about to be). */
  get streamVersion(): number {
    return this.version;
  }

  get ref(): AnyActorRef {
    return this.actor;
  }

  /** The machine's input (what the stream's CREATED event holds). */
  get machineInput(): unknown {
    return this.input;
  }

  /** Starts a new stream whose CREATED event holds the machine's input. */
  static async create<M extends AnyStateMachine>(opts: PersistentActorOptions<M>, input: unknown): Promise<PersistentActor<M>> {
    const version = await opts.store.append(opts.stream, [{ type: CREATED, data: input }], 'no_stream');
    const pa = new PersistentActor(opts, version);
    pa.start({ input });
    return pa;
  }

  /** Rebuilds the actor from its snapshot and later events, then starts it (invocations restart). */
  static async recover<M extends AnyStateMachine>(opts: PersistentActorOptions<M>): Promise<PersistentActor<M>> {
    const snap = await opts.store.loadSnapshot(opts.stream);
    const events = await opts.store.read(opts.stream, snap?.version ?? 0);
    const version = await opts.store.version(opts.stream);
    const { persisted, input } = foldEvents(opts.machine, opts.stream, snap?.state as FoldBase | undefined, events);
    const pa = new PersistentActor(opts, version);
    pa.sinceSnapshot = events.length;
    pa.start({ snapshot: persisted, input });
    return pa;
  }

  private start(options: { input?: unknown; snapshot?: unknown }): void {
    this.input = options.input;
    this.actor = createActor(this.opts.machine as AnyStateMachine, {
      ...(options as object),
      inspect: (ev: InspectionEvent) => this.inspect(ev),
    });
    this.lastValue = this.actor.getSnapshot().value;
    this.actor.start();
  }

  private inspect(ev: InspectionEvent): void {
    if (ev.type !== '@xstate.snapshot' || ev.actorRef !== this.actor || this.stopped) return;
    const event = ev.event as MachineEvent;
    if (event.type.startsWith('xstate.')) return;
    const to = (ev.snapshot as unknown as { value: unknown }).value;
    this.version += 1;
    this.enqueue({ kind: 'event', event: toStoredData(event), version: this.version });
    const from = this.lastValue;
    this.lastValue = to;
    this.opts.onTransition?.({ stream: this.opts.stream, version: this.version, at: (this.opts.clock ?? Date.now)(), event, from, to });
    this.sinceSnapshot += 1;
    const settled = this.opts.snapshotWhen?.(ev.snapshot) ?? false;
    const justSettled = settled && !this.settled;
    this.settled = settled;
    if (justSettled || this.sinceSnapshot >= (this.opts.snapshotEvery ?? 64)) {
      this.sinceSnapshot = 0;
      const base: FoldBase = { persisted: this.actor.getPersistedSnapshot(), input: this.input };
      this.enqueue({ kind: 'snapshot', version: this.version, state: base });
    }
  }

  getSnapshot(): ReturnType<AnyActorRef['getSnapshot']> {
    return this.actor.getSnapshot();
  }

  send(event: MachineEvent): void {
    if (!this.stopped) this.actor.send(event);
  }

  private enqueue(w: Write): void {
    this.writes.push(w);
    if (!this.writing) this.writing = this.drain();
  }

  private async drain(): Promise<void> {
    const { store, stream } = this.opts;
    let failures = 0;
    while (this.writes.length > 0) {
      const w = this.writes[0];
      let taken = 1;
      try {
        if (w.kind === 'snapshot') {
          await store.saveSnapshot(stream, w.version, w.state);
          await store.compact(stream, w.version);
        } else {
          // Consecutive events go out as one append.
          const events: NewEvent[] = [];
          while (taken < this.writes.length && this.writes[taken].kind === 'event') taken += 1;
          for (let i = 0; i < taken; i++) events.push((this.writes[i] as { event: NewEvent }).event);
          await store.append(stream, events, w.version - 1);
        }
      } catch (err) {
        // Closed: the daemon is stopping. A version conflict: the stream moved under this actor
        // (another writer, a bug); no retry can land it, so waiting would hang the device for ever.
        if ((err instanceof StoreError && err.reason === 'closed') || err instanceof ConcurrencyError) {
          const lost = this.writes.length;
          this.writes = [];
          this.opts.onWritesAbandoned?.(lost, err);
          break;
        }
        failures += 1;
        if (failures === 1) this.opts.onStoreError?.(err);
        await this.sleep(failures);
        continue;
      }
      // Only now that it landed does it leave the queue.
      this.writes.splice(0, taken);
      if (failures > 0) this.opts.onStoreRecovered?.();
      failures = 0;
    }
    this.writing = null;
  }

  private sleep(failures: number): Promise<void> {
    const { firstMs, maxMs } = this.opts.retry ?? { firstMs: 100, maxMs: 2000 };
    return new Promise((resolve) => setTimeout(resolve, Math.min(maxMs, firstMs * 2 ** Math.min(failures - 1, 20))));
  }

  /** Writes applied and not yet stored (the head of them is being written, or waits for the store). */
  get unstoredWrites(): number {
    return this.writes.length;
  }

  /** Resolves once every event applied so far is in the store. */
  async flushed(): Promise<void> {
    while (this.writing) await this.writing;
  }

  /** Stops the actor (its invocations stop); the stream stays for the next start. */
  async stop(): Promise<void> {
    this.stopped = true;
    this.actor.stop();
    await this.flushed();
  }

  /** Stops and forgets: the entity is gone. */
  async destroy(): Promise<void> {
    await this.stop();
    await this.opts.store.deleteStream(this.opts.stream);
  }
}
