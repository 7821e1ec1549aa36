import { execFileSync, spawnSync } from 'node:child_process';
import * as path from 'node:path';

const cli = path.join(__dirname, '../../dist/cli/main.js');

describe('xenblkd command line', () => {
  it('lists its commands with --help', () => {
    const out = execFileSync('node', [cli, '--help'], { encoding: 'utf8' });
    expect(out).toMatch(/usage: xenblkd <command>/);
    expect(out).toMatch(/version/);
  });

  it('refuses an unknown command in one line with a non-zero exit', () => {
    const r = spawnSync('node', [cli, 'no-such-command'], { encoding: 'utf8' });
    expect(r.status).toBe(2);
    expect(r.stderr.trim().split('\n')).toHaveLength(1);
    expect(r.stderr).toMatch(/unknown command 'no-such-command'/);
  });
});
