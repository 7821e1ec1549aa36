// The named actors of the block device machine (src/machines/block): what realize, connect,
// disconnect, unplug and destroy do to xenstore, the image and the ring. Each checks what already
// exists, because a restored machine starts the invocations of its current states again.
import { type EventObject, fromCallback } from 'xstate';
import type { EventChannel, GrantTable } from '../io/ports';
import type { XenStore } from '../io/xs/client';
import type { Logger } from '../log';
import {
  type BackendStateInput,
  type BlockDeviceConfig,
  type BlockDeviceEvent,
  type BlockRealized,
  type ConnectParams,
  type ConnectionInput,
  type FailureInput,
  type IdentityInput,
  type RealizeInput,
  type UpdateInput,
  type DeviceIdentity,
  deviceKey,
  discardOffered,
  indirectSegmentsOffered,
  isReadOnly,
  resizeEvent,
} from '../machines';
import { applyXenstoreIntents } from './apply-intents';
import type { Dataplane, DataplaneFactory, DataPathMode } from './dataplane-port';
import { DataplaneError } from './dataplane/errors';
import type { ImageRegistry } from './images';
import {
  type Intent,
  type IntentSink,
  backendStateIntents,
  connectIntents,
  destroyIntents,
  disconnectIntents,
  failureIntents,
  realizeIntents,
  unplugIntents,
  updateIntents,
} from './intents';
import { messageOf } from './xenstore';

/** A device whose journal cannot be created retries at most this far apart. */
const JOURNAL_RETRY_MAX_MS = 5000;

export interface BlockEffectsDeps {
  readonly xs: XenStore;
  readonly images: ImageRegistry;
  readonly startDataplane: DataplaneFactory;
  readonly gnttab: GrantTable;
  readonly evtchn: EventChannel;
  readonly stateDir: string;
  readonly logger: Logger;
  /** How guest data moves (default: the measured default). */
  readonly dataPath?: DataPathMode;
  /** Told what each effect asks of the world (session recording). */
  readonly intents?: IntentSink;
  /** Resolves once the device's applied events are persisted (the engine's durable). */
  readonly durable?: (identity: DeviceIdentity) => Promise<void>;
}

/** Sends an outcome back, reporting first the intents the effect carried out to produce it. */
type Send = (event: BlockDeviceEvent, intents?: readonly Intent[]) => void;

/** Runs fn in order after the previous call with the same key (one device's writes in order). */
class KeyedQueue {
  private readonly tails = new Map<string, Promise<unknown>>();
  run<T>(key: string, fn: () => Promise<T>): Promise<T> {
    const next = (this.tails.get(key) ?? Promise.resolve()).then(fn, fn);
    const tail = next.catch(() => undefined);
    this.tails.set(key, tail);
    void tail.then(() => {
      if (this.tails.get(key) === tail) this.tails.delete(key);
    });
    return next;
  }
}

export function blockDeviceEffects(deps: BlockEffectsDeps) {
  const { xs, images, logger } = deps;
  const writes = new KeyedQueue();
  const teardowns = new Map<string, Promise<void>>();

  function report(identity: DeviceIdentity, intents: readonly Intent[] | void): void {
    if (intents && deps.intents?.recording) deps.intents.intents('vbd', deviceKey(identity.frontendDomid, identity.devid), intents);
  }

  /**
   * An async job whose outcome is sent back only while the invocation is alive. `asks` lists
   * the intents of the invocation (reported when it starts); `onStop` may list those of its stop.
   */
  function job<TInput extends { identity: DeviceIdentity }>(
    work: (input: TInput, send: Send, alive: () => boolean) => Promise<void>,
    asks?: (input: TInput) => Intent[],
    onStop?: (input: TInput) => Intent[] | void,
  ) {
    return fromCallback<EventObject, TInput>(({ input, sendBack }) => {
      let alive = true;
      const send: Send = (e, intents) => {
        if (!alive) return;
        report(input.identity, intents);
        sendBack(e);
      };
      report(input.identity, asks?.(input));
      work(input, send, () => alive).catch((err) => logger.error({ err }, 'device effect failed'));
      return () => {
        alive = false;
        report(input.identity, onStop?.(input));
      };
    });
  }

  const imageOf = (config: BlockDeviceConfig, key: string) =>
    images.get(key, config.path, { readOnly: config.readOnly, direct: config.directIoSafe || undefined });

  // The realize keys depend on the opened image: they are reported with realize.done.
  const realize = job<RealizeInput<BlockDeviceConfig>>(async ({ identity, config }, send) => {
    let realized: BlockRealized;
    let intents: Intent[];
    try {
      const image = await imageOf(config, identity.backendPath);
      const info = {
        sizeBytes: image.sizeBytes,
        sectorSize: image.sectorSize,
        physicalSectorSize: image.physicalSectorSize,
        readOnly: image.readOnly,
        discardSupport: image.discardSupport,
        ...(image.capabilities && image.capabilities.maxTransferBytes < Number.MAX_SAFE_INTEGER
          ? { maxTransferBytes: image.capabilities.maxTransferBytes }
          : {}),
      };
      intents = realizeIntents(identity, config, info);
      await xs.transaction((tx) => applyXenstoreIntents(tx, intents));
      realized = { image: info };
    } catch (err) {
      send({ type: 'realize.failed', message: messageOf(err) });
      return;
    }
    send({ type: 'realize.done', realized }, intents);
  });

  const writeBackendState = job<BackendStateInput>(
    async ({ identity, state }, send) => {
      const [intent] = backendStateIntents(identity, state) as [Extract<Intent, { op: 'write' }>];
      await writes.run(identity.backendPath, async () => {
        try {
          // Persist, then show: the event that chose this state is stored before xenstore has it.
          await deps.durable?.(identity);
          // Writing a state that is already set does nothing (and fires no watch).
          if ((await xs.tryRead(intent.path)) !== intent.value) await xs.write(intent.path, intent.value);
        } catch (err) {
          send({ type: 'xenstore.failed', operation: `write state ${state}`, message: messageOf(err) });
        }
      });
    },
    ({ identity, state }) => backendStateIntents(identity, state),
  );

  const connection = job<ConnectionInput<BlockDeviceConfig, BlockRealized, ConnectParams>>(
    async ({ identity, config, realized, connection: params }, send, alive) => {
      const key = identity.backendPath;
      await teardowns.get(key);
      if (!alive()) return;
      let dataplane: Dataplane;
      // A journal the state folder cannot hold (full, read-only...) is the host's problem, not the
      // device's: the device waits, logged, and connects once the folder takes the file.
      let loggedAt = -Infinity;
      for (let attempt = 0; ; attempt++) {
        try {
          const image = await imageOf(config, key);
          if (!alive()) return;
          dataplane = await deps.startDataplane({
            identity,
            params,
            image,
            readOnly: isReadOnly(realized.image, config),
            gnttab: deps.gnttab,
            evtchn: deps.evtchn,
            stateDir: deps.stateDir,
            logger: logger.child({ device: key }),
            onFatal: (err) => send({ type: 'connection.failed', message: err.message }),
            // What realize advertised; the dataplane refuses what was not offered.
            features: {
              barrier: config.settings.featureBarrier,
              discard: discardOffered(realized.image, config),
              maxIndirectSegments: indirectSegmentsOffered(realized.image, config),
              persistent: config.settings.featurePersistent,
              dataPath: deps.dataPath ?? 'auto',
            },
          });
          if (attempt > 0) logger.info({ device: key, attempts: attempt + 1 }, 'publication journal writable again: connecting');
          break;
        } catch (err) {
          if (!(err instanceof DataplaneError && err.reason === 'journal')) {
            send({ type: 'connection.failed', message: messageOf(err) });
            return;
          }
          const waitMs = Math.min(JOURNAL_RETRY_MAX_MS, 250 << Math.min(attempt, 6));
          // The first failure, then one line a minute at most.
          if (Date.now() - loggedAt >= 60_000) {
            loggedAt = Date.now();
            logger.error({ device: key, code: err.code, attempts: attempt + 1 }, `${err.message}: the device waits, retrying every ${JOURNAL_RETRY_MAX_MS / 1000} s at most`);
          }
          await new Promise((r) => setTimeout(r, waitMs));
          if (!alive()) return;
        }
      }
      running.set(key, dataplane);
      if (!alive()) {
        stopDataplane(key);
        return;
      }
      // Storage that says it grew (rbd's update watch): the ring takes the new size first, then
      // the guest is told (the xenbus resize convention: sectors, then state rewritten).
      const image = await imageOf(config, key);
      const unsubscribe = image.onResize?.((sizeBytes) => {
        if (!alive()) return;
        logger.info({ device: key, sizeBytes }, 'the image changed size: resizing the disk online');
        dataplane.resized?.(sizeBytes);
        send(resizeEvent(realized, sizeBytes));
      });
      if (unsubscribe) resizeWatches.set(key, unsubscribe);
      send({ type: 'connection.ready' });
    },
    ({ identity, connection: params }) => connectIntents(identity, params),
    ({ identity, connection: params }) => {
      stopDataplane(identity.backendPath);
      return disconnectIntents(identity, params);
    },
  );

  const running = new Map<string, Dataplane>();
  const resizeWatches = new Map<string, () => void>();
  function stopDataplane(key: string): void {
    resizeWatches.get(key)?.();
    resizeWatches.delete(key);
    const dataplane = running.get(key);
    if (!dataplane) return;
    running.delete(key);
    const done = dataplane.stop().catch((err) => logger.error({ err, device: key }, 'dataplane stop failed'));
    teardowns.set(key, done);
    void done.then(() => {
      if (teardowns.get(key) === done) teardowns.delete(key);
    });
  }

  const reportFailure = job<FailureInput>(
    async ({ identity, message }) => {
      await writes.run(identity.backendPath, async () => {
        try {
          await applyXenstoreIntents(xs, failureIntents(identity, message));
        } catch (err) {
          logger.warn({ err, device: identity.backendPath }, 'could not report the failure in xenstore');
        }
      });
    },
    ({ identity, message }) => failureIntents(identity, message),
  );

  // Rewriting the state makes the frontend look again (blkback xen_vbd_resize).
  const publishUpdate = job<UpdateInput>(
    async ({ identity, keys }, send) => {
      try {
        await xs.transaction((tx) => applyXenstoreIntents(tx, updateIntents(identity, keys)));
      } catch (err) {
        send({ type: 'update.failed', message: messageOf(err) });
        return;
      }
      send({ type: 'update.done' });
    },
    ({ identity, keys }) => updateIntents(identity, keys),
  );

  const unplug = job<IdentityInput>(
    async ({ identity }, send) => {
      try {
        await xs.transaction((tx) => applyXenstoreIntents(tx, unplugIntents(identity)));
      } catch (err) {
        send({ type: 'unplug.failed', message: messageOf(err) });
        return;
      }
      send({ type: 'unplug.done' });
    },
    ({ identity }) => unplugIntents(identity),
  );

  const destroy = job<IdentityInput>(
    async ({ identity }, send) => {
      try {
        await teardowns.get(identity.backendPath);
        await images.retire(identity.backendPath);
        await applyXenstoreIntents(xs, destroyIntents(identity));
      } catch (err) {
        send({ type: 'destroy.failed', message: messageOf(err) });
        return;
      }
      send({ type: 'destroy.done' });
    },
    ({ identity }) => destroyIntents(identity),
  );

  return {
    actors: { realize, writeBackendState, connection, reportFailure, publishUpdate, unplug, destroy },
    /** The running dataplane of a device (its counters), if connected in this process. */
    dataplaneOf(backendPath: string): Dataplane | undefined {
      return running.get(backendPath);
    },
    /** Waits for every dataplane teardown started so far. */
    async quiesce(): Promise<void> {
      for (const key of [...running.keys()]) stopDataplane(key);
      await Promise.all([...teardowns.values()]);
    },
  };
}
