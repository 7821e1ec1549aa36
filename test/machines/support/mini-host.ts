// A deterministic stand-in for xenstore plus minimal effects, to run the backend device, the
// blkfront frontend and the bus against each other in one process. Everything asynchronous
// (watch firings, effect completions) goes through one FIFO queue that the test drains.
import { createActor, initialTransition, transition, type Actor, type AnyEventObject } from 'xstate';
import { busMachine } from '../../../src/machines/bus/bus-machine';
import { BACKEND_INFO_KEYS } from '../../../src/machines/block/backend-info';
import { DEFAULT_BLOCK_BACKEND_SETTINGS } from '../../../src/machines/block/config';
import { connectKeyNames, frontendRingKeys, type ConnectParams } from '../../../src/machines/block/connect-params';
import { blockDeviceMachine, type BlockDeviceEvent, type BlockRealized } from '../../../src/machines/block/device-machine';
import { backendKeysForRealize, frontendKeysForRealize, type ImageInfo } from '../../../src/machines/block/realize-keys';
import { frontendMachine, type FrontendSettings, type RingInput } from '../../../src/machines/frontend/frontend-machine';
import type { XenbusDeviceInput } from '../../../src/machines/xenbus/device-machine';
import { backendChanged, frontendChanged } from '../../../src/machines/xenbus/device-events';
import { deviceIdentity, deviceKey, parseBackendWatchPath, type DeviceIdentity } from '../../../src/machines/xenbus/identity';
import { deviceOptions, xenbusRealizeKeys } from '../../../src/machines/xenbus/realize-keys';
import { observeOnline, observeXenbusState, type XenbusState } from '../../../src/machines/xenbus/state';
import { fromCallback } from 'xstate';
import { EventRecorder } from './recorder';

export class MiniXenstore {
  private readonly data = new Map<string, string>();
  private readonly watches = new Set<{ prefix: string; fire: (path: string) => void }>();
  private readonly queue: (() => void)[] = [];
  readonly writes: { path: string; value: string | null }[] = [];

  read(path: string): string | undefined {
    return this.data.get(path);
  }

  write(path: string, value: string): void {
    this.data.set(path, value);
    this.writes.push({ path, value });
    this.fire(path);
  }

  rm(path: string): void {
    for (const key of [...this.data.keys()]) {
      if (key === path || key.startsWith(`${path}/`)) this.data.delete(key);
    }
    this.writes.push({ path, value: null });
    this.fire(path);
  }

  paths(): string[] {
    return [...this.data.keys()];
  }

  exists(dir: string): boolean {
    return [...this.data.keys()].some((k) => k.startsWith(`${dir}/`));
  }

  /** The direct children of dir with values. */
  dir(dir: string): Record<string, string> {
    const out: Record<string, string> = {};
    for (const [key, value] of this.data) {
      if (key.startsWith(`${dir}/`) && !key.slice(dir.length + 1).includes('/')) out[key.slice(dir.length + 1)] = value;
    }
    return out;
  }

  readKeys(dir: string, names: readonly string[]): Record<string, string> {
    const out: Record<string, string> = {};
    for (const name of names) {
      const value = this.read(`${dir}/${name}`);
      if (value !== undefined) out[name] = value;
    }
    return out;
  }

  /** Fires once on registration, then for the node and every descendant, as xenstored does. */
  watch(prefix: string, fire: (path: string) => void): () => void {
    const watch = { prefix, fire };
    this.watches.add(watch);
    this.defer(() => this.watches.has(watch) && fire(prefix));
    return () => this.watches.delete(watch);
  }

  defer(task: () => void): void {
    this.queue.push(task);
  }

  /** Drains the queue; a livelock fails the test instead of hanging it. */
  run(maxSteps = 10_000): void {
    for (let steps = 0; this.queue.length > 0; steps++) {
      if (steps >= maxSteps) throw new Error('mini xenstore: queue did not settle');
      this.queue.shift()!();
    }
  }

  private fire(path: string): void {
    for (const watch of this.watches) {
      if (path === watch.prefix || path.startsWith(`${watch.prefix}/`) || watch.prefix.startsWith(`${path}/`)) {
        this.defer(() => this.watches.has(watch) && watch.fire(path));
      }
    }
  }
}

export const IMAGE: ImageInfo = { sizeBytes: 8 << 20, sectorSize: 512, physicalSectorSize: 512, readOnly: false, discardSupport: null };

/** What libxl writes to create a vbd: both directories, online=1, state=1. */
export function toolstackCreateVbd(xs: MiniXenstore, identity: DeviceIdentity, vdev: string): void {
  const be = identity.backendPath;
  const fe = identity.frontendPath;
  const backend: Record<string, string> = {
    frontend: fe,
    'frontend-id': String(identity.frontendDomid),
    online: '1',
    state: '1',
    params: '/images/guest.img',
    mode: 'w',
    type: 'file',
    dev: vdev,
    'device-type': 'disk',
  };
  for (const [k, v] of Object.entries(backend)) xs.write(`${be}/${k}`, v);
  const frontend = { backend: be, 'backend-id': String(identity.backendDomid), state: '1', 'virtual-device': String(identity.devid), 'device-type': 'disk' };
  for (const [k, v] of Object.entries(frontend)) xs.write(`${fe}/${k}`, v);
}

/** Grants the simulated guest made: ref -> granted. Shared by the frontend and the backend. */
export class MiniGrants {
  private next = 8;
  readonly live = new Set<number>();
  grant(): number {
    const ref = this.next++;
    this.live.add(ref);
    return ref;
  }
  revoke(ref: number): void {
    this.live.delete(ref);
  }
}

type DeviceActor = Actor<ReturnType<MiniDaemon['deviceMachine']>>;

/** The daemon side: bus + device actors, each device's events recorded as an event store would. */
export class MiniDaemon {
  readonly devices = new Map<string, { actor: DeviceActor; recorder: EventRecorder; unwatch: (() => void)[]; input: XenbusDeviceInput<typeof DEFAULT_BLOCK_BACKEND_SETTINGS> }>();
  /** Per-device streams that outlive a daemon crash. */
  readonly streams: Map<string, { input: XenbusDeviceInput<typeof DEFAULT_BLOCK_BACKEND_SETTINGS>; events: AnyEventObject[] }>;
  readonly connections = new Set<string>();
  readonly bus: Actor<ReturnType<MiniDaemon['busMachineWithEngine']>>;
  private readonly busUnwatch: () => void;
  private alive = true;

  constructor(
    readonly xs: MiniXenstore,
    readonly grants: MiniGrants,
    streams?: MiniDaemon['streams'],
  ) {
    this.streams = streams ?? new Map();
    this.bus = createActor(this.busMachineWithEngine(), { input: { backendDomid: 0 } });
    this.bus.start();
    // A restarted daemon resumes the devices it has streams for before watching the bus.
    for (const [key, stream] of this.streams) this.resume(key, stream);
    this.busUnwatch = xs.watch('/local/domain/0/backend/vbd', (path) => this.busFired(path));
  }

  /** Kills the daemon: actors stop, no cleanup of xenstore (the guest keeps running). */
  crash(): void {
    this.alive = false;
    this.busUnwatch();
    for (const device of this.devices.values()) {
      device.unwatch.forEach((u) => u());
      device.actor.stop();
    }
    this.connections.clear();
  }

  device(key: string): DeviceActor {
    const device = this.devices.get(key);
    if (!device) throw new Error(`no device ${key}`);
    return device.actor;
  }

  private busMachineWithEngine() {
    return busMachine.provide({
      actions: {
        spawnDevice: (_, ref) => this.spawn(ref.key, ref.frontendDomid, ref.devid),
        retireDevice: (_, ref) => this.retire(ref.key),
      },
    });
  }

  private busFired(path: string): void {
    const where = parseBackendWatchPath(path, 0, 'vbd');
    if (where === null) {
      // The watched node itself: enumerate (resync) as QEMU's xen_bus_enumerate.
      this.bus.send({ type: 'bus.resync', devices: this.enumerate() });
      return;
    }
    const dir = `/local/domain/0/backend/vbd/${where.frontendDomid}/${where.devid}`;
    if (!this.xs.exists(dir)) {
      this.bus.send({ type: 'device.removed', frontendDomid: where.frontendDomid, devid: where.devid });
      return;
    }
    this.bus.send({
      type: 'device.seen',
      frontendDomid: where.frontendDomid,
      devid: where.devid,
      state: observeXenbusState(this.xs.read(`${dir}/state`)),
      online: observeOnline(this.xs.read(`${dir}/online`)),
    });
  }

  private enumerate() {
    const seen = new Map<string, { frontendDomid: number; devid: number; state: XenbusState; online: boolean }>();
    for (const path of this.xs.paths()) {
      const where = parseBackendWatchPath(path, 0, 'vbd');
      if (!where) continue;
      const dir = `/local/domain/0/backend/vbd/${where.frontendDomid}/${where.devid}`;
      seen.set(deviceKey(where.frontendDomid, where.devid), {
        frontendDomid: where.frontendDomid,
        devid: where.devid,
        state: observeXenbusState(this.xs.read(`${dir}/state`)),
        online: observeOnline(this.xs.read(`${dir}/online`)),
      });
    }
    return [...seen.values()];
  }

  deviceMachine() {
    const xs = this.xs;
    const daemon = this;
    const later = (f: () => void) => xs.defer(() => daemon.alive && f());
    return blockDeviceMachine.provide({
      actors: {
        realize: fromCallback(({ input, sendBack }) => {
          let stopped = false;
          later(() => {
            if (stopped) return;
            const { identity, config } = input;
            const generic = xenbusRealizeKeys(identity);
            const keys = { ...backendKeysForRealize(IMAGE, config), ...generic.backend };
            for (const [k, v] of Object.entries(keys)) xs.write(`${identity.backendPath}/${k}`, v);
            for (const [k, v] of Object.entries(frontendKeysForRealize(config.vdev, config.deviceType))) {
              xs.write(`${identity.frontendPath}/${k}`, v);
            }
            if (xs.read(`${identity.frontendPath}/state`) === undefined) {
              for (const [k, v] of Object.entries(generic.frontendIfMissing)) xs.write(`${identity.frontendPath}/${k}`, v);
            }
            const realized: BlockRealized = { image: IMAGE };
            sendBack({ type: 'realize.done', realized });
          });
          return () => {
            stopped = true;
          };
        }),
        writeBackendState: fromCallback(({ input }) => {
          later(() => {
            const path = `${input.identity.backendPath}/state`;
            if (xs.read(path) !== String(input.state)) xs.write(path, String(input.state));
          });
        }),
        connection: fromCallback(({ input, sendBack }) => {
          const key = deviceKey(input.identity.frontendDomid, input.identity.devid);
          let stopped = false;
          later(() => {
            if (stopped) return;
            const bad = input.connection.ringRefs.find((ref) => !daemon.grants.live.has(ref));
            if (bad !== undefined) {
              sendBack({ type: 'connection.failed', message: `grant ref ${bad} is not granted` });
              return;
            }
            daemon.connections.add(key);
            sendBack({ type: 'connection.ready' });
          });
          return () => {
            stopped = true;
            daemon.connections.delete(key);
          };
        }),
        reportFailure: fromCallback(({ input }) => {
          later(() => xs.write(`${input.identity.backendPath}/hotplug-status`, 'error'));
        }),
        publishUpdate: fromCallback(({ input, sendBack }) => {
          later(() => {
            for (const [k, v] of Object.entries(input.keys)) xs.write(`${input.identity.backendPath}/${k}`, v);
            const state = xs.read(`${input.identity.backendPath}/state`);
            if (state !== undefined) xs.write(`${input.identity.backendPath}/state`, state);
            sendBack({ type: 'update.done' });
          });
        }),
        unplug: fromCallback(({ input, sendBack }) => {
          later(() => {
            xs.write(`${input.identity.backendPath}/online`, '0');
            xs.write(`${input.identity.backendPath}/state`, '5');
            sendBack({ type: 'unplug.done' });
          });
        }),
        destroy: fromCallback(({ input, sendBack }) => {
          later(() => {
            xs.rm(input.identity.frontendPath);
            xs.rm(input.identity.backendPath);
            sendBack({ type: 'destroy.done' });
          });
        }),
      },
    });
  }

  private spawn(key: string, frontendDomid: number, devid: number): void {
    if (this.devices.has(key)) return;
    const identity = deviceIdentity({ backendDomid: 0, frontendDomid, devid });
    const input = { identity, options: deviceOptions(this.xs.dir(identity.backendPath)), settings: DEFAULT_BLOCK_BACKEND_SETTINGS };
    const stream = { input, events: [] as AnyEventObject[] };
    this.streams.set(key, stream);
    this.start(key, stream, undefined);
  }

  /** Recovery: fold the stream with transition(), persist, restore. */
  private resume(key: string, stream: { input: XenbusDeviceInput<typeof DEFAULT_BLOCK_BACKEND_SETTINGS>; events: AnyEventObject[] }): void {
    let [snapshot] = initialTransition(blockDeviceMachine, stream.input);
    for (const event of stream.events) [snapshot] = transition(blockDeviceMachine, snapshot, event as BlockDeviceEvent);
    if (snapshot.status === 'done') return;
    const persisted = JSON.parse(JSON.stringify(blockDeviceMachine.getPersistedSnapshot(snapshot)));
    this.start(key, stream, persisted);
  }

  private start(key: string, stream: { input: XenbusDeviceInput<typeof DEFAULT_BLOCK_BACKEND_SETTINGS>; events: AnyEventObject[] }, persisted: unknown): void {
    const recorder = new EventRecorder();
    const actor = createActor(this.deviceMachine(), {
      input: stream.input,
      ...(persisted === undefined ? {} : { snapshot: persisted as never }),
      inspect: (e) => {
        const before = recorder.events.length;
        recorder.inspect(e);
        if (recorder.events.length > before) stream.events.push(recorder.events[recorder.events.length - 1]!);
      },
    });
    recorder.rootSessionId = actor.sessionId;
    const { identity } = stream.input;
    const unwatch = [
      this.xs.watch(identity.backendPath, (path) => {
        if (path !== identity.backendPath && !path.endsWith('/state') && !path.endsWith('/online')) return;
        actor.send(backendChanged(this.xs.read(`${identity.backendPath}/state`), this.xs.read(`${identity.backendPath}/online`)));
      }),
      this.xs.watch(`${identity.frontendPath}/state`, () => {
        const keys = this.xs.readKeys(identity.frontendPath, connectKeyNames(DEFAULT_BLOCK_BACKEND_SETTINGS.maxRingPageOrder));
        actor.send(frontendChanged(this.xs.read(`${identity.frontendPath}/state`), keys));
      }),
    ];
    actor.subscribe({
      complete: () => this.xs.defer(() => this.alive && this.bus.send({ type: 'device.destroyed', frontendDomid: identity.frontendDomid, devid: identity.devid })),
    });
    this.devices.set(key, { actor, recorder, unwatch, input: stream.input });
    actor.start();
  }

  private retire(key: string): void {
    const device = this.devices.get(key);
    if (!device) return;
    device.unwatch.forEach((u) => u());
    device.actor.stop();
    this.devices.delete(key);
    this.streams.delete(key);
  }
}

/** The simulated guest's blkfront for one disk. */
export function startGuestFrontend(xs: MiniXenstore, grants: MiniGrants, identity: DeviceIdentity, settings: FrontendSettings) {
  const resized: number[] = [];
  const machine = frontendMachine.provide({
    actors: {
      writeFrontendState: fromCallback(({ input }) => {
        xs.defer(() => {
          const path = `${input.identity.frontendPath}/state`;
          if (xs.read(path) !== String(input.state)) xs.write(path, String(input.state));
        });
      }),
      ring: fromCallback<AnyEventObject, RingInput>(({ input, sendBack }) => {
        const refs: number[] = [];
        let stopped = false;
        xs.defer(() => {
          if (stopped) return;
          for (let i = 0; i < 1 << input.ringPageOrder; i++) refs.push(grants.grant());
          const ring: ConnectParams = { ringPageOrder: input.ringPageOrder, ringRefs: refs, eventChannel: 40 + refs[0]!, protocol: input.protocol, persistent: input.persistent };
          for (const [k, v] of Object.entries(frontendRingKeys(ring))) xs.write(`${input.identity.frontendPath}/${k}`, v);
          sendBack({ type: 'ring.ready', ring });
        });
        return () => {
          stopped = true;
          refs.forEach((r) => grants.revoke(r));
        };
      }),
      disk: fromCallback(({ receive }) => {
        receive((e) => {
          if (e.type === 'disk.resized') resized.push((e as unknown as { disk: { sectors: number } }).disk.sectors);
        });
      }),
    },
  });
  const actor = createActor(machine, { input: { identity, settings } });
  const unwatch = xs.watch(`${identity.backendPath}/state`, () => {
    actor.send({
      type: 'backend.changed',
      state: observeXenbusState(xs.read(`${identity.backendPath}/state`)),
      keys: xs.readKeys(identity.backendPath, BACKEND_INFO_KEYS),
    });
  });
  actor.start();
  return { actor, resized, stop: () => { unwatch(); actor.stop(); } };
}
