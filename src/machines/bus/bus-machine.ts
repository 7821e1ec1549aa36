// The xenbus backend bus (QEMU xen_bus_enumerate / xen_bus_cleanup): a registry of the devices
// under /local/domain/<be>/backend/<type>, keyed "<frontend domid>/<devid>". A device is created
// when the toolstack creates it (online=1, state=Initialising) and retired when it is destroyed or
// its directory disappears. The engine owns device actors and provides spawnDevice/retireDevice.
import { assign, enqueueActions, setup } from 'xstate';
import { deviceKey } from '../xenbus/identity';
import { XenbusState } from '../xenbus/state';

export interface BusInput {
  readonly backendDomid: number;
  /** The backend directory type to watch; "vbd" by default. */
  readonly backendType?: string;
}

export interface BusDevice {
  readonly frontendDomid: number;
  readonly devid: number;
}

export interface BusContext {
  readonly backendDomid: number;
  readonly backendType: string;
  /** Live devices by deviceKey(). */
  readonly devices: Readonly<Record<string, BusDevice>>;
}

/** A device directory as read after the bus watch fired (its `state` and `online`). */
export interface DeviceSeen {
  readonly type: 'device.seen';
  readonly frontendDomid: number;
  readonly devid: number;
  readonly state: XenbusState;
  readonly online: boolean;
}

export type BusEvent =
  | DeviceSeen
  /** The device directory no longer exists. */
  | { readonly type: 'device.removed'; readonly frontendDomid: number; readonly devid: number }
  /** The engine reports that a device machine reached its final state. */
  | { readonly type: 'device.destroyed'; readonly frontendDomid: number; readonly devid: number }
  /**
   * A full enumeration (after start or a xenstore reconnection): every device directory now.
   * adopt: this backend lost its record of the devices (a new or rebuilt event store): devices
   * already past Initialising and still online are taken over too.
   */
  | { readonly type: 'bus.resync'; readonly devices: readonly Omit<DeviceSeen, 'type'>[]; readonly adopt?: boolean }
  | { readonly type: 'bus.stop' };

/** Params of the engine's actions. */
export interface DeviceRef {
  readonly frontendDomid: number;
  readonly devid: number;
  readonly key: string;
}

function refOf(device: BusDevice): DeviceRef {
  return { frontendDomid: device.frontendDomid, devid: device.devid, key: deviceKey(device.frontendDomid, device.devid) };
}

function without(devices: BusContext['devices'], device: BusDevice) {
  const { [deviceKey(device.frontendDomid, device.devid)]: gone, ...rest } = devices;
  return { devices: rest, gone };
}

/** QEMU creates a backend only for a directory the toolstack marked online and Initialising. */
export function isCreatable(seen: Pick<DeviceSeen, 'state' | 'online'>): boolean {
  return seen.online && seen.state === XenbusState.Initialising;
}

/** A device a backend that lost its records may take over: online, realized, not closing. */
export function isAdoptable(seen: Pick<DeviceSeen, 'state' | 'online'>): boolean {
  return seen.online && seen.state >= XenbusState.InitWait && seen.state <= XenbusState.Connected;
}

export const busMachine = setup({
  types: {} as { context: BusContext; events: BusEvent; input: BusInput },
  actions: {
    /** Create the device actor (and its event stream) for this key. Idempotent. */
    spawnDevice: (_, _params: DeviceRef) => {
      throw new Error('bus: action "spawnDevice" was not provided (use machine.provide({ actions }))');
    },
    /** Stop the device actor and close its stream. Idempotent. */
    retireDevice: (_, _params: DeviceRef) => {
      throw new Error('bus: action "retireDevice" was not provided (use machine.provide({ actions }))');
    },
  },
  guards: {
    creatable: ({ context, event }) =>
      event.type === 'device.seen' && isCreatable(event) && !(deviceKey(event.frontendDomid, event.devid) in context.devices),
    registered: ({ context, event }) =>
      (event.type === 'device.removed' || event.type === 'device.destroyed') &&
      deviceKey(event.frontendDomid, event.devid) in context.devices,
  },
}).createMachine({
  id: 'bus',
  initial: 'watching',
  context: ({ input }) => ({
    backendDomid: input.backendDomid,
    backendType: input.backendType ?? 'vbd',
    devices: {},
  }),
  states: {
    watching: {
      on: {
        'device.seen': {
          guard: 'creatable',
          actions: [
            assign({
              devices: ({ context, event }) => ({
                ...context.devices,
                [deviceKey(event.frontendDomid, event.devid)]: { frontendDomid: event.frontendDomid, devid: event.devid },
              }),
            }),
            { type: 'spawnDevice', params: ({ event }) => refOf(event) },
          ],
        },
        'device.removed': {
          guard: 'registered',
          actions: enqueueActions(({ context, event, enqueue }) => {
            const { devices, gone } = without(context.devices, event);
            enqueue.assign({ devices });
            if (gone) enqueue({ type: 'retireDevice', params: refOf(gone) });
          }),
        },
        'device.destroyed': {
          guard: 'registered',
          actions: enqueueActions(({ context, event, enqueue }) => {
            const { devices, gone } = without(context.devices, event);
            enqueue.assign({ devices });
            if (gone) enqueue({ type: 'retireDevice', params: refOf(gone) });
          }),
        },
        'bus.resync': {
          actions: enqueueActions(({ context, event, enqueue }) => {
            const present = new Set(event.devices.map((d) => deviceKey(d.frontendDomid, d.devid)));
            const devices: Record<string, BusDevice> = {};
            for (const [key, device] of Object.entries(context.devices)) {
              if (present.has(key)) devices[key] = device;
              else enqueue({ type: 'retireDevice', params: refOf(device) });
            }
            for (const seen of event.devices) {
              const key = deviceKey(seen.frontendDomid, seen.devid);
              if (key in devices || !(isCreatable(seen) || (event.adopt === true && isAdoptable(seen)))) continue;
              devices[key] = { frontendDomid: seen.frontendDomid, devid: seen.devid };
              enqueue({ type: 'spawnDevice', params: refOf(seen) });
            }
            enqueue.assign({ devices });
          }),
        },
        'bus.stop': 'stopped',
      },
    },
    // The daemon stops watching; devices are left as they are for the next daemon to resume.
    stopped: { type: 'final' },
  },
});

export type BusMachine = typeof busMachine;
