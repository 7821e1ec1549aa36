'use strict';
// Whether dist/ is newer than everything it is built from, so `npm run build` can be skipped
// (CI builds before it runs the harness). Conservative: anything missing or newer rebuilds;
// a checkout gives files the current time, which also rebuilds.
const fs = require('node:fs');
const path = require('node:path');

/** Newest modification time (ms) of the files under the given paths (missing ones ignored). */
function newestMtime(paths) {
  let newest = 0;
  const walk = (p) => {
    let st;
    try {
      st = fs.statSync(p);
    } catch {
      return;
    }
    if (st.isDirectory()) for (const e of fs.readdirSync(p)) walk(path.join(p, e));
    else newest = Math.max(newest, st.mtimeMs);
  };
  for (const p of paths) walk(p);
  return newest;
}

const SOURCES = ['src', 'package.json', 'package-lock.json', 'tsconfig.json', 'tsconfig.build.json', 'scripts/bundle.js'];
const OUTPUTS = ['dist/cli/main.js', 'dist/xenblkd.js'];

/** { current, why }: current when every build output that exists is newer than every source. */
function buildIsCurrent(project) {
  const outputs = OUTPUTS.map((o) => path.join(project, o)).filter((o) => fs.existsSync(o));
  if (!outputs.some((o) => o.endsWith(path.join('cli', 'main.js')))) return { current: false, why: 'no dist/cli/main.js' };
  const oldestOutput = Math.min(...outputs.map((o) => fs.statSync(o).mtimeMs));
  const newestSource = newestMtime(SOURCES.map((s) => path.join(project, s)));
  if (newestSource >= oldestOutput) return { current: false, why: 'sources changed since the last build' };
  return { current: true, why: 'dist/ is newer than src/ and the build files' };
}

module.exports = { newestMtime, buildIsCurrent };
