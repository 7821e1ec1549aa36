// The kill hooks of the crash tests must never reach a production daemon: the shipped programs
// (the bundles and the compiled modules under dist/, test builds excepted) do not contain the
// variables' names, so a stray variable in a service's environment does nothing; the test builds
// do, and act on them.
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { HOOKED_CLI, HOOKED_DATAPLANE, hookedEntry } from '../support/hooked-entries';
import { CRASH_ENV, KILL_AFTER_EVENTS_ENV, STALL_ENV } from '../support/test-hooks';

const DIST = path.resolve(__dirname, '../../dist');
const NAMES = [CRASH_ENV, KILL_AFTER_EVENTS_ENV, STALL_ENV];

function shippedFiles(dir: string, out: string[] = []): string[] {
  for (const e of fs.readdirSync(dir, { withFileTypes: true })) {
    const p = path.join(dir, e.name);
    if (e.isDirectory()) {
      if (p !== path.join(DIST, 'test')) shippedFiles(p, out);
    } else if (e.name.endsWith('.js')) out.push(p);
  }
  return out;
}

describe('crash hooks stay out of the shipped programs', () => {
  it('dist/xenblkd.js, dist/xenblkd-dataplane.js and every compiled module name none of the hook variables', () => {
    const files = shippedFiles(DIST);
    expect(files).toEqual(expect.arrayContaining([path.join(DIST, 'xenblkd.js'), path.join(DIST, 'xenblkd-dataplane.js')]));
    const found = files.flatMap((f) => {
      const text = fs.readFileSync(f, 'utf8');
      return NAMES.filter((n) => text.includes(n)).map((n) => `${path.relative(DIST, f)}: ${n}`);
    });
    expect(found).toEqual([]);
  });

  it('the test builds read them, and refuse a malformed value with one line', () => {
    for (const [file, env, line] of [
      [HOOKED_DATAPLANE, { [CRASH_ENV]: 'nowhere' }, /^dataplane: XENBLKD_CRASH_AT=nowhere: expected <point>/],
      [HOOKED_CLI, { [KILL_AFTER_EVENTS_ENV]: 'soon' }, /^xenblkd: XENBLKD_KILL_AFTER_EVENTS=soon: expected a number of events$/],
    ] as const) {
      const r = spawnSync(process.execPath, [hookedEntry(file), 'run', '--help'], { env: { ...process.env, ...env }, encoding: 'utf8' });
      expect(r.status).toBe(2);
      expect(r.stderr.trim()).toMatch(line);
    }
  });

  it('the shipped CLI ignores them', () => {
    const r = spawnSync(process.execPath, [path.join(DIST, 'xenblkd.js'), 'run', '--help'], { env: { ...process.env, [KILL_AFTER_EVENTS_ENV]: 'soon', [CRASH_ENV]: 'nowhere' }, encoding: 'utf8' });
    expect(r.status).toBe(0);
    expect(r.stderr).toBe('');
  });
});
