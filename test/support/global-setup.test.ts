// Jest's global setup builds dist/ when it is stale, so a plain `npx jest` never runs tests
// against an old build: checked on this project's real tree (staleness only) and on a small
// project whose `npm run build` really runs (building, skipping, failing).
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { buildState } from './build-freshness';
import { ensureFreshBuild } from './global-setup';

const ROOT = path.resolve(__dirname, '../..');
const STAMP_SCRIPT = path.join(ROOT, 'scripts/build-stamp.js');

describe('staleness of this project (the real tree)', () => {
  it('is fresh after the global setup, stale once a source is touched, fresh again when it is not', () => {
    // the global setup ran before this file: dist/ is current
    expect(buildState(ROOT)).toEqual({ stale: false, why: 'dist/.build-stamp is newer than src/ and the build files' });
    for (const rel of ['src/io/xs/wire.ts', 'scripts/bundle.js', 'tsconfig.build.json', 'package.json']) {
      const file = path.join(ROOT, rel);
      const { atime, mtime } = fs.statSync(file);
      try {
        const later = new Date(Date.now() + 2000);
        fs.utimesSync(file, later, later);
        expect(buildState(ROOT)).toEqual({ stale: true, why: `${rel} changed after the last build` });
      } finally {
        fs.utimesSync(file, atime, mtime);
      }
    }
    expect(buildState(ROOT).stale).toBe(false);
  });
});

describe('ensureFreshBuild on a small project', () => {
  let dir: string;
  const builds = () => (fs.existsSync(`${dir}/builds`) ? fs.readFileSync(`${dir}/builds`, 'utf8').length : 0);
  const write = (rel: string, text: string) => {
    fs.mkdirSync(path.dirname(path.join(dir, rel)), { recursive: true });
    fs.writeFileSync(path.join(dir, rel), text);
  };
  const touch = (rel: string, secondsFromNow: number) => {
    const t = Date.now() / 1000 + secondsFromNow;
    fs.utimesSync(path.join(dir, rel), t, t);
  };

  beforeEach(() => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'global-setup-'));
    // the build copies src/ into dist/, counts itself, fails when src/broken exists, stamps last
    write('build.js', `const fs = require('fs');
if (fs.existsSync('src/broken')) { console.error('src/broken: syntax error'); process.exit(2); }
fs.mkdirSync('dist', { recursive: true });
fs.copyFileSync('src/a.ts', 'dist/a.js');
fs.appendFileSync('builds', 'x');
`);
    write('package.json', JSON.stringify({ name: 'p', private: true, scripts: { build: `node build.js && node ${STAMP_SCRIPT} .` } }));
    write('tsconfig.json', '{}');
    write('src/a.ts', 'one');
    for (const f of ['build.js', 'package.json', 'tsconfig.json', 'src/a.ts']) touch(f, -100);
  });
  afterEach(() => fs.rmSync(dir, { recursive: true, force: true }));

  it('builds without a stamp, skips while fresh, rebuilds after a source changed', () => {
    const said: string[] = [];
    expect(ensureFreshBuild(dir, (s) => said.push(s))).toEqual({ built: true, why: 'no dist/.build-stamp: no complete build' });
    expect(builds()).toBe(1);
    expect(said[0]).toMatch(/dist\/ is stale \(no dist\/.build-stamp/);
    expect(ensureFreshBuild(dir, () => {})).toMatchObject({ built: false });
    expect(builds()).toBe(1);
    // an edit after that build (the build is made to look older than the edit)
    touch('dist/.build-stamp', -50);
    write('src/a.ts', 'two');
    expect(ensureFreshBuild(dir, () => {})).toEqual({ built: true, why: 'src/a.ts changed after the last build' });
    expect(fs.readFileSync(`${dir}/dist/a.js`, 'utf8')).toBe('two');
    expect(builds()).toBe(2);
    // a deleted source leaves its output behind: its folder's mtime says so
    touch('dist/.build-stamp', -50);
    write('src/b.ts', 'b');
    touch('src/b.ts', -100);
    touch('src/a.ts', -100);
    touch('src', -100);
    expect(ensureFreshBuild(dir, () => {}).built).toBe(false);
    fs.rmSync(`${dir}/src/b.ts`);
    expect(ensureFreshBuild(dir, () => {})).toEqual({ built: true, why: 'src changed after the last build' });
  }, 30_000);

  it('fails clearly when the build fails, and keeps failing until it succeeds', () => {
    write('src/broken', '');
    let err: Error | undefined;
    try {
      ensureFreshBuild(dir, () => {});
    } catch (e) {
      err = e as Error;
    }
    expect(err?.message).toMatch(/^npm run build failed \(exit 2\); not running tests against a stale dist\/:\n[^]*src\/broken: syntax error/);
    expect(err?.stack).toBe(err?.message);
    expect(() => ensureFreshBuild(dir, () => {})).toThrow(/npm run build failed/);
    fs.rmSync(`${dir}/src/broken`);
    expect(ensureFreshBuild(dir, () => {}).built).toBe(true);
  }, 30_000);

  it('says so when the build does not write the stamp', () => {
    write('package.json', JSON.stringify({ name: 'p', private: true, scripts: { build: 'node build.js' } }));
    expect(() => ensureFreshBuild(dir, () => {})).toThrow(/still looks stale \(no dist\/.build-stamp.*build-stamp\.js\?/);
  }, 30_000);
});
