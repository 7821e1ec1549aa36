// The simulated guest's real block queue (src/sim/guest) behind the frontend's GuestQueue port.
import { GuestBlockQueue } from '../guest/block-queue';
import type { GuestQueue, GuestQueueFactory } from './guest-queue';

export interface BlockGuestQueue extends GuestQueue {
  readonly blockQueue: GuestBlockQueue;
}

export function blockQueueFactory(opts: { indirectSegments?: number } = {}): GuestQueueFactory {
  return async (domain, o): Promise<BlockGuestQueue> => {
    const blockQueue = await GuestBlockQueue.create(domain, { ...o, indirectSegments: opts.indirectSegments ?? 256 });
    let started = false;
    return {
      params: blockQueue.params,
      blockQueue,
      start(disk) {
        // A resize announces the disk again; the queue keeps what it negotiated first.
        if (started) return;
        started = true;
        blockQueue.start(disk);
      },
      stop() {},
      close: () => blockQueue.close(),
    };
  };
}

export function isBlockGuestQueue(q: GuestQueue | null): q is BlockGuestQueue {
  return q !== null && 'blockQueue' in q;
}
