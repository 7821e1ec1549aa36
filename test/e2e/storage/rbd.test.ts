// An RBD disk end to end on a real single-node Ceph with Ceph's default 30 s watch timeout: the
// shipped daemon is SIGKILLed with requests in flight; the restarted daemon breaks its dead
// predecessor's exclusive lock at once (the guest's longest stall stays far below 30 s) and
// re-executes what was in flight, exactly once; the OSD stopped under I/O is a stall, not an
// error; `rbd resize` grows the guest's disk online.
import * as fs from 'node:fs';
import * as path from 'node:path';
import { expectClean } from '../../dataplane/support/expect-clean';
import { startCephCluster, stopCephCluster, type CephCluster } from '../../support/ceph-cluster';
import { SMALL_WORKLOAD, daemonWorld, until, type DaemonWorld } from '../support/daemon-world';

jest.setTimeout(180_000);

// A discard is advisory on RBD (librbd drops the unaligned parts).
const WORKLOAD = { ...SMALL_WORKLOAD, mix: { read: 5, write: 4, flush: 1, discard: 0.5 }, queueDepth: 16, discardZeroes: false };

describe('an RBD disk', () => {
  let ceph: CephCluster | undefined;
  let world: DaemonWorld | undefined;
  beforeAll(async () => {
    ceph = await startCephCluster({ image: '' });
  });
  afterAll(async () => {
    await world?.close();
    await stopCephCluster(ceph);
  });

  it('takes its image over at once after a SIGKILL, answers what was in flight exactly once, stalls through a stopped OSD, and grows online', async () => {
    const c = ceph!;
    world = await daemonWorld({
      http: false,
      target: async (domid, _dir, bytes) => {
        await c.rbd('create', '--size', `${bytes >> 20}M`, `${c.pool}/guest${domid}`);
        return `rbd:${c.pool}/guest${domid}:conf=${c.conf}`;
      },
    });
    const w = world;
    const disk = w.disks[0]!;
    const log = () => fs.readFileSync(path.join(w.dir, 'daemon.log'), 'utf8');

    const run1 = w.workload(disk, { ...WORKLOAD, durationMs: 4000, ops: 0 });
    await new Promise((r) => setTimeout(r, 1000));
    await w.daemon.kill();
    await w.daemon.start();
    const r1 = await run1;
    expectClean(r1);
    // Without the take-over the first write after the restart waits out the dead client's watch (30 s).
    expect(r1.longestStallMs).toBeLessThan(10_000);
    expect(log()).toMatch(/broke|blocklist/i);

    // The OSD stops answering for 2 s under I/O: the guest stalls and goes on, nothing wrong.
    const run2 = w.workload(disk, { ...WORKLOAD, durationMs: 4000, ops: 0 });
    await new Promise((r) => setTimeout(r, 800));
    process.kill(c.osdPid(), 'SIGSTOP');
    await new Promise((r) => setTimeout(r, 2000));
    process.kill(c.osdPid(), 'SIGCONT');
    const r2 = await run2;
    expectClean(r2);
    expect(r2.longestStallMs).toBeGreaterThan(1500);

    // rbd resize: the backend rewrites sectors, the guest sees the new size.
    const grown = 48 << 20;
    await c.rbd('resize', '--size', '48M', `${c.pool}/guest1`);
    const sectors = `/local/domain/0/backend/vbd/1/${disk.devid}/sectors`;
    await until(async () => (await w.toolstack.tryRead(sectors)) === String(grown / 512), 'the backend to publish the new size', 20_000);
    await until(() => w.host.guest(1).frontend(disk.devid)?.getSnapshot().context.disk?.sectors === grown / 512, 'the guest to see the new size', 20_000);
  });
});
