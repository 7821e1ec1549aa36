// The backend engine: the bus and one device actor per virtual disk, each persisted to its own
// stream, fed by xenstore watches (read after every firing, then sent as typed observations).
import type { Subscription } from 'rxjs';
import type { AnyStateMachine } from 'xstate';
import type { XenStore } from '../io/xs/client';
import type { Logger } from '../log';
import {
  type BlockBackendSettings,
  type BusDevice,
  type DeviceIdentity,
  type DeviceRef,
  backendChanged,
  blockDeviceMachine,
  busMachine,
  connectKeyNames,
  XenbusState,
  describeDevice,
  deviceIdentity,
  deviceKey,
  deviceOptions,
  frontendChanged,
  parseBackendWatchPath,
} from '../machines';
import { type Clock, ConcurrencyError, type EventStore, StoreError } from '../store/events';
import type { StoreFault, StoreHealth } from '../store/store-health';
import type { MachineEvent } from '../store/fold';
import { PersistentActor, type TransitionRecord } from '../store/persistent-actor';
import { readDirectory, readKeys } from '../effects/xenstore';
import { retireIntents, spawnIntents } from '../effects/intents';
import { readPersisted } from '../replay/persisted';
import type { SessionTap } from '../replay/tap';
import { Coalescer } from './coalescer';

export interface EngineTransition extends TransitionRecord {
  readonly machine: 'bus' | 'vbd';
  /** The device key "<frontend domid>/<devid>" (absent for the bus). */
  readonly device?: string;
}

export interface EngineOptions {
  readonly xs: XenStore;
  readonly store: EventStore;
  /** The store's health (a store that can refuse writes): new devices wait visibly while it refuses. */
  readonly health?: StoreHealth;
  readonly backendDomid: number;
  readonly backendType: string;
  readonly settings: BlockBackendSettings;
  /** The block device machine's named actors (src/effects/block-device). */
  readonly deviceActors: Record<string, unknown>;
  readonly logger: Logger;
  readonly clock?: Clock;
  readonly snapshotEvery?: number;
  readonly onTransition?: (t: EngineTransition) => void;
  /** A device was recovered from the store at start (not created). */
  readonly onRecovered?: (key: string) => void;
  /** Session recording (src/replay): inputs, transitions, creations, recoveries, retirements. */
  readonly tap?: SessionTap;
}

/** A device whose first event waits for the store: its machine starts once that event is stored. */
export interface WaitingDevice {
  readonly key: string;
  readonly since: number;
  readonly fault?: StoreFault;
}

/** Shown in the backend directory while a device waits for the store (the toolstack's timeout still decides). */
export const WAITING_NODE = 'hotplug-error';

interface DeviceRuntime {
  readonly key: string;
  readonly identity: DeviceIdentity;
  readonly actor: PersistentActor<AnyStateMachine>;
  readonly subscriptions: { unsubscribe(): void }[];
  lastBackend?: string;
  lastFrontend?: string;
}

const deviceStream = (type: string, key: string) => `device/${type}/${key}`;

/** Connected, and both ends seen in Connected: the state a quiet device stays in. */
function settledConnected(snapshot: unknown): boolean {
  const d = describeDevice(snapshot as Parameters<typeof describeDevice>[0]);
  return d.phase === 'attached.connected' && d.backendState === XenbusState.Connected && d.frontendState === XenbusState.Connected;
}

export class BackendEngine {
  private bus!: PersistentActor<AnyStateMachine>;
  private readonly devices = new Map<string, DeviceRuntime>();
  private readonly pending = new Map<string, Promise<void>>();
  private readonly subscriptions: Subscription[] = [];
  private readonly reads: Coalescer;
  private readonly busPath: string;
  private readonly deviceMachine: AnyStateMachine;
  private stopping = false;
  private adoptOnResync = false;
  /** New devices whose CREATED event waits for the store, with whether hotplug-error was written. */
  private readonly waiting = new Map<string, { since: number; identity: DeviceIdentity; shown: boolean; onWaiting: () => void }>();
  /** Device creations under way (the device's actor not made yet). */
  private readonly creating = new Map<string, Promise<void>>();
  /** Devices the bus retired while their creation waited for the store: destroyed once created. */
  private readonly retiredWhileWaiting = new Set<string>();
  private abandonedWrites = 0;
  private unwatchHealth?: () => void;
  /** Every device's persistent actor from before its machine starts (see durable). */
  private readonly durableActors = new Map<string, PersistentActor<AnyStateMachine>>();

  constructor(private readonly opts: EngineOptions) {
    this.busPath = `/local/domain/${opts.backendDomid}/backend/${opts.backendType}`;
    this.reads = new Coalescer((key, err) => {
      if (!this.stopping) opts.logger.warn({ err, key }, 'xenstore read after a watch failed');
    });
    this.deviceMachine = blockDeviceMachine.provide({ actors: opts.deviceActors as never }) as unknown as AnyStateMachine;
  }

  /** Recovers the bus and its devices from the store, then watches xenstore. */
  async start(): Promise<void> {
    const { store, logger } = this.opts;
    const busStream = `bus/${this.opts.backendType}`;
    const tap = this.opts.tap;
    const machine = busMachine.provide({
      actions: {
        spawnDevice: (_: unknown, ref: DeviceRef) => {
          if (tap?.recording) tap.intents('bus', undefined, spawnIntents(ref));
          this.spawn(ref);
        },
        retireDevice: (_: unknown, ref: DeviceRef) => {
          if (tap?.recording) tap.intents('bus', undefined, retireIntents(ref));
          this.retire(ref);
        },
      },
    }) as unknown as AnyStateMachine;
    const busOpts = { store, stream: busStream, machine, clock: this.opts.clock, snapshotEvery: this.opts.snapshotEvery, onTransition: (t: TransitionRecord) => this.transitioned({ ...t, machine: 'bus' }), ...this.storeErrorHandlers(undefined) };
    this.unwatchHealth = this.opts.health?.onChange((fault) => {
      for (const key of this.waiting.keys()) void this.showWaiting(key, fault);
    });
    let recovered = false;
    if ((await store.version(busStream)) > 0) {
      try {
        const persisted = tap?.recording ? await readPersisted(store, busStream) : undefined;
        this.bus = await PersistentActor.recover(busOpts);
        if (persisted) tap?.recovered({ machine: 'bus', stream: busStream, persisted, state: this.bus.getSnapshot().value });
        recovered = true;
      } catch (err) {
        // As for a device: a bus stream that cannot be read or folded is rebuilt from xenstore.
        logger.error({ err }, 'bus stream unreadable; rebuilding it from xenstore, adopting the devices there');
        await store.deleteStream(busStream);
      }
    }
    if (!recovered) {
      const input = { backendDomid: this.opts.backendDomid, backendType: this.opts.backendType };
      this.bus = await PersistentActor.create(busOpts, input);
      tap?.created({ machine: 'bus', stream: busStream, input, state: this.bus.getSnapshot().value });
      // A new (or rebuilt) store knows no device: the first enumeration takes over live ones.
      this.adoptOnResync = true;
    }
    // Recovery folded the bus without running its actions: give every registered device its actor.
    for (const device of Object.values(this.busDevices())) {
      this.spawn({ ...device, key: deviceKey(device.frontendDomid, device.devid) });
    }
    await Promise.all(this.pending.values());
    this.subscriptions.push(
      this.opts.xs.watch(this.busPath).subscribe((ev) => this.onBusWatch(ev.path)),
      this.opts.xs.connection$.subscribe((c) => {
        if (c === 'resync') this.scheduleResync();
      }),
    );
    await this.resync();
  }

  private transitioned(t: EngineTransition): void {
    const { tap } = this.opts;
    if (tap?.recording) tap.transition({ machine: t.machine, device: t.device, stream: t.stream, version: t.version, at: t.at, event: t.event, from: t.from, to: t.to });
    this.opts.onTransition?.(t);
  }

  private busDevices(): Record<string, BusDevice> {
    return (this.bus.getSnapshot().context as { devices: Record<string, BusDevice> }).devices;
  }

  private onBusWatch(path: string): void {
    if (this.stopping) return;
    const where = parseBackendWatchPath(path, this.opts.backendDomid, this.opts.backendType);
    if (!where) {
      this.scheduleResync();
      return;
    }
    const key = deviceKey(where.frontendDomid, where.devid);
    this.reads.schedule(`bus:${key}`, () => this.observeDirectory(where.frontendDomid, where.devid));
    const runtime = this.devices.get(key);
    if (runtime && (where.subpath === 'state' || where.subpath === 'online' || where.subpath === '')) {
      this.scheduleBackend(runtime, false);
    }
  }

  private scheduleResync(): void {
    this.reads.schedule('resync', () => this.resync());
  }

  /** One device directory as it is now, for the bus. */
  private async observeDirectory(frontendDomid: number, devid: number): Promise<void> {
    const key = deviceKey(frontendDomid, devid);
    const dir = `${this.busPath}/${frontendDomid}/${devid}`;
    const keys = await readKeys(this.opts.xs, dir, ['state', 'online']);
    const exists = keys.state !== undefined || keys.online !== undefined || (await this.opts.xs.tryRead(dir)) !== undefined;
    if (!exists) {
      if (key in this.busDevices()) this.sendBus({ type: 'device.removed', frontendDomid, devid });
      return;
    }
    if (key in this.busDevices()) return;
    const seen = backendChanged(keys.state, keys.online);
    this.sendBus({ type: 'device.seen', frontendDomid, devid, state: seen.state, online: seen.online });
  }

  /** Every device directory now: the bus reconciles, every device observes both ends again. */
  private async resync(): Promise<void> {
    const { xs } = this.opts;
    const devices: { frontendDomid: number; devid: number; state: number; online: boolean }[] = [];
    const names = await xs.directory(this.busPath).catch(() => [] as string[]);
    for (const fe of names) {
      const ids = await xs.directory(`${this.busPath}/${fe}`).catch(() => [] as string[]);
      for (const id of ids) {
        const where = parseBackendWatchPath(`${this.busPath}/${fe}/${id}`, this.opts.backendDomid, this.opts.backendType);
        if (!where) continue;
        const keys = await readKeys(xs, `${this.busPath}/${fe}/${id}`, ['state', 'online']);
        const seen = backendChanged(keys.state, keys.online);
        devices.push({ frontendDomid: where.frontendDomid, devid: where.devid, state: seen.state, online: seen.online });
      }
    }
    this.sendBus({ type: 'bus.resync', devices, ...(this.adoptOnResync && { adopt: true }) });
    this.adoptOnResync = false;
    await Promise.all(this.pending.values());
    for (const runtime of this.devices.values()) {
      this.scheduleBackend(runtime, true);
      this.scheduleFrontend(runtime, true);
    }
  }

  private sendBus(event: MachineEvent): void {
    if (!this.stopping) this.bus.send(event);
  }

  private spawn(ref: DeviceRef): void {
    if (this.devices.has(ref.key) || this.creating.has(ref.key)) return;
    // What start, resync, settled and stop wait for: the device started, failed, or waits for the
    // store (a store that refuses writes must not hold the daemon's start or stop).
    let ready!: () => void;
    const started = new Promise<void>((resolve) => (ready = resolve));
    const job = this.createDevice(ref, ready)
      .catch((err) => {
        if (err instanceof StoreError && err.reason === 'closed') this.opts.logger.info({ device: ref.key }, 'device not started: the daemon stopped while the state folder refused writes');
        else this.opts.logger.error({ err, device: ref.key }, 'could not start the device');
      })
      .finally(() => {
        this.creating.delete(ref.key);
        this.pending.delete(ref.key);
        ready();
      });
    this.creating.set(ref.key, job);
    this.pending.set(ref.key, started);
  }

  private async createDevice(ref: DeviceRef, onWaiting: () => void): Promise<void> {
    const { store, xs, settings, logger } = this.opts;
    const identity = deviceIdentity({ backendDomid: this.opts.backendDomid, backendType: this.opts.backendType, frontendDomid: ref.frontendDomid, devid: ref.devid });
    const stream = deviceStream(this.opts.backendType, ref.key);
    const actorOpts = {
      store,
      stream,
      machine: this.deviceMachine,
      clock: this.opts.clock,
      snapshotEvery: this.opts.snapshotEvery,
      snapshotWhen: settledConnected,
      onActor: (pa: PersistentActor<AnyStateMachine>) => this.durableActors.set(ref.key, pa),
      onTransition: (t: TransitionRecord) => this.transitioned({ ...t, machine: 'vbd', device: ref.key }),
      ...this.storeErrorHandlers(ref.key),
    };
    const { tap } = this.opts;
    const create = async () => {
      const input = { identity, options: deviceOptions(await readDirectory(xs, identity.backendPath)), settings };
      const created = await this.waitingForStore(ref.key, identity, onWaiting, PersistentActor.create(actorOpts, input));
      tap?.created({ machine: 'vbd', device: ref.key, stream, input, state: created.getSnapshot().value });
      return created;
    };
    let actor: PersistentActor<AnyStateMachine>;
    if ((await store.version(stream)) > 0) {
      try {
        const persisted = tap?.recording ? await readPersisted(store, stream) : undefined;
        actor = await PersistentActor.recover(actorOpts);
        if (persisted) tap?.recovered({ machine: 'vbd', device: ref.key, stream, persisted, state: actor.getSnapshot().value });
        this.opts.onRecovered?.(ref.key);
      } catch (err) {
        // A stream that cannot be folded is rebuilt from xenstore rather than crash-looping.
        logger.error({ err, device: ref.key }, 'device stream unreadable; rebuilding it from xenstore');
        await store.deleteStream(stream);
        actor = await create();
      }
    } else {
      actor = await create();
    }
    const runtime: DeviceRuntime = { key: ref.key, identity, actor, subscriptions: [] };
    if (this.stopping) {
      await actor.stop();
      return;
    }
    if (this.retiredWhileWaiting.delete(ref.key)) {
      // The toolstack removed it while its first event waited for the store.
      this.durableActors.delete(ref.key);
      await actor.destroy();
      return;
    }
    this.devices.set(ref.key, runtime);
    runtime.subscriptions.push(
      actor.ref.subscribe((s: { status: string }) => {
        if (s.status === 'done') this.sendBus({ type: 'device.destroyed', frontendDomid: ref.frontendDomid, devid: ref.devid });
      }),
      xs.watch(`${identity.frontendPath}/state`).subscribe(() => this.scheduleFrontend(runtime, false)),
    );
    if (actor.getSnapshot().status === 'done') {
      this.sendBus({ type: 'device.destroyed', frontendDomid: ref.frontendDomid, devid: ref.devid });
      return;
    }
    this.scheduleBackend(runtime, true);
  }

  /**
   * How an actor reports a store that refuses its writes. With a health to watch, the daemon logs
   * the fault once for all; a store without one gets one line per actor and fault.
   */
  private storeErrorHandlers(device: string | undefined) {
    const { logger, health } = this.opts;
    return {
      onStoreError: health ? undefined : (err: unknown) => logger.error({ err, device }, 'event store write failed; retrying'),
      onStoreRecovered: health ? undefined : () => logger.info({ device }, 'event store write landed after failures'),
      onWritesAbandoned: (writes: number, err: unknown) => {
        if (err instanceof ConcurrencyError) {
          logger.error({ err: err.message, device, events: writes }, 'event store: the stream moved under its actor (a version conflict); its unstored changes are given up and the next start folds what the store holds');
          return;
        }
        this.abandonedWrites += writes;
      },
    };
  }

  /** Runs a device's creation; while its first event waits for the store the device shows as waiting. */
  private async waitingForStore<T>(key: string, identity: DeviceIdentity, onWaiting: () => void, creating: Promise<T>): Promise<T> {
    const { health } = this.opts;
    if (!health) return creating;
    const entry = { since: Date.now(), identity, shown: false, onWaiting };
    this.waiting.set(key, entry);
    if (health.fault) void this.showWaiting(key, health.fault);
    try {
      return await creating;
    } finally {
      this.waiting.delete(key);
      if (entry.shown && !this.stopping && (await this.opts.xs.tryRead(`${identity.backendPath}/${WAITING_NODE}`)) !== undefined) {
        await this.opts.xs.rm(`${identity.backendPath}/${WAITING_NODE}`).catch((err) => this.opts.logger.warn({ err, device: key }, `could not remove ${WAITING_NODE}`));
      }
    }
  }

  /** Writes why the device waits into its backend directory (once per fault). */
  private async showWaiting(key: string, fault: StoreFault | undefined): Promise<void> {
    const entry = this.waiting.get(key);
    if (!entry || !fault || entry.shown || this.stopping) return;
    entry.shown = true;
    entry.onWaiting();
    // Not into a directory the toolstack removed meanwhile (a write would create it again).
    if ((await this.opts.xs.tryRead(entry.identity.backendPath).catch(() => undefined)) === undefined) return;
    const why = fault.reason === 'corrupt' ? 'the event store is corrupt' : `the state folder refuses writes${fault.code ? ` (${fault.code})` : ''}`;
    await this.opts.xs
      .write(`${entry.identity.backendPath}/${WAITING_NODE}`, `xenblkd: waiting to start this device: ${why}`)
      .catch((err) => this.opts.logger.warn({ err, device: key }, `could not write ${WAITING_NODE}`));
  }

  /** Devices whose first event waits for the store (for `xenblkd ls`, the dashboard, /metrics). */
  waitingDevices(): WaitingDevice[] {
    // Only those seen waiting on a fault: a creation in flight on a healthy store is not waiting.
    return [...this.waiting].filter(([, w]) => w.shown).map(([key, w]) => ({ key, since: w.since, fault: this.opts.health?.fault }));
  }

  private scheduleBackend(runtime: DeviceRuntime, force: boolean): void {
    if (force) runtime.lastBackend = undefined;
    this.reads.schedule(`be:${runtime.key}`, async () => {
      const keys = await readKeys(this.opts.xs, runtime.identity.backendPath, ['state', 'online']);
      this.deliver(runtime, 'lastBackend', backendChanged(keys.state, keys.online) as unknown as MachineEvent);
    });
  }

  private scheduleFrontend(runtime: DeviceRuntime, force: boolean): void {
    if (force) runtime.lastFrontend = undefined;
    this.reads.schedule(`fe:${runtime.key}`, async () => {
      const { frontendPath } = runtime.identity;
      const state = await this.opts.xs.tryRead(`${frontendPath}/state`);
      const keys = await readKeys(this.opts.xs, frontendPath, connectKeyNames(this.opts.settings.maxRingPageOrder));
      this.deliver(runtime, 'lastFrontend', frontendChanged(state, keys) as unknown as MachineEvent);
    });
  }

  /** Sends an observation unless it repeats the last one (a spurious firing). */
  private deliver(runtime: DeviceRuntime, slot: 'lastBackend' | 'lastFrontend', event: MachineEvent): void {
    if (this.stopping || this.devices.get(runtime.key) !== runtime) return;
    const text = JSON.stringify(event);
    if (runtime[slot] === text) return;
    runtime[slot] = text;
    runtime.actor.send(event);
  }

  private retire(ref: DeviceRef): void {
    const job = (async () => {
      await this.pending.get(ref.key);
      const runtime = this.devices.get(ref.key);
      if (!runtime) {
        if (this.creating.has(ref.key)) this.retiredWhileWaiting.add(ref.key);
        return;
      }
      this.devices.delete(ref.key);
      this.durableActors.delete(ref.key);
      runtime.subscriptions.forEach((s) => s.unsubscribe());
      // destroy() stops the actor before its first await: what its stop asked is reported by then.
      const destroyed = runtime.actor.destroy();
      this.opts.tap?.retired('vbd', ref.key);
      await destroyed;
    })().catch((err) => this.opts.logger.error({ err, device: ref.key }, 'could not retire the device'));
    this.pending.set(`retire:${ref.key}`, job.finally(() => this.pending.delete(`retire:${ref.key}`)));
  }

  /** The device actors, for the CLI, the dashboard and tests. */
  deviceActors(): ReadonlyMap<string, PersistentActor<AnyStateMachine>> {
    return new Map([...this.devices].map(([k, r]) => [k, r.actor]));
  }

  /** The targets (params) of the devices this engine runs: what their storage must keep serving. */
  deviceTargets(): string[] {
    const targets: string[] = [];
    for (const r of this.devices.values()) {
      const config = (r.actor.getSnapshot() as { context?: { config?: { path?: string } | null } }).context?.config;
      if (config?.path) targets.push(config.path);
    }
    return targets;
  }

  /**
   * Resolves once every event the device has applied is in the store. Effects that others can
   * see (backend state writes) wait for it: a daemon killed at any instant then never comes back
   * behind what xenstore shows, and never rewrites an older state over a newer one.
   */
  durable(key: string): Promise<void> {
    return this.durableActors.get(key)?.flushed() ?? Promise.resolve();
  }

  deviceActor(key: string): PersistentActor<AnyStateMachine> | undefined {
    return this.devices.get(key)?.actor;
  }

  busActor(): PersistentActor<AnyStateMachine> {
    return this.bus;
  }

  /** Sends an operator request (unplug, resize) to a device. */
  request(key: string, event: MachineEvent): boolean {
    const runtime = this.devices.get(key);
    if (!runtime) return false;
    runtime.actor.send(event);
    return true;
  }

  /** Waits until watch-driven reads and device starts have settled (tests, shutdown). */
  async settled(): Promise<void> {
    for (let i = 0; i < 3; i++) {
      await this.reads.idle();
      await Promise.all(this.pending.values());
      await Promise.all([...this.devices.values()].map((d) => d.actor.flushed()));
      await this.bus.flushed();
    }
  }

  /** Stops watching and stops every actor; devices stay as they are in xenstore for the next start. */
  async stop(): Promise<void> {
    this.stopping = true;
    this.subscriptions.forEach((s) => s.unsubscribe());
    await this.reads.idle();
    await Promise.all(this.pending.values());
    for (const runtime of this.devices.values()) runtime.subscriptions.forEach((s) => s.unsubscribe());
    await Promise.all([...this.devices.values()].map((d) => d.actor.stop()));
    this.devices.clear();
    await this.bus.stop();
    this.unwatchHealth?.();
    if (this.abandonedWrites > 0) {
      this.opts.logger.warn({ events: this.abandonedWrites }, `stopped with ${this.abandonedWrites} state change(s) not stored (the state folder refused writes); none of them was shown in xenstore, the next start observes them again`);
    }
  }
}
