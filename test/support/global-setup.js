'use strict';
// Jest's global setup: many tests spawn dist/ (dist/xenblkd.js, dist/cli/...), so a plain
// `npx jest` first runs `npm run build` when dist/ is older than its sources. A fresh build costs
// one walk of src/ (milliseconds).
const { spawnSync } = require('node:child_process');
const path = require('node:path');
const { buildState } = require('./build-freshness');

/** Builds ROOT when stale; throws (message only, no stack) when the build fails. */
function ensureFreshBuild(root, say = (s) => process.stderr.write(`${s}\n`)) {
  const before = buildState(root);
  if (!before.stale) return { built: false, why: before.why };
  say(`jest global setup: dist/ is stale (${before.why}): npm run build`);
  const t0 = Date.now();
  const r = spawnSync('npm', ['run', 'build', '--silent'], { cwd: root, encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
  if (r.status !== 0) {
    const out = `${r.stdout ?? ''}${r.stderr ?? ''}`.trim().split('\n').slice(-20).join('\n');
    throw clean(`npm run build failed (${r.error ? r.error.message : `exit ${r.status}`}); not running tests against a stale dist/:\n${out}`);
  }
  const after = buildState(root);
  if (after.stale) throw clean(`npm run build finished but dist/ still looks stale (${after.why}): does the build end with scripts/build-stamp.js?`);
  say(`jest global setup: built in ${((Date.now() - t0) / 1000).toFixed(1)} s`);
  return { built: true, why: before.why };
}

/** An error jest prints as its message alone: it is about the build, not this file. */
function clean(message) {
  const e = new Error(message);
  e.stack = message;
  return e;
}

module.exports = async function globalSetup() {
  ensureFreshBuild(path.join(__dirname, '..', '..'));
};
module.exports.ensureFreshBuild = ensureFreshBuild;
