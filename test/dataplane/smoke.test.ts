import { runWorkload } from '../../src/sim/guest';
import { connect, startRig, type Rig } from './support/rig';

describe('dataplane smoke', () => {
  let rig: Rig;
  beforeEach(async () => {
    rig = await startRig();
  });
  afterEach(async () => {
    await rig.close();
  });

  it('runs a verified random workload', async () => {
    const c = await connect(rig);
    const r = await runWorkload(c.queue, { pattern: 'random', queueDepth: 8, ops: 2000, sizes: [512, 4096, 65536], mix: { read: 1, write: 1, flush: 0.1, discard: 0.1 } });
    const s = c.dataplane.stats;
    await c.close();
    expect([r.errors, r.mismatches, r.lost, r.duplicated, r.ops]).toEqual([0, 0, 0, 0, 2000]);
    expect(s.rdReq + s.wrReq + s.fReq + s.dsReq).toBe(2000);
    expect(s.inFlight).toBe(0);
  });
});
