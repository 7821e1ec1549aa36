// The replay benchmark runs end to end and reports every figure (speeds are printed by the
// benchmark, never asserted here).
import { runReplayBench } from '../../src/bench/replay';

it('runs the replay benchmark on a small session and reports every figure', async () => {
  const lines: string[] = [];
  const r = await runReplayBench({ devices: 2, cycles: 3, print: (l) => lines.push(l) });
  // 2 device creations on the bus, 2 x (4 + 3 x 10) device events.
  expect(r.events).toBe(2 + 2 * (4 + 3 * 10));
  for (const f of [r.parseLinesPerSec, r.bareXstateEventsPerSec, r.bareXstateEventsPerCpuSec, r.replayEventsPerSec, r.replayEventsPerCpuSec, r.machineUsPerEvent]) {
    expect(Number.isFinite(f) && f > 0).toBe(true);
  }
  expect(r.recordingUsPerEvent).toBeGreaterThanOrEqual(0);
  expect(r.target).toBe(50_000);
  expect(lines.join('\n')).toMatch(/replay \(parse, machines, compare\)\s+[\d,]+ events\/s, [\d,]+ per CPU-second \(target 50,000: (met|not met)\)/);
  expect(lines.join('\n')).toMatch(/recording\s+[\d.]+ us\/event CPU/);
});
