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
  backendKeysForRealize,
  discardOffered,
  frontendKeysForRealize,
  isReadOnly,
  xenbusRealizeKeys,
} from '../machines';
import type { Dataplane, DataplaneFactory, DataPathMode } from './dataplane-port';
import type { ImageRegistry } from './images';
import { messageOf, removeIfPresent, writeKeys } from './xenstore';

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
}

type Send = (event: BlockDeviceEvent) => void;

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

  /** An async job whose outcome is sent back only while the invocation is alive. */
  function job<TInput>(work: (input: TInput, send: Send, alive: () => boolean) => Promise<void>, onStop?: (input: TInput) => void) {
    return fromCallback<EventObject, TInput>(({ input, sendBack }) => {
      let alive = true;
      const send: Send = (e) => {
        if (alive) sendBack(e);
      };
      work(input, send, () => alive).catch((err) => logger.error({ err }, 'device effect failed'));
      return () => {
        alive = false;
        onStop?.(input);
      };
    });
  }

  const imageOf = (config: BlockDeviceConfig, key: string) =>
    images.get(key, config.path, { readOnly: config.readOnly, direct: config.directIoSafe || undefined });

  const realize = job<RealizeInput<BlockDeviceConfig>>(async ({ identity, config }, send) => {
    let realized: BlockRealized;
    try {
      const image = await imageOf(config, identity.backendPath);
      const info = {
        sizeBytes: image.sizeBytes,
        sectorSize: image.sectorSize,
        physicalSectorSize: image.physicalSectorSize,
        readOnly: image.readOnly,
        discardSupport: image.discardSupport,
      };
      const generic = xenbusRealizeKeys(identity);
      await xs.transaction(async (tx) => {
        await writeKeys(tx, identity.backendPath, { ...generic.backend, ...backendKeysForRealize(info, config) });
        if ((await tx.tryRead(`${identity.frontendPath}/state`)) === undefined) {
          await writeKeys(tx, identity.frontendPath, generic.frontendIfMissing);
        }
        await writeKeys(tx, identity.frontendPath, frontendKeysForRealize(config.vdev, config.deviceType));
      });
      realized = { image: info };
    } catch (err) {
      send({ type: 'realize.failed', message: messageOf(err) });
      return;
    }
    send({ type: 'realize.done', realized });
  });

  const writeBackendState = job<BackendStateInput>(async ({ identity, state }, send) => {
    await writes.run(identity.backendPath, async () => {
      try {
        const path = `${identity.backendPath}/state`;
        // Writing a state that is already set does nothing (and fires no watch).
        if ((await xs.tryRead(path)) !== String(state)) await xs.write(path, String(state));
      } catch (err) {
        send({ type: 'xenstore.failed', operation: `write state ${state}`, message: messageOf(err) });
      }
    });
  });

  const connection = job<ConnectionInput<BlockDeviceConfig, BlockRealized, ConnectParams>>(
    async ({ identity, config, realized, connection: params }, send, alive) => {
      const key = identity.backendPath;
      await teardowns.get(key);
      if (!alive()) return;
      let dataplane: Dataplane;
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
            maxIndirectSegments: config.settings.maxIndirectSegments,
            persistent: config.settings.featurePersistent,
            dataPath: deps.dataPath ?? 'auto',
          },
        });
      } catch (err) {
        send({ type: 'connection.failed', message: messageOf(err) });
        return;
      }
      running.set(key, dataplane);
      if (!alive()) {
        stopDataplane(key);
        return;
      }
      send({ type: 'connection.ready' });
    },
    ({ identity }) => stopDataplane(identity.backendPath),
  );

  const running = new Map<string, Dataplane>();
  function stopDataplane(key: string): void {
    const dataplane = running.get(key);
    if (!dataplane) return;
    running.delete(key);
    const done = dataplane.stop().catch((err) => logger.error({ err, device: key }, 'dataplane stop failed'));
    teardowns.set(key, done);
    void done.then(() => {
      if (teardowns.get(key) === done) teardowns.delete(key);
    });
  }

  const reportFailure = job<FailureInput>(async ({ identity, message }) => {
    await writes.run(identity.backendPath, async () => {
      try {
        await writeKeys(xs, identity.backendPath, { 'hotplug-status': 'error', 'hotplug-error': message });
      } catch (err) {
        logger.warn({ err, device: identity.backendPath }, 'could not report the failure in xenstore');
      }
    });
  });

  const publishUpdate = job<UpdateInput>(async ({ identity, keys }, send) => {
    try {
      await xs.transaction(async (tx) => {
        await writeKeys(tx, identity.backendPath, keys);
        const state = await tx.tryRead(`${identity.backendPath}/state`);
        // Rewriting the state makes the frontend look again (blkback xen_vbd_resize).
        if (state !== undefined) await tx.write(`${identity.backendPath}/state`, state);
      });
    } catch (err) {
      send({ type: 'update.failed', message: messageOf(err) });
      return;
    }
    send({ type: 'update.done' });
  });

  const unplug = job<IdentityInput>(async ({ identity }, send) => {
    try {
      await xs.transaction(async (tx) => {
        await tx.write(`${identity.backendPath}/online`, '0');
        await tx.write(`${identity.backendPath}/state`, '5');
      });
    } catch (err) {
      send({ type: 'unplug.failed', message: messageOf(err) });
      return;
    }
    send({ type: 'unplug.done' });
  });

  const destroy = job<IdentityInput>(async ({ identity }, send) => {
    try {
      await teardowns.get(identity.backendPath);
      await images.close(identity.backendPath);
      await removeIfPresent(xs, identity.frontendPath);
      await removeIfPresent(xs, identity.backendPath);
    } catch (err) {
      send({ type: 'destroy.failed', message: messageOf(err) });
      return;
    }
    send({ type: 'destroy.done' });
  });

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
