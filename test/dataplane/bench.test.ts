// The benchmark and the soak still run end to end (figures are printed by the scripts, never
// asserted here; fio is left out to keep this short).
import * as os from 'node:os';
import { runDataplaneBench } from '../../src/bench/dataplane';
import { runDataplaneSoak } from '../../src/bench/dataplane-soak';
import { testChildCommand } from './support/child';

jest.setTimeout(120_000);

it('runs the dataplane benchmark and reports every figure', async () => {
  const lines: string[] = [];
  const r = await runDataplaneBench({ durationMs: 120, imageBytes: 8 << 20, locations: ['tmpfs'], skipFio: true, restarts: 1, orderingRounds: 2, print: (l) => lines.push(l), child: testChildCommand() });
  expect(r.rows.map((x) => `${x.workload}/${x.queueDepth}`)).toEqual([
    '4k randread/1', '4k randread/32', '4k randwrite/1', '4k randwrite/32', '64k seqread/1', '64k seqread/32', '64k seqwrite/1', '64k seqwrite/32',
  ]);
  for (const x of r.rows) expect(x.dataplane.iops > 0 && x.dataplane.mbPerSec > 0).toBe(true);
  expect(r.dataPaths.map((d) => d.dataPath)).toEqual(['copy', 'map', 'persistent', 'copy', 'map', 'persistent']);
  expect(r.ordering).toHaveLength(2);
  for (const o of r.ordering) expect(Number.isFinite(o.lossPct)).toBe(true);
  expect(r.recovery.spawnToFirstMs).toHaveLength(1);
  // The new process may serve before this process has read its ready line: any finite value.
  expect(Number.isFinite(r.recovery.readyToFirstMs[0])).toBe(true);
  expect(r.recovery.spawnToFirstMs[0]).toBeGreaterThan(0);
  expect(lines.some((l) => /recovery pause over 1 SIGKILLs/.test(l))).toBe(true);
  // Where the restart went, as the new process saw it, next to a bare node start.
  const s = r.recovery.startup[0];
  expect(s.nodeMs > 0 && s.modulesMs > 0 && s.setupMs > 0).toBe(true);
  expect(r.recovery.bareNodeMs[0]).toBeGreaterThan(0);
  expect(lines.some((l) => /node's own start \d+ ms, loading modules \d+ ms, ring setup \d+ ms/.test(l))).toBe(true);
});

it('runs the soak with a few kills and reads everything back clean', async () => {
  const r = await runDataplaneSoak({ kills: 3, imageBytes: 4 << 20, dir: os.tmpdir(), print: () => {}, child: testChildCommand() });
  expect([r.workload.errors, r.workload.mismatches, r.workload.lost, r.workload.duplicated, r.verify.mismatches]).toEqual([0, 0, 0, 0, 0]);
  expect(r.verify.checkedSectors).toBe((4 << 20) / 512);
});
