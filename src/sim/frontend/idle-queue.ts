// A guest block queue that connects and never submits I/O: an idle disk. It grants the ring and
// allocates the event channel exactly as the busy queue does, at a fraction of the memory, so
// lifecycle tests and the engine benchmark can run many devices.
import type { GuestQueue, GuestQueueFactory } from './guest-queue';

export const idleQueueFactory: GuestQueueFactory = async (domain, opts) => {
  const frames = domain.allocPages(1 << opts.ringPageOrder);
  // An empty shared ring: producers and consumers at 0, events requested at 1 (SHARED_RING_INIT).
  for (const f of frames) domain.page(f).fill(0);
  const header = new DataView(domain.page(frames[0]).buffer, domain.page(frames[0]).byteOffset, 16);
  header.setUint32(4, 1, true);
  header.setUint32(12, 1, true);
  const refs = frames.map((f) => domain.grantAccess(f, opts.backendDomid, false));
  const port = await domain.evtchn.allocUnbound(opts.backendDomid);
  const queue: GuestQueue = {
    params: { ringPageOrder: opts.ringPageOrder, ringRefs: refs, eventChannel: port.localPort, protocol: opts.protocol, persistent: opts.persistent },
    start: () => undefined,
    stop: () => undefined,
    async close() {
      for (const ref of refs) {
        // Linux retries gnttab_end_foreign_access while the backend still maps the page.
        for (let i = 0; !domain.endAccess(ref); i++) {
          if (i > 1000) throw new Error(`grant ${ref} still mapped after 10 s`);
          await new Promise((r) => setTimeout(r, 10));
        }
      }
      await port.unbind();
      domain.freePages(frames);
    },
  };
  return queue;
};
