// The engine benchmark end to end on a few devices: every figure it prints is measured (finite,
// positive), and the memory figure comes from the daemon's control socket after a full GC.
import { runEngineBench } from '../../src/bench/engine';

jest.setTimeout(120_000);

describe('engine benchmark', () => {
  it('connects, kills, recovers and measures a small set of devices', async () => {
    const lines: string[] = [];
    const r = await runEngineBench({ counts: [1, 4], devicesPerGuest: 2, print: (l) => lines.push(l) });
    expect(r.connect.map((c) => c.devices)).toEqual([1, 4]);
    for (const c of r.connect) expect(c.perSecond).toBeGreaterThan(0);
    expect(r.recovery.devices).toBe(4);
    expect(r.recovery.fromSpawnMs).toBeGreaterThan(0);
    expect(Number.isFinite(r.recovery.insideProcessMs)).toBe(true);
    expect(r.memory.idleRssMiB).toBeGreaterThan(10);
    expect(Number.isFinite(r.memory.heapKibPerDevice)).toBe(true);
    expect(r.store.eventsPerSecond).toBeGreaterThan(0);
    expect(lines.join('\n')).toMatch(/KiB of JS heap per idle connected device/);
  });
});
