// Exactly once at every kill point: for every point of the request path (consumption, storage
// I/O, before / torn / after the journal record, before each response slot of a batch, after the
// slots, after rsp_prod), at every hit 1..K, on the copy, map and persistent data paths and both
// ring ABIs, the production dataplane (the standalone child) and journal are SIGKILLed and
// restarted under a verifying workload that must see no error, mismatch, loss or duplicate.
// Kills inside the publication window (journal written, rsp_prod not advanced) must be repaired by
// a republish from the journal; kills anywhere else must need none.
import type { CrashPoint } from '../../src/effects/dataplane/crash-points';
import type { BlkifProtocol } from '../../src/machines/block/connect-params';
import type { Child } from '../dataplane/support/child';
import { cellName, runCell, type DataPath, type KillCell } from '../dataplane/support/kill-matrix';
import { startRig } from '../dataplane/support/rig';

jest.setTimeout(15 * 60_000);

/** Hits per point: each cell kills K processes in a row, the nth at its nth time at the point. */
const K = 6;
/** Slots 1..SLOTS of a batch, then the last one (last-slot) and none left (after-slots). */
const SLOTS = 4;
const IMAGE_BYTES = 2 << 20;
/** Cells run at once. */
const PARALLEL = 3;
const SECTORS = IMAGE_BYTES / 512;

const POINTS: { point: CrashPoint; slot?: number; republish: boolean }[] = [
  { point: 'after-consume', republish: false },
  { point: 'mid-io', republish: false },
  { point: 'before-journal', republish: false },
  { point: 'torn-journal', republish: false },
  { point: 'after-journal', republish: true },
  ...Array.from({ length: SLOTS }, (_, i) => ({ point: 'slot' as const, slot: i + 1, republish: true })),
  { point: 'last-slot', republish: true },
  { point: 'after-slots', republish: true },
  { point: 'after-publish', republish: false },
];
const PATHS: DataPath[] = ['copy', 'map', 'persistent'];
const ABIS: BlkifProtocol[] = ['x86_64-abi', 'x86_32-abi'];

const total = { kills: 0, republishing: 0, paths: new Set<string>() };
afterAll(() => {
  // For the closing note: the size of the proof.
  process.stdout.write(
    `crash matrix total: ${POINTS.length} points (${POINTS.map((p) => (p.point === 'slot' ? `slot/${p.slot}` : p.point)).join(', ')}) x ${K} hits x ${total.paths.size} paths x ${ABIS.length} ABIs = ${total.kills} kills checked, ${total.republishing} needed a republish\n`,
  );
});

describe.each(PATHS)('kill at every point and hit, %s data path', (dataPath) => {
  const children: Child[] = [];
  afterEach(async () => {
    for (const c of children.splice(0)) {
      c.kill();
      await c.exited;
    }
  });

  it(`answers every request exactly once: ${POINTS.length} points x ${K} hits x ${ABIS.length} ABIs`, async () => {
    const failures: string[] = [];
    let kills = 0;
    let republishing = 0;
    const cells = ABIS.flatMap((protocol) => POINTS.map((p) => ({ p, cell: { point: p.point, slot: p.slot, dataPath, protocol } as KillCell })));
    const runOne = async ({ p, cell }: (typeof cells)[number], seed: number): Promise<void> => {
      const rig = await startRig({ imageBytes: IMAGE_BYTES, guestMemoryBytes: 32 << 20 });
      const mine: Child[] = [];
      try {
        const r = await runCell(rig, SECTORS, cell, K, seed, mine);
        kills += r.republished.length;
        republishing += r.republished.filter((n) => n > 0).length;
        const bad = { errors: r.report.errors, mismatches: r.report.mismatches, lost: r.report.lost, duplicated: r.report.duplicated, badOperations: r.report.badOperations, notes: r.report.notes };
        if (Object.values(bad).some((v) => (Array.isArray(v) ? v.length > 0 : v !== 0))) failures.push(`${cellName(cell)}: ${JSON.stringify(bad)}`);
        if (r.verify.errors + r.verify.mismatches + r.verify.lost + r.verify.duplicated !== 0 || r.verify.checkedSectors !== SECTORS) {
          failures.push(`${cellName(cell)}: read-back ${JSON.stringify({ mismatches: r.verify.mismatches, errors: r.verify.errors, checked: r.verify.checkedSectors })}`);
        }
        const wrong = r.republished.filter((n) => (n > 0) !== p.republish);
        if (wrong.length > 0) failures.push(`${cellName(cell)}: republished ${JSON.stringify(r.republished)}, expected ${p.republish ? 'every kill to need a republish' : 'none'}`);
      } catch (e) {
        failures.push((e as Error).message);
      } finally {
        children.push(...mine);
        for (const c of mine) {
          c.kill();
          await c.exited;
        }
        await rig.close();
      }
    };
    // A few cells at a time: each mostly waits for its child processes to start.
    let next = 0;
    await Promise.all(
      Array.from({ length: PARALLEL }, async () => {
        while (next < cells.length) {
          const i = next++;
          await runOne(cells[i], 100 + i);
        }
      }),
    );
    // For the closing note: the size of the proof.
    process.stdout.write(
      `crash matrix (${dataPath}): ${POINTS.length} points x ${K} hits x 1 path x ${ABIS.length} ABIs = ${POINTS.length * K * ABIS.length} kills; ${kills} restarts checked, ${republishing} needed a republish\n`,
    );
    total.kills += kills;
    total.republishing += republishing;
    total.paths.add(dataPath);
    expect(failures).toEqual([]);
    expect(kills).toBe(POINTS.length * K * ABIS.length);
    expect(republishing).toBe(POINTS.filter((p) => p.republish).length * K * ABIS.length);
  });
});
