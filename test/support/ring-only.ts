// A frontend queue and a dataplane that set up the ring and its event channel and move no data:
// enough to test the xenbus lifecycle ("I/O-free connected state") through real grants and
// event channels of the simulated host.
import type { Subscription } from 'rxjs';
import type { GrantMapping, EvtchnPort } from '../../src/io/ports';
import type { Dataplane, DataplaneFactory } from '../../src/effects/dataplane-port';
import type { GuestQueue, GuestQueueFactory } from '../../src/sim/frontend/guest-queue';

export const ringOnlyQueueFactory: GuestQueueFactory = async (domain, opts) => {
  const frames = domain.allocPages(1 << opts.ringPageOrder);
  for (const f of frames) domain.page(f).fill(0);
  const refs = frames.map((f) => domain.grantAccess(f, opts.backendDomid, false));
  const port = await domain.evtchn.allocUnbound(opts.backendDomid);
  let started = 0;
  const queue: GuestQueue & { started: () => number } = {
    params: { ringPageOrder: opts.ringPageOrder, ringRefs: refs, eventChannel: port.localPort, protocol: opts.protocol, persistent: opts.persistent },
    start: () => {
      started += 1;
    },
    stop: () => undefined,
    started: () => started,
    async close() {
      for (const ref of refs) {
        // Linux retries gnttab_end_foreign_access while the backend still maps the page.
        for (let i = 0; !domain.endAccess(ref); i++) {
          if (i > 500) throw new Error(`grant ${ref} still mapped`);
          await new Promise((r) => setTimeout(r, 10));
        }
      }
      await port.unbind();
      domain.freePages(frames);
    },
  };
  return queue;
};

export const ringOnlyDataplane: DataplaneFactory = async (opts) => {
  const { params, identity } = opts;
  const mapping: GrantMapping = await opts.gnttab.map(identity.frontendDomid, params.ringRefs, true);
  let port: EvtchnPort;
  try {
    port = await opts.evtchn.bindInterdomain(identity.frontendDomid, params.eventChannel);
  } catch (err) {
    await mapping.unmap();
    throw err;
  }
  const sub: Subscription = port.events$.subscribe(() => port.unmask());
  const dataplane: Dataplane = {
    stats: { rdReq: 0, wrReq: 0, fReq: 0, dsReq: 0, ooReq: 0, rdSect: 0, wrSect: 0, errors: 0, inFlight: 0, latency: { boundsUs: [Infinity], counts: [0] } },
    async stop() {
      sub.unsubscribe();
      await port.unbind();
      await mapping.unmap();
    },
  };
  return dataplane;
};
