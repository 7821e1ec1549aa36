// Exactly once across SIGKILL at random moments: the dataplane runs in a child process that dies
// while the guest keeps submitting; each restart resumes the ring (journal replay, re-execution of
// the unanswered requests) and the verifying workload must see every request answered exactly
// once with the right data. The children stall a little inside each publication (test hook), so
// that some of the random kills land between the journal record and rsp_prod: asserted. Every
// kill point at every hit is test/faults/crash-points.test.ts.
import { DiskModel, runWorkload, type WorkloadReport, type WorkloadSpecInput } from '../../src/sim/guest';
import { Rng } from '../../src/sim/guest/rng';
import { guestQueue, DataplaneChild, type Child } from './support/crash-rig';
import { startRig, type Rig } from './support/rig';
import { expectClean } from './support/expect-clean';

jest.setTimeout(180_000);

const IMAGE_SECTORS = (8 << 20) / 512;
const MIX: WorkloadSpecInput = {
  pattern: 'random',
  mix: { read: 4, write: 4, flush: 0.3, barrier: 0.2, discard: 0.3 },
  sizes: [512, 4096, 16384, 65536, 262144],
  offsetInPage: true,
  queueDepth: 32,
};

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

  async function randomKills(kills: number, setup: Parameters<typeof guestQueue>[1], seed: number): Promise<void> {
    const { queue, config } = await guestQueue(rig, setup);
    const model = new DiskModel(0, IMAGE_SECTORS);
    const stop = new AbortController();
    const work = runWorkload(queue, { ...MIX, ops: 0, durationMs: 600_000, seed }, { model, signal: stop.signal });
    const rng = new Rng(seed);
    const env = { XENBLKD_STALL_PUBLICATION_MS: '10' };
    let current = (await DataplaneChild.start(config, env)).child;
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
      const next = await DataplaneChild.start(config, env);
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
    process.stdout.write(`random kills (${setup?.dataPath}): ${kills}, of which ${resumedWithRepublish} landed inside a publication\n`);
    expect(resumedWithRepublish).toBeGreaterThan(0);
  }

  it('survives 20 kills at random moments under a queue-depth-32 workload (grant copy, x86_64, 2-page ring)', async () => {
    await randomKills(20, { order: 1, dataPath: 'copy' }, 1234);
  });

  it('survives kills with persistent grants, the x86_32 ABI and a 4-page ring', async () => {
    await randomKills(10, { order: 2, protocol: 'x86_32-abi', persistent: true, dataPath: 'persistent' }, 99);
  });
});
