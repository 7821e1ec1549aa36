// The generic xenbus backend device (QEMU hw/xen/xen-bus.c): the backend state and `online`,
// the frontend state as observed, and the rules that move between them. A device policy (the
// block device) supplies the pure parts that differ per device class; the effects layer
// supplies every named actor. Pure: no I/O, clocks or randomness.
import { assign, fromCallback, setup, type EventObject } from 'xstate';
import type { Parsed, XenstoreRecord } from '../parsed';
import type { DeviceError, DeviceErrorSource, XenbusDeviceEvent } from './device-events';
import type { DeviceIdentity } from './identity';
import {
  frontendIsGone,
  frontendWantsConnection,
  shouldCloseUnattended,
  shouldDestroy,
  shouldReopen,
} from './rules';
import { XenbusState } from './state';

/** The pure, class-specific part of a device: how to read its options and its frontend's keys. */
export interface XenbusDevicePolicy<TSettings, TConfig, TRealized, TConnection> {
  /** Machine id; also the prefix of state ids ("#vbd.destroying"). */
  readonly id: string;
  parseConfig(options: XenstoreRecord, identity: DeviceIdentity, settings: TSettings): Parsed<TConfig>;
  parseConnection(frontendKeys: XenstoreRecord, config: TConfig, realized: TRealized): Parsed<TConnection>;
  sameConnection(a: TConnection, b: TConnection): boolean;
}

export interface XenbusDeviceInput<TSettings> {
  readonly identity: DeviceIdentity;
  /** The toolstack's device options: the backend directory minus the generic keys. */
  readonly options: XenstoreRecord;
  readonly settings: TSettings;
}

export interface XenbusDeviceContext<TConfig, TRealized, TConnection> {
  readonly identity: DeviceIdentity;
  readonly config: TConfig | null;
  /** What realize reported (for a block device: the opened image). */
  readonly realized: TRealized | null;
  /** The state this backend last set or adopted (QEMU's xendev->backend_state). */
  readonly backendState: XenbusState;
  /** The state last handed to writeBackendState, or adopted from xenstore; a write is due when it differs. */
  readonly publishedState: XenbusState;
  /** The backend `state` value last read from xenstore. */
  readonly observedBackendState: XenbusState;
  readonly online: boolean;
  /** The frontend state last read; null until the first observation. */
  readonly frontendState: XenbusState | null;
  readonly frontendKeys: XenstoreRecord;
  /** The frontend's parsed transport parameters while a connection is attached. */
  readonly connection: TConnection | null;
  /** Backend keys published by device.update (e.g. sectors after a resize). */
  readonly published: XenstoreRecord;
  readonly lastError: DeviceError | null;
}

// Inputs of the named actors the effects layer provides.
export interface RealizeInput<TConfig> {
  readonly identity: DeviceIdentity;
  readonly config: TConfig;
}
export interface ConnectionInput<TConfig, TRealized, TConnection> {
  readonly identity: DeviceIdentity;
  readonly config: TConfig;
  readonly realized: TRealized;
  readonly connection: TConnection;
}
export interface BackendStateInput {
  readonly identity: DeviceIdentity;
  readonly state: XenbusState;
}
export interface FailureInput {
  readonly identity: DeviceIdentity;
  readonly message: string;
}
export interface UpdateInput {
  readonly identity: DeviceIdentity;
  readonly keys: XenstoreRecord;
}
export interface IdentityInput {
  readonly identity: DeviceIdentity;
}

/** The named actors of a device machine; each placeholder fails loudly until provided. */
export const XENBUS_DEVICE_ACTORS = [
  'realize',
  'connection',
  'writeBackendState',
  'reportFailure',
  'publishUpdate',
  'unplug',
  'destroy',
] as const;
export type XenbusDeviceActorName = (typeof XENBUS_DEVICE_ACTORS)[number];

function notProvided<TInput>(machineId: string, name: XenbusDeviceActorName) {
  return fromCallback<EventObject, TInput>(() => {
    throw new Error(`${machineId} device: actor "${name}" was not provided (use machine.provide({ actors }))`);
  });
}

/** Builds the device machine of one device class. */
export function createXenbusDeviceMachine<TSettings, TConfig, TRealized, TConnection>(
  policy: XenbusDevicePolicy<TSettings, TConfig, TRealized, TConnection>,
) {
  type Context = XenbusDeviceContext<TConfig, TRealized, TConnection>;
  type Event = XenbusDeviceEvent<TRealized>;
  type Args = { context: Context; event: Event };
  const id = policy.id;
  const ref = (path: string) => `#${id}.${path}`;

  const error = (source: DeviceErrorSource, message: string): DeviceError => ({ source, message });

  /** Parses the frontend's keys against the realized device; null when not realized yet. */
  function tryConnect(context: Context, keys: XenstoreRecord, realized: TRealized | null): Parsed<TConnection> | null {
    if (context.config === null || realized === null) return null;
    return policy.parseConnection(keys, context.config, realized);
  }

  function frontendOf({ context, event }: Args): { state: XenbusState | null; keys: XenstoreRecord } {
    return event.type === 'frontend.changed'
      ? { state: event.state, keys: event.keys }
      : { state: context.frontendState, keys: context.frontendKeys };
  }

  function realizedOf({ context, event }: Args): TRealized | null {
    return event.type === 'realize.done' ? event.realized : context.realized;
  }

  function connectResult(args: Args): Parsed<TConnection> | null {
    const frontend = frontendOf(args);
    if (!frontendWantsConnection(frontend.state)) return null;
    return tryConnect(args.context, frontend.keys, realizedOf(args));
  }

  function backendOf({ context, event }: Args): { state: XenbusState; online: boolean } {
    return event.type === 'backend.changed'
      ? { state: event.state, online: event.online }
      : { state: context.observedBackendState, online: context.online };
  }

  return setup({
    types: {} as {
      context: Context;
      events: Event;
      input: XenbusDeviceInput<TSettings>;
    },
    actors: {
      realize: notProvided<RealizeInput<TConfig>>(id, 'realize'),
      connection: notProvided<ConnectionInput<TConfig, TRealized, TConnection>>(id, 'connection'),
      writeBackendState: notProvided<BackendStateInput>(id, 'writeBackendState'),
      reportFailure: notProvided<FailureInput>(id, 'reportFailure'),
      publishUpdate: notProvided<UpdateInput>(id, 'publishUpdate'),
      unplug: notProvided<IdentityInput>(id, 'unplug'),
      destroy: notProvided<IdentityInput>(id, 'destroy'),
    },
    guards: {
      hasConfig: ({ context }) => context.config !== null,
      // Backend observations (QEMU xen_device_backend_changed).
      shouldDestroy: (args) => {
        const backend = backendOf(args);
        return shouldDestroy(backend.online, backend.state);
      },
      shouldDestroyFailed: (args) => {
        const backend = backendOf(args);
        return !backend.online && (backend.state === XenbusState.Closing || shouldDestroy(false, backend.state));
      },
      shouldCloseUnattended: (args) => shouldCloseUnattended(backendOf(args).state, args.context.frontendState),
      toolstackSetClosing: (args) =>
        backendOf(args).state === XenbusState.Closing && args.context.backendState !== XenbusState.Closing,
      toolstackSetClosed: (args) =>
        backendOf(args).state === XenbusState.Closed && args.context.backendState !== XenbusState.Closed,
      backendReopens: (args) =>
        args.context.realized !== null &&
        shouldReopen(args.context.backendState, backendOf(args).online, args.context.frontendState),
      // Frontend observations (xen_device_frontend_changed, xen_block_frontend_changed).
      frontendReopens: (args) =>
        realizedOf(args) !== null && shouldReopen(args.context.backendState, args.context.online, frontendOf(args).state),
      frontendConnects: (args) => connectResult(args)?.ok === true,
      frontendConnectsInvalid: (args) => connectResult(args)?.ok === false,
      frontendReconnectsSame: (args) => {
        const result = connectResult(args);
        const current = args.context.connection;
        return result?.ok === true && current !== null && policy.sameConnection(result.value, current);
      },
      frontendClosing: (args) => frontendOf(args).state === XenbusState.Closing,
      frontendGone: (args) => frontendIsGone(frontendOf(args).state),
      // After realize, a frontend still missing is expected: realize creates it.
      storedFrontendGone: ({ context }) => context.frontendState === XenbusState.Closed,
      wasInitWait: ({ context }) => context.backendState === XenbusState.InitWait,
      wasClosing: ({ context }) => context.backendState === XenbusState.Closing,
      wasClosed: ({ context }) => context.backendState === XenbusState.Closed,
      isRealized: ({ context }) => context.realized !== null,
      stateUnpublished: ({ context }) => context.backendState !== context.publishedState,
    },
    actions: {
      recordBackend: assign(({ event }) =>
        event.type === 'backend.changed' ? { observedBackendState: event.state, online: event.online } : {},
      ),
      recordFrontend: assign(({ event }) =>
        event.type === 'frontend.changed' ? { frontendState: event.state, frontendKeys: event.keys } : {},
      ),
      recordRealized: assign(({ event }) => (event.type === 'realize.done' ? { realized: event.realized } : {})),
      takeConnection: assign((args) => {
        const result = connectResult(args);
        return result?.ok === true ? { connection: result.value } : {};
      }),
      recordConnectError: assign((args) => {
        const result = connectResult(args);
        return result?.ok === false ? { lastError: error('connect', result.error.message) } : {};
      }),
      dropConnection: assign({ connection: null }),
      setBackendState: assign((_, params: { state: XenbusState }) => ({ backendState: params.state })),
      // The toolstack wrote this state itself: hold it without writing it back.
      adoptBackendState: assign(({ event }) =>
        event.type === 'backend.changed' ? { backendState: event.state, publishedState: event.state } : {},
      ),
      markPublished: assign(({ context }) => ({ publishedState: context.backendState })),
      recordFailure: assign(({ event }) => {
        switch (event.type) {
          case 'realize.failed':
            return { lastError: error('realize', event.message) };
          case 'connection.failed':
            return { lastError: error('dataplane', event.message) };
          case 'update.failed':
            return { lastError: error('update', event.message) };
          case 'unplug.failed':
            return { lastError: error('unplug', event.message) };
          case 'destroy.failed':
            return { lastError: error('destroy', event.message) };
          case 'xenstore.failed':
            return { lastError: error('xenstore', `${event.operation}: ${event.message}`) };
          default:
            return {};
        }
      }),
      recordUpdate: assign(({ context, event }) => {
        if (event.type !== 'device.update') return {};
        return {
          published: { ...context.published, ...event.keys },
          realized: event.realized ?? context.realized,
        };
      }),
    },
  }).createMachine({
    id,
    initial: 'active',
    context: ({ input }) => {
      const config = policy.parseConfig(input.options, input.identity, input.settings);
      return {
        identity: input.identity,
        config: config.ok ? config.value : null,
        realized: null,
        backendState: XenbusState.Initialising,
        publishedState: XenbusState.Initialising,
        observedBackendState: XenbusState.Initialising,
        online: true,
        frontendState: null,
        frontendKeys: {},
        connection: null,
        published: {},
        lastError: config.ok ? null : error('config', config.error.message),
      };
    },
    on: {
      'xenstore.failed': { actions: 'recordFailure' },
    },
    states: {
      active: {
        type: 'parallel',
        states: {
          lifecycle: {
            initial: 'validating',
            on: {
              // Fallbacks for every lifecycle state that has no more specific rule.
              'backend.changed': [
                { guard: 'shouldDestroy', target: ref('destroying'), actions: 'recordBackend' },
                { guard: 'shouldCloseUnattended', target: '.closed', actions: ['recordBackend', 'adoptBackendState'] },
                { guard: 'toolstackSetClosing', target: '.closing', actions: ['recordBackend', 'adoptBackendState'] },
                { guard: 'toolstackSetClosed', target: '.closed', actions: ['recordBackend', 'adoptBackendState'] },
                { guard: 'backendReopens', target: '.initWait', actions: 'recordBackend' },
                { actions: 'recordBackend' },
              ],
              'frontend.changed': { actions: 'recordFrontend' },
            },
            states: {
              validating: {
                always: [{ guard: 'hasConfig', target: 'realizing' }, { target: 'failed' }],
              },
              realizing: {
                invoke: {
                  src: 'realize',
                  input: ({ context }) => ({ identity: context.identity, config: context.config as TConfig }),
                },
                on: {
                  // The frontend may have moved while realize ran; act on what was last seen.
                  'realize.done': [
                    { guard: 'frontendConnects', target: 'attached', actions: ['recordRealized', 'takeConnection'] },
                    { guard: 'frontendConnectsInvalid', target: 'initWait', actions: ['recordRealized', 'recordConnectError'] },
                    { guard: 'frontendClosing', target: 'closing', actions: 'recordRealized' },
                    { guard: 'storedFrontendGone', target: 'closed', actions: 'recordRealized' },
                    { target: 'initWait', actions: 'recordRealized' },
                  ],
                  'realize.failed': { target: 'failed', actions: 'recordFailure' },
                },
              },
              initWait: {
                entry: { type: 'setBackendState', params: { state: XenbusState.InitWait } },
                on: {
                  'frontend.changed': [
                    { guard: 'frontendConnects', target: 'attached', actions: ['recordFrontend', 'takeConnection'] },
                    { guard: 'frontendConnectsInvalid', actions: ['recordFrontend', 'recordConnectError'] },
                    { guard: 'frontendClosing', target: 'closing', actions: 'recordFrontend' },
                    { guard: 'frontendGone', target: 'closed', actions: 'recordFrontend' },
                    { actions: 'recordFrontend' },
                  ],
                },
              },
              attached: {
                // The connection (ring mapped, event channel bound, dataplane running) lives as
                // long as this state: leaving it is the disconnect; a restored machine restarts it.
                initial: 'connecting',
                exit: 'dropConnection',
                invoke: {
                  src: 'connection',
                  input: ({ context }) => ({
                    identity: context.identity,
                    config: context.config as TConfig,
                    realized: context.realized as TRealized,
                    connection: context.connection as TConnection,
                  }),
                },
                on: {
                  'backend.changed': [
                    { guard: 'shouldDestroy', target: ref('destroying'), actions: 'recordBackend' },
                    { guard: 'shouldCloseUnattended', target: 'closed', actions: ['recordBackend', 'adoptBackendState'] },
                    { guard: 'toolstackSetClosing', target: '.closing', actions: ['recordBackend', 'adoptBackendState'] },
                    { guard: 'toolstackSetClosed', target: 'closed', actions: ['recordBackend', 'adoptBackendState'] },
                    { actions: 'recordBackend' },
                  ],
                },
                states: {
                  connecting: {
                    on: {
                      'connection.ready': 'connected',
                      'connection.failed': [
                        { guard: 'wasClosing', target: ref('active.lifecycle.closing'), actions: 'recordFailure' },
                        { guard: 'wasClosed', target: ref('active.lifecycle.closed'), actions: 'recordFailure' },
                        { target: ref('active.lifecycle.initWait'), actions: 'recordFailure' },
                      ],
                      'frontend.changed': [
                        { guard: 'frontendReconnectsSame', actions: 'recordFrontend' },
                        { guard: 'frontendConnects', target: ref('active.lifecycle.reconnecting'), actions: ['recordFrontend', 'takeConnection'] },
                        {
                          guard: 'frontendConnectsInvalid',
                          target: ref('active.lifecycle.disconnected'),
                          actions: ['recordFrontend', 'recordConnectError'],
                        },
                        { guard: 'frontendClosing', target: 'closing', actions: 'recordFrontend' },
                        { guard: 'frontendGone', target: ref('active.lifecycle.closed'), actions: 'recordFrontend' },
                        { actions: 'recordFrontend' },
                      ],
                    },
                  },
                  connected: {
                    entry: { type: 'setBackendState', params: { state: XenbusState.Connected } },
                    on: {
                      // After a restart the connection actor reports ready again: nothing to do.
                      'connection.ready': {},
                      'connection.failed': { target: ref('active.lifecycle.closing'), actions: 'recordFailure' },
                      'frontend.changed': [
                        { guard: 'frontendClosing', target: 'closing', actions: 'recordFrontend' },
                        { guard: 'frontendGone', target: ref('active.lifecycle.closed'), actions: 'recordFrontend' },
                        { actions: 'recordFrontend' },
                      ],
                    },
                  },
                  closing: {
                    // Closing with the ring still served: the frontend may have requests in flight.
                    entry: { type: 'setBackendState', params: { state: XenbusState.Closing } },
                    on: {
                      'connection.ready': {},
                      'connection.failed': { target: ref('active.lifecycle.closing'), actions: 'recordFailure' },
                      'frontend.changed': [
                        { guard: 'frontendConnects', target: ref('active.lifecycle.reconnecting'), actions: ['recordFrontend', 'takeConnection'] },
                        {
                          guard: 'frontendConnectsInvalid',
                          target: ref('active.lifecycle.closing'),
                          actions: ['recordFrontend', 'recordConnectError'],
                        },
                        { guard: 'frontendGone', target: ref('active.lifecycle.closed'), actions: 'recordFrontend' },
                        { actions: 'recordFrontend' },
                      ],
                    },
                  },
                },
              },
              // Disconnect then connect again with the new parameters (a fresh connection actor).
              reconnecting: {
                always: 'attached',
              },
              // A connect attempt failed after the old connection was dropped: back to the
              // backend state held before it.
              disconnected: {
                always: [
                  { guard: 'wasClosing', target: 'closing' },
                  { guard: 'wasClosed', target: 'closed' },
                  { target: 'initWait' },
                ],
              },
              closing: {
                entry: { type: 'setBackendState', params: { state: XenbusState.Closing } },
                on: {
                  'frontend.changed': [
                    { guard: 'frontendConnects', target: 'attached', actions: ['recordFrontend', 'takeConnection'] },
                    { guard: 'frontendConnectsInvalid', actions: ['recordFrontend', 'recordConnectError'] },
                    { guard: 'frontendGone', target: 'closed', actions: 'recordFrontend' },
                    { actions: 'recordFrontend' },
                  ],
                },
              },
              closed: {
                entry: { type: 'setBackendState', params: { state: XenbusState.Closed } },
                on: {
                  'frontend.changed': [
                    { guard: 'frontendReopens', target: 'initWait', actions: 'recordFrontend' },
                    { guard: 'frontendConnects', target: 'attached', actions: ['recordFrontend', 'takeConnection'] },
                    { guard: 'frontendConnectsInvalid', actions: ['recordFrontend', 'recordConnectError'] },
                    { guard: 'frontendClosing', target: 'closing', actions: 'recordFrontend' },
                    { actions: 'recordFrontend' },
                  ],
                },
              },
              // Configuration or realize failed: report it and wait for the toolstack to remove
              // the device. The frontend is not served.
              failed: {
                invoke: {
                  src: 'reportFailure',
                  input: ({ context }) => ({ identity: context.identity, message: context.lastError?.message ?? 'failed' }),
                },
                on: {
                  'backend.changed': [
                    { guard: 'shouldDestroyFailed', target: ref('destroying'), actions: 'recordBackend' },
                    { actions: 'recordBackend' },
                  ],
                },
              },
            },
          },
          // Writes the backend state whenever the one this backend holds changes, and only then
          // (QEMU's xen_device_backend_set_state). A restored machine rewrites the last one,
          // which the writer skips when xenstore already holds it.
          stateWriter: {
            initial: 'idle',
            states: {
              idle: {
                always: { guard: 'stateUnpublished', target: 'writing', actions: 'markPublished' },
              },
              writing: {
                always: { guard: 'stateUnpublished', target: 'writing', reenter: true, actions: 'markPublished' },
                invoke: {
                  src: 'writeBackendState',
                  input: ({ context }) => ({ identity: context.identity, state: context.backendState }),
                },
              },
            },
          },
          unplug: {
            initial: 'idle',
            states: {
              idle: { on: { 'device.unplug': 'requested' } },
              // The toolstack's unplug: online=0 and state=Closing in one transaction.
              requested: {
                invoke: { src: 'unplug', input: ({ context }) => ({ identity: context.identity }) },
                on: {
                  'unplug.done': 'sent',
                  'unplug.failed': { target: 'idle', actions: 'recordFailure' },
                },
              },
              sent: { on: { 'device.unplug': 'requested' } },
            },
          },
          update: {
            initial: 'idle',
            states: {
              idle: {
                on: { 'device.update': { guard: 'isRealized', target: 'publishing', actions: 'recordUpdate' } },
              },
              // Writes the published keys and rewrites `state` so the frontend re-reads them.
              publishing: {
                invoke: { src: 'publishUpdate', input: ({ context }) => ({ identity: context.identity, keys: context.published }) },
                on: {
                  'device.update': { target: 'publishing', reenter: true, actions: 'recordUpdate' },
                  'update.done': 'idle',
                  'update.failed': { target: 'idle', actions: 'recordFailure' },
                },
              },
            },
          },
        },
      },
      // Remove the backend and frontend nodes; the dataplane stopped when `active` was left.
      destroying: {
        invoke: { src: 'destroy', input: ({ context }) => ({ identity: context.identity }) },
        on: {
          'destroy.done': 'destroyed',
          'destroy.failed': { target: 'destroyed', actions: 'recordFailure' },
        },
      },
      destroyed: { type: 'final' },
    },
  });
}

export type XenbusDeviceMachine<TSettings, TConfig, TRealized, TConnection> = ReturnType<
  typeof createXenbusDeviceMachine<TSettings, TConfig, TRealized, TConnection>
>;
