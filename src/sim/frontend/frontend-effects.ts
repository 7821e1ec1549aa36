// The named actors of the blkfront machine for a simulated guest: its xenstore writes and its
// block queue (ring pages granted to the backend, an unbound event-channel port).
import { type EventObject, fromCallback } from 'xstate';
import type { XenStore } from '../../io/xs/client';
import type { Logger } from '../../log';
import type { DiskInput, FrontendEvent, FrontendStateInput, RingInput } from '../../machines';
import { messageOf } from '../../effects/xenstore';
import { applyXenstoreIntents } from '../../effects/apply-intents';
import { type Intent, type IntentSink, diskIntents, frontendStateIntents, ringIntents } from '../../effects/intents';
import { deviceKey, type DeviceIdentity } from '../../machines';
import type { SimDomain } from '../domain';
import type { GuestQueue, GuestQueueFactory } from './guest-queue';

export interface FrontendEffectsDeps {
  readonly xs: XenStore;
  readonly domain: SimDomain;
  readonly queueFactory: GuestQueueFactory;
  readonly logger: Logger;
  /** Called when a disk becomes usable (the host attaches workloads here) and when it stops. */
  readonly onDisk?: (devid: number, queue: GuestQueue | null, input: DiskInput | null) => void;
  /** Told what each effect asks of the world (session recording). */
  readonly intents?: IntentSink;
}

type Send = (e: FrontendEvent) => void;

export function frontendEffects(deps: FrontendEffectsDeps) {
  const { xs, logger } = deps;
  const queues = new Map<number, GuestQueue>();
  const closing = new Map<number, Promise<void>>();
  const report = (identity: DeviceIdentity, intents: readonly Intent[]) => {
    if (deps.intents?.recording) deps.intents.intents('blkfront', deviceKey(identity.frontendDomid, identity.devid), intents);
  };

  const writeFrontendState = fromCallback<EventObject, FrontendStateInput>(({ input, sendBack }) => {
    let alive = true;
    const intents = frontendStateIntents(input.identity, input.state);
    const [{ path, value }] = intents as [Extract<Intent, { op: 'write' }>];
    report(input.identity, intents);
    (async () => {
      if ((await xs.tryRead(path)) !== value) await xs.write(path, value);
    })().catch((err) => {
      if (alive) sendBack({ type: 'xenstore.failed', operation: `write state ${input.state}`, message: messageOf(err) } satisfies FrontendEvent);
    });
    return () => {
      alive = false;
    };
  });

  const ring = fromCallback<EventObject, RingInput>(({ input, sendBack }) => {
    let alive = true;
    const send: Send = (e) => alive && sendBack(e);
    const devid = input.identity.devid;
    let queue: GuestQueue | undefined;
    (async () => {
      await closing.get(devid);
      queue = await deps.queueFactory(deps.domain, {
        backendDomid: input.identity.backendDomid,
        ringPageOrder: input.ringPageOrder,
        protocol: input.protocol,
        persistent: input.persistent,
      });
      if (!alive) return;
      queues.set(devid, queue);
      const params = queue.params;
      const intents = ringIntents(input.identity, params);
      await xs.transaction((tx) => applyXenstoreIntents(tx, intents));
      if (!alive) return;
      report(input.identity, intents);
      send({ type: 'ring.ready', ring: params });
    })().catch((err) => send({ type: 'ring.failed', message: messageOf(err) }));
    return () => {
      alive = false;
      const q = queue;
      queues.delete(devid);
      const done = (async () => {
        if (q) await q.close();
      })().catch((err) => logger.warn({ err, devid }, 'guest could not free its ring'));
      closing.set(devid, done);
    };
  });

  const disk = fromCallback<EventObject, DiskInput>(({ input, receive }) => {
    const devid = input.identity.devid;
    const queue = queues.get(devid);
    report(input.identity, diskIntents(input.disk));
    if (queue) {
      queue.start(input.disk);
      deps.onDisk?.(devid, queue, input);
    }
    receive((e) => {
      if (e.type !== 'disk.resized') return;
      const resized = e as unknown as { disk: DiskInput['disk'] };
      report(input.identity, diskIntents(resized.disk));
      queue?.start(resized.disk);
    });
    return () => {
      queue?.stop();
      deps.onDisk?.(devid, null, null);
    };
  });

  return {
    actors: { writeFrontendState, ring, disk },
    /** Waits for rings being freed. */
    async settled(): Promise<void> {
      await Promise.all(closing.values());
    },
  };
}
