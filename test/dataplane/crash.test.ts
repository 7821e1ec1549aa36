// Exactly once across SIGKILL: the dataplane runs in a child process that dies while the guest
// keeps submitting; each restart resumes the ring (journal replay, re-execution of the
// unanswered requests) and the verifying workload must see every request answered exactly once
// with the right data.
import { CRASH_POINTS, type CrashPoint } from '../../src/effects/dataplane/crash-points';
import { DiskModel, runWorkload, type WorkloadReport, type WorkloadSpecInput } from '../../src/sim/guest';
import { Rng } from '../../src/sim/guest/rng';
import { guestQueue, DataplaneChild, type Child } from './support/crash-rig';
import { startRig, type Rig } from './support/rig';

jest.setTimeout(180_000);

const IMAGE_SECTORS = (8 << 20) / 512;
const MIX: WorkloadSpecInput = {
  pattern: 'random',
  mix: { read: 4, write: 4, flush: 0.3, barrier: 0.2, discard: 0.3 },
  sizes: [512, 4096, 16384, 65536, 262144],
  offsetInPage: true,
  queueDepth: 32,
};

function expectClean(r: WorkloadReport): void {
  expect({ errors: r.errors, mismatches: r.mismatches, lost: r.lost, duplicated: r.duplicated, badOperations: r.badOperations, notes: r.notes }).toEqual({
    errors: 0,
    mismatches: 0,
    lost: 0,
    duplicated: 0,
    badOperations: 0,
    notes: [],
  });
}

/** Reads the whole disk back and checks it against the model. */
async function verifyAll(queue: Parameters<typeof runWorkload>[0], model: DiskModel): Promise<WorkloadReport> {
  const r = await runWorkload(
    queue,
    { pattern: 'sequential', mix: { read: 1 }, sizes: [65536], queueDepth: 16, ops: IMAGE_SECTORS / 128, seed: 7 },
    { model },
  );
  expectClean(r);
  expect(r.checkedSectors).toBe(IMAGE_SECTORS);
  return r;
}

describe('dataplane killed with SIGKILL', () => {
  let rig: Rig;
  const children: Child[] = [];
  beforeEach(async () => {
    rig = await startRig();
  });
  afterEach(async () => {
    for (const c of children.splice(0)) {
      c.kill();
      await c.exited;
    }
    await rig.close();
  });

  const republishes: Record<CrashPoint, boolean> = {
    'after-consume': false,
    'mid-io': false,
    'after-journal': true,
    'mid-slots': true,
    'after-slots': true,
    'after-publish': false,
  };

  it.each(CRASH_POINTS.map((p) => [p]))('recovers from a kill at %s, every time', async (point) => {
    const { queue, config } = await guestQueue(rig, { order: 1 });
    const model = new DiskModel(0, IMAGE_SECTORS);
    const work = runWorkload(queue, { ...MIX, ops: 1500, seed: 11 }, { model });
    const first = await DataplaneChild.start(config, { XENBLKD_CRASH_AT: `${point}:5` });
    children.push(first.child);
    expect((await first.child.exited).signal).toBe('SIGKILL');
    const second = await DataplaneChild.start(config);
    children.push(second.child);
    expect(second.ready.republished > 0).toBe(republishes[point]);
    const r = await work;
    expectClean(r);
    expect(r.ops).toBe(1500);
    await verifyAll(queue, model);
    const stats = await second.child.stop();
    expect(stats.inFlight).toBe(0);
    await queue.close();
  });

  async function randomKills(kills: number, setup: Parameters<typeof guestQueue>[1], seed: number): Promise<void> {
    const { queue, config } = await guestQueue(rig, setup);
    const model = new DiskModel(0, IMAGE_SECTORS);
    const stop = new AbortController();
    const work = runWorkload(queue, { ...MIX, ops: 0, durationMs: 600_000, seed }, { model, signal: stop.signal });
    const rng = new Rng(seed);
    let current = (await DataplaneChild.start(config)).child;
    children.push(current);
    let resumedWithRepublish = 0;
    for (let k = 0; k < kills; k++) {
      const before = queue.responses;
      // Let it run, at least until it answered something, then kill it at a random moment.
      await new Promise((r) => setTimeout(r, 20 + rng.below(250)));
      while (queue.responses === before) await new Promise((r) => setTimeout(r, 5));
      current.kill();
      await current.exited;
      await new Promise((r) => setTimeout(r, rng.below(60)));
      const next = await DataplaneChild.start(config);
      children.push(next.child);
      if (next.ready.republished > 0) resumedWithRepublish++;
      current = next.child;
    }
    stop.abort();
    const r = await work;
    expectClean(r);
    expect(r.ops).toBeGreaterThan(kills * 10);
    await verifyAll(queue, model);
    await current.stop();
    await queue.close();
    // Not asserted (a random kill rarely lands in the window); the deterministic tests cover it.
    void resumedWithRepublish;
  }

  it('survives 20 kills at random moments under a queue-depth-32 workload (grant copy, x86_64, 2-page ring)', async () => {
    await randomKills(20, { order: 1, dataPath: 'copy' }, 1234);
  });

  it('survives kills with persistent grants, the x86_32 ABI and a 4-page ring', async () => {
    await randomKills(6, { order: 2, protocol: 'x86_32-abi', persistent: true, dataPath: 'persistent' }, 99);
  });
});
