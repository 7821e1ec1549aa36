// `xenblkd bench` through the real CLI on a short run: figures next to their reference.
import { spawnSync } from 'node:child_process';
import * as path from 'node:path';

const cli = path.join(__dirname, '../../dist/cli/main.js');

describe('xenblkd bench', () => {
  it('runs the Xen primitives benchmark and prints each figure beside its reference', () => {
    const r = spawnSync(process.execPath, [cli, 'bench', 'xenprims', '--quick'], { encoding: 'utf8', timeout: 60_000 });
    expect(r.status).toBe(0);
    expect(r.stdout).toMatch(/^== xenprims$/m);
    expect(r.stdout).toMatch(/grant copy\s+sim MB\/s\s+memcpy MB\/s/);
    const copy = [...r.stdout.matchAll(/^\s+(4|64) KiB (guest->local|local->guest)\s+([\d.]+)\s+([\d.]+)$/gm)];
    expect(copy).toHaveLength(4);
    for (const m of copy) {
      expect(Number(m[3])).toBeGreaterThan(0);
      expect(Number(m[4])).toBeGreaterThan(0);
    }
    expect(r.stdout).toMatch(/event channel via the sim host\s+[\d.]+\s+[\d.]+\n\s+plain pipe \(reference\)\s+[\d.]+\s+[\d.]+/);
  }, 70_000);

  it('lists what it can run in --help', () => {
    const r = spawnSync(process.execPath, [cli, 'bench', '--help'], { encoding: 'utf8' });
    expect(r.status).toBe(0);
    expect(r.stdout).toMatch(/usage: xenblkd bench \[xenstore\|xenprims\|dataplane\|engine\|replay\|all\]/);
  });
});
