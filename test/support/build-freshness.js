'use strict';
// Whether dist/ holds a build of the current sources: the stamp the build writes last
// (scripts/build-stamp.js) is newer than every file the build reads.
const fs = require('node:fs');
const path = require('node:path');
const { STAMP } = require('../../scripts/build-stamp');

/**
 * Top-level paths whose files the build reads (src/ whole, the bundler, the configs, and the
 * test-only entries scripts/bundle.js bundles into dist/test/ with what they import).
 */
function buildInputs(root) {
  const configs = fs.readdirSync(root).filter((f) => /^tsconfig.*\.json$/.test(f));
  const testEntries = ['hooked-cli.ts', 'hooked-dataplane.ts', 'hooked-entries.ts', 'test-hooks.ts'].map((f) => `test/support/${f}`);
  return ['src', 'scripts/bundle.js', 'scripts/build-stamp.js', 'package.json', 'package-lock.json', ...configs, ...testEntries];
}

/** The newest file or directory under the given paths (missing ones ignored): { file, mtimeMs }. */
function newestFile(root, rels) {
  let newest = { file: undefined, mtimeMs: 0 };
  const walk = (p) => {
    let st;
    try {
      st = fs.statSync(p);
    } catch {
      return;
    }
    // a directory's own mtime counts too: it changes when a file in it is added or deleted
    if (st.mtimeMs > newest.mtimeMs) newest = { file: path.relative(root, p), mtimeMs: st.mtimeMs };
    if (st.isDirectory()) for (const e of fs.readdirSync(p)) walk(path.join(p, e));
  };
  for (const r of rels) walk(path.join(root, r));
  return newest;
}

/** { stale, why }: stale when there is no stamp or a build input is newer than it. */
function buildState(root) {
  let stampAt;
  try {
    stampAt = fs.statSync(path.join(root, STAMP)).mtimeMs;
  } catch {
    return { stale: true, why: `no ${STAMP}: no complete build` };
  }
  const newest = newestFile(root, buildInputs(root));
  if (newest.mtimeMs >= stampAt) return { stale: true, why: `${newest.file} changed after the last build` };
  return { stale: false, why: `${STAMP} is newer than src/ and the build files` };
}

module.exports = { buildInputs, newestFile, buildState };
