import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { buildIsCurrent } from './lib/freshness';

let dir: string;
const file = (rel: string, ageSeconds: number) => {
  const p = path.join(dir, rel);
  fs.mkdirSync(path.dirname(p), { recursive: true });
  fs.writeFileSync(p, rel);
  const t = Date.now() / 1000 - ageSeconds;
  fs.utimesSync(p, t, t);
};

beforeEach(() => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'xen-fresh-'));
});
afterEach(() => fs.rmSync(dir, { recursive: true, force: true }));

describe('skipping npm run build when dist/ is current', () => {
  it('is current when every output is newer than every source', () => {
    file('src/a.ts', 100);
    file('src/deep/b.ts', 90);
    file('package.json', 100);
    file('dist/cli/main.js', 10);
    file('dist/xenblkd.js', 12);
    expect(buildIsCurrent(dir)).toEqual({ current: true, why: 'dist/ is newer than src/ and the build files' });
  });

  it('rebuilds after a source, the lock file or the bundler script changed, or without a build', () => {
    file('src/a.ts', 100);
    file('dist/cli/main.js', 10);
    file('src/deep/new.ts', 5);
    expect(buildIsCurrent(dir).current).toBe(false);
    fs.rmSync(path.join(dir, 'src/deep/new.ts'));
    expect(buildIsCurrent(dir).current).toBe(true);
    file('package-lock.json', 1);
    expect(buildIsCurrent(dir).current).toBe(false);
    file('package-lock.json', 100);
    file('scripts/bundle.js', 1);
    expect(buildIsCurrent(dir).current).toBe(false);
    fs.rmSync(path.join(dir, 'dist'), { recursive: true });
    expect(buildIsCurrent(dir)).toEqual({ current: false, why: 'no dist/cli/main.js' });
  });

  it('rebuilds when the bundle is older than the sources even if main.js is not', () => {
    file('src/a.ts', 50);
    file('dist/cli/main.js', 10);
    file('dist/xenblkd.js', 60);
    expect(buildIsCurrent(dir).current).toBe(false);
  });
});
