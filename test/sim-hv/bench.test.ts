// The benchmark still runs end to end (figures are printed by `xenblkd bench`, never asserted).
import * as path from 'node:path';
import { runXenprimsBench } from '../../src/bench/xenprims';

it('runs the xenprims benchmark and reports every figure', async () => {
  const lines: string[] = [];
  const r = await runXenprimsBench({
    durationMs: 30,
    roundTrips: 50,
    print: (l) => lines.push(l),
    execArgv: ['-r', path.join(__dirname, 'support', 'register.js')],
  });
  expect(r.copy.map((c) => [c.bytes, c.direction])).toEqual([
    [4096, 'guest->local'],
    [4096, 'local->guest'],
    [65536, 'guest->local'],
    [65536, 'local->guest'],
  ]);
  const figures = [
    ...r.copy.flatMap((c) => [c.mbPerSec, c.memcpyMbPerSec]),
    ...r.mapUnmap.map((m) => m.perSec),
    r.eventRoundTrip.p50us,
    r.eventRoundTrip.p99us,
    r.pipeRoundTrip.p50us,
    r.pipeRoundTrip.p99us,
  ];
  for (const f of figures) expect(Number.isFinite(f) && f > 0).toBe(true);
  expect(r.eventRoundTrip.p99us).toBeGreaterThanOrEqual(r.eventRoundTrip.p50us);
  expect(lines.some((l) => /event channel via the sim host/.test(l))).toBe(true);
});
