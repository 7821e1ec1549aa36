// A dataplane that maps the ring and binds its event channel and moves no data: with the idle
// guest queue, enough to test the xenbus lifecycle ("I/O-free connected state") through real
// grants and event channels of the simulated host.
import type { Subscription } from 'rxjs';
import type { GrantMapping, EvtchnPort } from '../../src/io/ports';
import type { Dataplane, DataplaneFactory } from '../../src/effects/dataplane-port';

export { idleQueueFactory as ringOnlyQueueFactory } from '../../src/sim/frontend/idle-queue';

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
    stats: { rdReq: 0, wrReq: 0, fReq: 0, dsReq: 0, ooReq: 0, rdSect: 0, wrSect: 0, errors: 0, journalFailures: 0, inFlight: 0, latency: { boundsUs: [Infinity], counts: [0] } },
    async stop() {
      sub.unsubscribe();
      await port.unbind();
      await mapping.unmap();
    },
  };
  return dataplane;
};
