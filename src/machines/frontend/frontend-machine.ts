// A block frontend that behaves like Linux blkfront (drivers/block/xen-blkfront.c,
// blkback_changed / talk_to_blkback / blkfront_connect / blkfront_closing). The simulated
// guest runs it; it is also the frontend lifecycle to draw. Pure: the effects supply the I/O.
import { assign, fromCallback, sendTo, setup, type EventObject } from 'xstate';
import type { XenstoreRecord } from '../parsed';
import { backendMaxRingPageOrder, parseBackendDiskInfo, type BackendDiskInfo } from '../block/backend-info';
import { chooseRingPageOrder, type BlkifProtocol, type ConnectParams } from '../block/connect-params';
import type { DeviceIdentity } from '../xenbus/identity';
import { XenbusState } from '../xenbus/state';

export interface FrontendSettings {
  /** The frontend's own ring limit (Linux xen_blkif_max_ring_order). */
  readonly maxRingPageOrder: number;
  readonly protocol: BlkifProtocol;
  /** Publish feature-persistent. */
  readonly persistent: boolean;
}

export interface FrontendInput {
  readonly identity: DeviceIdentity;
  readonly settings: FrontendSettings;
}

export type FrontendErrorSource = 'ring' | 'connect' | 'disk' | 'xenstore';

export interface FrontendError {
  readonly source: FrontendErrorSource;
  readonly message: string;
}

export interface FrontendContext {
  readonly identity: DeviceIdentity;
  readonly settings: FrontendSettings;
  /** The state this frontend last wrote. */
  readonly frontendState: XenbusState;
  /** The backend state last read; null until the first observation. */
  readonly backendState: XenbusState | null;
  readonly backendKeys: XenstoreRecord;
  /** The ring this frontend published (grant refs, its event-channel port, protocol). */
  readonly ring: ConnectParams | null;
  /** The backend's disk properties once Connected. */
  readonly disk: BackendDiskInfo | null;
  readonly lastError: FrontendError | null;
}

export type FrontendEvent =
  /** The backend's `state` and its device keys (BACKEND_INFO_KEYS) as read after a watch fired. */
  | { readonly type: 'backend.changed'; readonly state: XenbusState; readonly keys: XenstoreRecord }
  | { readonly type: 'ring.ready'; readonly ring: ConnectParams }
  | { readonly type: 'ring.failed'; readonly message: string }
  | { readonly type: 'disk.failed'; readonly message: string }
  /** The guest removes the driver or shuts down. */
  | { readonly type: 'driver.unload' }
  /** The guest loads the driver again after it was unloaded. */
  | { readonly type: 'driver.load' }
  | { readonly type: 'xenstore.failed'; readonly operation: string; readonly message: string };

/** Sent to the running `disk` actor when the backend announces a new size. */
export interface DiskResized {
  readonly type: 'disk.resized';
  readonly disk: BackendDiskInfo;
}

export interface FrontendStateInput {
  readonly identity: DeviceIdentity;
  readonly state: XenbusState;
}
export interface RingInput {
  readonly identity: DeviceIdentity;
  readonly ringPageOrder: number;
  readonly protocol: BlkifProtocol;
  readonly persistent: boolean;
}
export interface DiskInput {
  readonly identity: DeviceIdentity;
  readonly ring: ConnectParams;
  readonly disk: BackendDiskInfo;
}

export const FRONTEND_ACTORS = ['writeFrontendState', 'ring', 'disk'] as const;
export type FrontendActorName = (typeof FRONTEND_ACTORS)[number];

function notProvided<TInput>(name: FrontendActorName) {
  return fromCallback<EventObject, TInput>(() => {
    throw new Error(`blkfront: actor "${name}" was not provided (use machine.provide({ actors }))`);
  });
}

type Args = { context: FrontendContext; event: FrontendEvent };

function backendStateOf({ context, event }: Args): XenbusState | null {
  return event.type === 'backend.changed' ? event.state : context.backendState;
}

function diskInfoOf({ context, event }: Args) {
  return parseBackendDiskInfo(event.type === 'backend.changed' ? event.keys : context.backendKeys);
}

const writeState = (state: XenbusState) => ({
  src: 'writeFrontendState' as const,
  input: ({ context }: { context: FrontendContext }) => ({ identity: context.identity, state }),
});

export const frontendMachine = setup({
  types: {} as { context: FrontendContext; events: FrontendEvent; input: FrontendInput },
  actors: {
    writeFrontendState: notProvided<FrontendStateInput>('writeFrontendState'),
    ring: notProvided<RingInput>('ring'),
    disk: notProvided<DiskInput>('disk'),
  },
  guards: {
    backendInitWait: (args) => backendStateOf(args) === XenbusState.InitWait,
    backendConnected: (args) => backendStateOf(args) === XenbusState.Connected,
    backendClosing: (args) => backendStateOf(args) === XenbusState.Closing,
    backendClosingOrClosed: (args) => {
      const state = backendStateOf(args);
      return state === XenbusState.Closing || state === XenbusState.Closed;
    },
    backendConnectedDiskValid: (args) => backendStateOf(args) === XenbusState.Connected && diskInfoOf(args).ok,
    backendConnectedDiskInvalid: (args) => backendStateOf(args) === XenbusState.Connected && !diskInfoOf(args).ok,
    diskSizeChanged: (args) => {
      const info = diskInfoOf(args);
      return backendStateOf(args) === XenbusState.Connected && info.ok && info.value.sectors !== args.context.disk?.sectors;
    },
  },
  actions: {
    recordBackend: assign(({ event }) => (event.type === 'backend.changed' ? { backendState: event.state, backendKeys: event.keys } : {})),
    setFrontendState: assign((_, params: { state: XenbusState }) => ({ frontendState: params.state })),
    recordRing: assign(({ event }) => (event.type === 'ring.ready' ? { ring: event.ring } : {})),
    dropRing: assign({ ring: null, disk: null }),
    takeDisk: assign((args) => {
      const info = diskInfoOf(args);
      return info.ok ? { disk: info.value } : {};
    }),
    recordDiskError: assign((args) => {
      const info = diskInfoOf(args);
      return info.ok ? {} : { lastError: { source: 'connect' as const, message: info.error.message } };
    }),
    recordFailure: assign(({ event }) => {
      switch (event.type) {
        case 'ring.failed':
          return { lastError: { source: 'ring' as const, message: event.message } };
        case 'disk.failed':
          return { lastError: { source: 'disk' as const, message: event.message } };
        case 'xenstore.failed':
          return { lastError: { source: 'xenstore' as const, message: `${event.operation}: ${event.message}` } };
        default:
          return {};
      }
    }),
    announceResize: sendTo('disk', ({ context }): DiskResized => ({ type: 'disk.resized', disk: context.disk as BackendDiskInfo })),
  },
}).createMachine({
  id: 'blkfront',
  initial: 'initialising',
  context: ({ input }) => ({
    identity: input.identity,
    settings: input.settings,
    frontendState: XenbusState.Initialising,
    backendState: null,
    backendKeys: {},
    ring: null,
    disk: null,
    lastError: null,
  }),
  on: {
    'backend.changed': { actions: 'recordBackend' },
    'xenstore.failed': { actions: 'recordFailure' },
  },
  states: {
    // Waits for the backend's InitWait (also after a driver reload, as xenbus_reset_frontend).
    initialising: {
      entry: { type: 'setFrontendState', params: { state: XenbusState.Initialising } },
      invoke: writeState(XenbusState.Initialising),
      on: {
        'backend.changed': [
          { guard: 'backendInitWait', target: 'ring', actions: 'recordBackend' },
          // A backend that skipped InitWait: set up the ring, then connect.
          { guard: 'backendConnected', target: 'ring', actions: 'recordBackend' },
          { guard: 'backendClosing', target: 'closed', actions: 'recordBackend' },
          { actions: 'recordBackend' },
        ],
        'driver.unload': 'closed',
      },
    },
    // The ring is granted and its event channel allocated for as long as this state lasts;
    // leaving it ends foreign access and closes the port (blkif_free).
    ring: {
      initial: 'allocating',
      exit: 'dropRing',
      invoke: {
        id: 'ring',
        src: 'ring',
        input: ({ context }) => ({
          identity: context.identity,
          ringPageOrder: chooseRingPageOrder(backendMaxRingPageOrder(context.backendKeys), context.settings.maxRingPageOrder),
          protocol: context.settings.protocol,
          persistent: context.settings.persistent,
        }),
      },
      on: {
        'backend.changed': [
          // blkfront_closing: the backend is going away.
          { guard: 'backendClosingOrClosed', target: 'closed', actions: 'recordBackend' },
          { actions: 'recordBackend' },
        ],
        'ring.failed': { target: 'closing', actions: 'recordFailure' },
        'driver.unload': '.closing',
      },
      states: {
        // talk_to_blkback: grant the ring, allocate the port, publish the keys.
        allocating: {
          on: {
            'ring.ready': [
              { guard: 'backendConnectedDiskValid', target: 'connected', actions: ['recordRing', 'takeDisk'] },
              { target: 'initialised', actions: 'recordRing' },
            ],
          },
        },
        initialised: {
          entry: { type: 'setFrontendState', params: { state: XenbusState.Initialised } },
          invoke: writeState(XenbusState.Initialised),
          on: {
            'backend.changed': [
              { guard: 'backendConnectedDiskValid', target: 'connected', actions: ['recordBackend', 'takeDisk'] },
              // xenbus_dev_fatal("reading backend fields"): close.
              { guard: 'backendConnectedDiskInvalid', target: '#blkfront.closing', actions: ['recordBackend', 'recordDiskError'] },
              { guard: 'backendClosingOrClosed', target: '#blkfront.closed', actions: 'recordBackend' },
              { actions: 'recordBackend' },
            ],
          },
        },
        connected: {
          entry: { type: 'setFrontendState', params: { state: XenbusState.Connected } },
          invoke: [
            writeState(XenbusState.Connected),
            {
              id: 'disk',
              src: 'disk',
              input: ({ context }) => ({
                identity: context.identity,
                ring: context.ring as ConnectParams,
                disk: context.disk as BackendDiskInfo,
              }),
            },
          ],
          on: {
            'backend.changed': [
              // The backend rewrote Connected: re-read the size (online resize).
              { guard: 'diskSizeChanged', actions: ['recordBackend', 'takeDisk', 'announceResize'] },
              { guard: 'backendClosingOrClosed', target: '#blkfront.closed', actions: 'recordBackend' },
              { actions: 'recordBackend' },
            ],
            'disk.failed': { actions: 'recordFailure' },
          },
        },
        // The guest is closing the device: in-flight requests may still complete.
        closing: {
          entry: { type: 'setFrontendState', params: { state: XenbusState.Closing } },
          invoke: writeState(XenbusState.Closing),
          on: {
            'backend.changed': [
              { guard: 'backendClosingOrClosed', target: '#blkfront.closed', actions: 'recordBackend' },
              { actions: 'recordBackend' },
            ],
            'ring.failed': { actions: 'recordFailure' },
            'driver.unload': {},
          },
        },
      },
    },
    // Closing after a fatal error, without a ring (xenbus_dev_fatal).
    closing: {
      entry: { type: 'setFrontendState', params: { state: XenbusState.Closing } },
      invoke: writeState(XenbusState.Closing),
      on: {
        'backend.changed': [
          { guard: 'backendClosingOrClosed', target: 'closed', actions: 'recordBackend' },
          { actions: 'recordBackend' },
        ],
        'driver.unload': 'closed',
      },
    },
    closed: {
      entry: { type: 'setFrontendState', params: { state: XenbusState.Closed } },
      invoke: writeState(XenbusState.Closed),
      on: {
        'driver.load': 'initialising',
      },
    },
  },
});

export type FrontendMachine = typeof frontendMachine;
