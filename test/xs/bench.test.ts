// The xenstore benchmark runs end to end and reports every figure (no speed is asserted here:
// figures belong to the benchmark's output, not to tests).
import { runXenstoreBench } from '../../src/bench/xenstore';

describe('xenstore benchmark', () => {
  it('measures our client and pyxs and renders a table', async () => {
    const r = await runXenstoreBench({ quick: true, inProcessServer: true });
    expect(r.rows.map((row) => row.metric)).toEqual([
      'pipelined reads',
      'pipelined writes',
      'watch event latency p50',
      'watch event latency p99',
      'tx commits, no conflicts',
      'tx commits, one hot key',
    ]);
    for (const row of r.rows) {
      expect(Number.isFinite(row.ours) && row.ours > 0).toBe(true);
      expect(Number.isFinite(row.pyxs) && row.pyxs > 0).toBe(true);
    }
    expect(r.conflicts.ours).toBeGreaterThanOrEqual(0);
    expect(r.conflicts.pyxs).toBeGreaterThanOrEqual(0);
    expect(r.table).toMatch(/pipelined reads \(\/s\)\s+[\d,]+\s+[\d,]+\s+[\d.]+x/);
    expect(typeof r.targets.throughputAtLeast10x).toBe('boolean');
  });
});
