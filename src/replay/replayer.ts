// Replays a session: fresh machines with replay effects, fed the recorded inputs in order on a
// simulated clock; after each record the transition, the stream version and the intents are
// compared with what was recorded. A process start without a stop before it is a crash: the
// process's actors are dropped as they are (their stops never run) and each comes back through
// PersistentActor.recover over what the recording says was persisted, as in the daemon.
import { type AnyActorRef, type AnyStateMachine, createActor, initialTransition } from 'xstate';
import type { Intent } from '../effects/intents';
import { blockDeviceMachine, busMachine, frontendMachine } from '../machines';
import { PersistentActor, type TransitionRecord } from '../store/persistent-actor';
import { type FoldBase, foldEvents } from '../store/fold';
import { sameIntentsByOwner, sameJson } from './compare';
import {
  type CheckpointRecord,
  type CreatedRecord,
  type InputRecord,
  type IntentsByOwner,
  type LocatedRecord,
  type MachineName,
  type PersistedStream,
  type ProcessRole,
  type RecoveredRecord,
  type RetiredRecord,
  type StopRecord,
  ownerKey,
  processOf,
} from './format';
import { type ObservedEvent, TransitionObserver } from './observe';
import type { ParsedSession } from './parse';
import { ReplayEventStore } from './persisted';
import { ReplayEffects } from './replay-effects';

/** What a record expected and what the replay did, for the parts that differ. */
export interface Outcome {
  readonly state?: unknown;
  readonly from?: unknown;
  readonly version?: number;
  readonly intents?: readonly Intent[] | IntentsByOwner;
  /** Something the replay could not do (no actor for the event, recovery failed...). */
  readonly problem?: string;
}

export interface Divergence {
  readonly n: number;
  readonly line: number;
  readonly kind: LocatedRecord['kind'];
  readonly owner?: string;
  readonly event?: string;
  /** What differs: "state", "intents", "version", "from", "persisted", "actor". */
  readonly differs: readonly string[];
  readonly expected: Outcome;
  readonly actual: Outcome;
}

export interface ReplayStats {
  readonly records: number;
  readonly inputs: number;
  readonly byMachine: Readonly<Record<MachineName, number>>;
  readonly starts: number;
  readonly crashes: number;
  readonly recoveries: number;
  /** Applied events a crash kept from the store (recovery redid their effects). */
  readonly lostInCrash: number;
}

export interface ReplayResult extends ReplayStats {
  readonly divergences: number;
  readonly first: Divergence | null;
  /** Facts about the recording worth knowing that are not divergences. */
  readonly notes: readonly string[];
  /** With `update`: the records with their expected parts as this replay produced them. */
  readonly updated?: readonly LocatedRecord[];
}

export interface ReplayOptions {
  /** Go on after divergences and produce every record's expected part as replayed now. */
  readonly update?: boolean;
  /** Machines to replay instead of this version's (another version's, or a changed rule). */
  readonly machines?: { readonly bus?: AnyStateMachine; readonly vbd?: AnyStateMachine; readonly blkfront?: AnyStateMachine };
}

interface ReplayActor {
  readonly machine: MachineName;
  readonly device?: string;
  readonly process: ProcessRole;
  /** Persisted machines (bus, vbd). */
  readonly persistent?: PersistentActor<AnyStateMachine>;
  /** Others (blkfront). */
  readonly plain?: AnyActorRef;
  /** The machine threw while processing an event (it has stopped). */
  failure?: Error;
}

type Transition = { event: ObservedEvent; from: unknown; to: unknown; version?: number };

const YIELD_EVERY = 4096;

export async function replaySession(session: ParsedSession, opts: ReplayOptions = {}): Promise<ReplayResult> {
  return new Replayer(opts).run(session.records);
}

class Replayer {
  private now = 0;
  private readonly clock = () => this.now;
  private readonly store = new ReplayEventStore(this.clock);
  private readonly pending = new Map<string, Intent[]>();
  private readonly effects = new ReplayEffects((owner, intents) => this.addIntents(owner, intents));
  private readonly actors = new Map<string, ReplayActor>();
  private readonly running = new Set<ProcessRole>();
  private last: Transition | null = null;
  private readonly machines: { bus: AnyStateMachine; vbd: AnyStateMachine; blkfront: AnyStateMachine };
  private first: Divergence | null = null;
  private divergences = 0;
  private readonly notes: string[] = [];
  private readonly updated: LocatedRecord[] | undefined;
  private stats = { records: 0, inputs: 0, starts: 0, crashes: 0, recoveries: 0, lostInCrash: 0 };
  private readonly byMachine: Record<MachineName, number> = { bus: 0, vbd: 0, blkfront: 0 };

  constructor(private readonly opts: ReplayOptions) {
    this.updated = opts.update ? [] : undefined;
    const base = { bus: busMachine as AnyStateMachine, vbd: blockDeviceMachine as AnyStateMachine, blkfront: frontendMachine as AnyStateMachine, ...opts.machines };
    this.machines = {
      bus: base.bus.provide({ actions: this.effects.busActions() as never }),
      vbd: base.vbd.provide({ actors: this.effects.deviceActors() as never }),
      blkfront: base.blkfront.provide({ actors: this.effects.frontendActors() as never }),
    };
  }

  async run(records: readonly LocatedRecord[]): Promise<ReplayResult> {
    for (let i = 0; i < records.length; i++) {
      const r = records[i];
      this.now = r.at;
      this.stats.records += 1;
      let result: LocatedRecord = r;
      try {
        // Inputs, nearly every record, stay synchronous: no promise per event.
        result = r.kind === 'input' ? this.input(r) : await this.lifecycle(r);
      } catch (err) {
        // Whatever a recorded value makes fail here is this record's divergence, not a crash.
        this.diverged({ owner: 'machine' in r ? ownerKey(r.machine, r.device) : undefined, differs: ['actor'], expected: {}, actual: { problem: `cannot replay this ${r.kind} record: ${(err as Error).message}` } }, r);
      }
      this.updated?.push(result);
      if (this.first && !this.opts.update) break;
      if (i % YIELD_EVERY === YIELD_EVERY - 1) await new Promise((resolve) => setImmediate(resolve));
    }
    for (const actor of this.actors.values()) if (actor.persistent) await actor.persistent.flushed();
    return {
      ...this.stats,
      byMachine: { ...this.byMachine },
      divergences: this.divergences,
      first: this.first,
      notes: this.notes,
      ...(this.updated && { updated: this.updated }),
    };
  }

  /** Every record but an input: processes, actors coming and going. */
  private async lifecycle(r: Exclude<LocatedRecord, { kind: 'input' }>): Promise<LocatedRecord> {
    switch (r.kind) {
      case 'start':
        if (this.running.has(r.process)) {
          this.stats.crashes += 1;
          await this.drop(r.process);
        }
        this.running.add(r.process);
        this.stats.starts += 1;
        return r;
      case 'attach':
        await this.drop(r.process);
        this.running.add(r.process);
        return r;
      case 'detach':
        await this.drop(r.process);
        this.running.delete(r.process);
        return r;
      case 'stop':
        return this.stop(r);
      case 'checkpoint':
        await this.checkpoint(r);
        return r;
      case 'created':
        return this.created(r);
      case 'recovered':
        return this.recovered(r);
      case 'retired':
        return this.retired(r);
    }
  }

  private addIntents(owner: string, intents: Intent[]): void {
    if (intents.length === 0) return;
    const list = this.pending.get(owner);
    if (list) list.push(...intents);
    else this.pending.set(owner, intents);
  }

  private takeIntents(owner: string): Intent[] {
    const list = this.pending.get(owner) ?? [];
    this.pending.delete(owner);
    return list;
  }

  private diverged(d: Omit<Divergence, 'n' | 'line' | 'kind'>, r: LocatedRecord): void {
    this.divergences += 1;
    this.first ??= { n: r.n, line: r.line, kind: r.kind, ...d };
  }

  private onTransition = (t: TransitionRecord) => {
    this.last = { event: t.event as ObservedEvent, from: t.from, to: t.to, version: t.version };
  };

  private persistentOptions(machine: 'bus' | 'vbd', stream: string) {
    return { store: this.store, stream, machine: this.machines[machine], clock: this.clock, snapshotEvery: Number.POSITIVE_INFINITY, onTransition: this.onTransition };
  }

  private valueOf(actor: ReplayActor): unknown {
    return ((actor.persistent ?? actor.plain)!.getSnapshot() as { value: unknown }).value;
  }

  // --- records ---

  private input(r: InputRecord & { line: number }): LocatedRecord {
    this.stats.inputs += 1;
    this.byMachine[r.machine] += 1;
    const owner = ownerKey(r.machine, r.device);
    const actor = this.actors.get(owner);
    if (!actor) {
      this.diverged({ owner, event: r.event.type, differs: ['actor'], expected: { state: r.to }, actual: { problem: `no ${r.machine} actor${r.device ? ` for device ${r.device}` : ''} is running in the replay` } }, r);
      return r;
    }
    this.effects.outcome(owner, r.event);
    this.last = null;
    if (actor.persistent) actor.persistent.send(r.event);
    else actor.plain!.send(r.event);
    const t = this.last as Transition | null;
    const intents = this.takeIntents(owner);
    if (actor.failure) {
      this.actors.delete(owner);
      this.diverged({ owner, event: r.event.type, differs: ['actor'], expected: { state: r.to, intents: r.intents }, actual: { problem: `the ${r.machine} machine failed on this event: ${actor.failure.message}` } }, r);
      return r;
    }
    const to = t ? t.to : this.valueOf(actor);
    const from = t ? t.from : to;
    const version = actor.persistent ? actor.persistent.streamVersion : undefined;
    const differs: string[] = [];
    // `from` is the previous `to`, compared then (or the recovered state): not compared again.
    if (!sameJson(to, r.to)) differs.push('state');
    if (r.version !== undefined && version !== r.version) differs.push('version');
    if (!sameJson(intents, r.intents)) differs.push('intents');
    if (!t) differs.push('actor');
    if (differs.length > 0) {
      this.diverged(
        {
          owner,
          event: r.event.type,
          differs,
          expected: { state: r.to, from: r.from, version: r.version, intents: r.intents },
          actual: { state: to, from, version, intents, ...(!t && { problem: `the ${r.machine} actor did not take the event (it has stopped)` }) },
        },
        r,
      );
    }
    if (!this.updated) return r;
    return { ...r, from, to, intents, ...(r.version !== undefined && { version }) };
  }

  private async created(r: CreatedRecord & { line: number }): Promise<LocatedRecord> {
    const owner = ownerKey(r.machine, r.device);
    this.actors.delete(owner);
    // An input the machine cannot start from would fail inside XState, out of reach.
    const [initial] = initialTransition(this.machines[r.machine], r.input as never) as unknown as [{ status: string; error?: unknown }];
    if (initial.status === 'error') {
      const message = initial.error instanceof Error ? initial.error.message : String(initial.error);
      this.diverged({ owner, differs: ['actor'], expected: { state: r.state }, actual: { problem: `the ${r.machine} machine cannot start from the recorded input: ${message}` } }, r);
      return r;
    }
    let actor: ReplayActor;
    if (r.machine === 'blkfront') {
      const observer = new TransitionObserver((event, from, to) => {
        this.last = { event, from, to };
      });
      const plain = createActor(this.machines.blkfront, { input: r.input as never, inspect: observer.inspect });
      observer.bind(plain);
      actor = { machine: r.machine, device: r.device, process: processOf(r.machine), plain };
      this.watchFailure(actor, plain);
      plain.start();
    } else {
      const stream = r.stream ?? '';
      if ((await this.store.version(stream)) > 0) await this.store.deleteStream(stream);
      const persistent = await PersistentActor.create(this.persistentOptions(r.machine, stream), r.input);
      actor = { machine: r.machine, device: r.device, process: processOf(r.machine), persistent };
      this.watchFailure(actor, persistent.ref);
    }
    this.actors.set(owner, actor);
    return this.compareStart(r, owner, this.valueOf(actor));
  }

  /** XState reports a machine's error by throwing from a timer unless someone listens. */
  private watchFailure(actor: ReplayActor, ref: AnyActorRef): void {
    ref.subscribe({
      error: (err: unknown) => {
        actor.failure = err instanceof Error ? err : new Error(String(err));
      },
    });
  }

  /** Recovery of a stream whose fold fails, or restores into an error, must be refused before starting. */
  private checkRecoverable(machine: AnyStateMachine, stream: string, persisted: PersistedStream): string | null {
    try {
      const events = persisted.events.map((e) => ({ type: e.type, data: e.data, metadata: { streamVersion: e.version, recordedAt: e.at, formatVersion: 1 } }));
      const folded = foldEvents(machine, stream, persisted.snapshot?.state as FoldBase | undefined, events);
      const snapshot = createActor(machine, { snapshot: folded.persisted as never, input: folded.input as never }).getSnapshot() as { status: string; error?: unknown };
      return snapshot.status === 'error' ? `the recovered state is not valid: ${(snapshot.error as Error)?.message ?? snapshot.error}` : null;
    } catch (err) {
      return (err as Error).message;
    }
  }

  private async recovered(r: RecoveredRecord & { line: number }): Promise<LocatedRecord> {
    this.stats.recoveries += 1;
    const owner = ownerKey(r.machine, r.device);
    this.checkPersisted(r, owner);
    this.actors.delete(owner);
    const problem = this.checkRecoverable(this.machines[r.machine], r.stream, r.persisted);
    if (problem !== null) {
      this.diverged({ owner, differs: ['actor'], expected: { state: r.state }, actual: { problem: `recovery failed: ${problem}` } }, r);
      return r;
    }
    this.store.seed(r.stream, r.persisted);
    const persistent = await PersistentActor.recover(this.persistentOptions(r.machine as 'bus' | 'vbd', r.stream));
    const actor: ReplayActor = { machine: r.machine, device: r.device, process: processOf(r.machine), persistent };
    this.watchFailure(actor, persistent.ref);
    this.actors.set(owner, actor);
    return this.compareStart(r, owner, this.valueOf(actor));
  }

  private compareStart(r: (CreatedRecord | RecoveredRecord) & { line: number }, owner: string, state: unknown): LocatedRecord {
    const intents = this.takeIntents(owner);
    const differs: string[] = [];
    if (!sameJson(state, r.state)) differs.push('state');
    if (!sameJson(intents, r.intents)) differs.push('intents');
    if (differs.length > 0) {
      this.diverged({ owner, differs, expected: { state: r.state, intents: r.intents }, actual: { state, intents } }, r);
    }
    return this.updated ? { ...r, state, intents } : r;
  }

  /** What was persisted before a restart must be what this replay applied, as far as both go. */
  private checkPersisted(r: RecoveredRecord & { line: number }, owner: string): void {
    const applied = this.store.eventsOf(r.stream);
    if (applied.length === 0) return;
    const byVersion = new Map(applied.map((e) => [e.metadata.streamVersion, e]));
    const lastApplied = applied[applied.length - 1].metadata.streamVersion;
    for (const e of r.persisted.events) {
      const mine = byVersion.get(e.version);
      if (!mine) continue;
      if (mine.type !== e.type || !sameJson(mine.data ?? {}, e.data ?? {})) {
        this.diverged(
          {
            owner,
            differs: ['persisted'],
            expected: { problem: `persisted event ${e.version} of ${r.stream}: ${e.type} ${JSON.stringify(e.data)}` },
            actual: { problem: `replayed event ${e.version}: ${mine.type} ${JSON.stringify(mine.data)}` },
          },
          r,
        );
        return;
      }
    }
    if (r.persisted.version < lastApplied) this.stats.lostInCrash += lastApplied - r.persisted.version;
    if (r.persisted.version > lastApplied) {
      this.notes.push(`line ${r.line}: ${r.stream} had ${r.persisted.version - lastApplied} persisted event(s) the recording lacks (its tail was lost in the crash); recovery used them`);
    }
  }

  private async checkpoint(r: CheckpointRecord & { line: number }): Promise<void> {
    const owner = ownerKey(r.machine, r.device);
    const persisted: PersistedStream = { version: r.version, snapshot: { version: r.version, state: { persisted: r.snapshot, input: r.input } }, events: [] };
    const problem = this.checkRecoverable(this.machines[r.machine], r.stream, persisted);
    if (problem !== null) {
      this.diverged({ owner, differs: ['actor'], expected: {}, actual: { problem: `the checkpoint cannot be restored: ${problem}` } }, r);
      return;
    }
    this.store.seed(r.stream, persisted);
    const persistent = await PersistentActor.recover(this.persistentOptions(r.machine as 'bus' | 'vbd', r.stream));
    const actor: ReplayActor = { machine: r.machine, device: r.device, process: processOf(r.machine), persistent };
    this.watchFailure(actor, persistent.ref);
    this.actors.set(owner, actor);
    // The live actors were already running: what this restart asked is not part of the session
    // (their pending outcomes are: a realize running at attach still reports its keys).
    this.takeIntents(owner);
  }

  private async retired(r: RetiredRecord & { line: number }): Promise<LocatedRecord> {
    const owner = ownerKey(r.machine, r.device);
    const actor = this.actors.get(owner);
    this.actors.delete(owner);
    if (actor?.persistent) await actor.persistent.destroy();
    else actor?.plain?.stop();
    const intents = this.takeIntents(owner);
    if (!actor || !sameJson(intents, r.intents)) {
      this.diverged(
        { owner, differs: actor ? ['intents'] : ['actor'], expected: { intents: r.intents }, actual: { intents, ...(!actor && { problem: 'no such actor to retire' }) } },
        r,
      );
    }
    return this.updated ? { ...r, intents } : r;
  }

  private async stop(r: StopRecord & { line: number }): Promise<LocatedRecord> {
    const owners = this.ownersOf(r.process);
    for (const owner of owners) {
      const actor = this.actors.get(owner)!;
      this.actors.delete(owner);
      if (actor.persistent) await actor.persistent.stop();
      else actor.plain!.stop();
    }
    const intents: Record<string, Intent[]> = {};
    for (const owner of [...this.pending.keys()].sort()) {
      if (processOf(owner.split(':')[0] as MachineName) === r.process) intents[owner] = this.takeIntents(owner);
    }
    if (!sameIntentsByOwner(intents, r.intents)) {
      this.diverged({ owner: r.process, differs: ['intents'], expected: { intents: r.intents }, actual: { intents } }, r);
    }
    this.running.delete(r.process);
    return this.updated ? { ...r, intents } : r;
  }

  private ownersOf(process: ProcessRole): string[] {
    return [...this.actors.entries()].filter(([, a]) => a.process === process).map(([o]) => o).sort();
  }

  /** A crash (or a new attach): the process's actors are gone, nothing of theirs runs any more. */
  private async drop(process: ProcessRole): Promise<void> {
    for (const owner of this.ownersOf(process)) {
      const actor = this.actors.get(owner)!;
      this.actors.delete(owner);
      // What it applied reaches the replay store (the comparison at recovery needs it).
      await actor.persistent?.flushed();
      this.effects.forget(owner);
      this.pending.delete(owner);
    }
  }
}
