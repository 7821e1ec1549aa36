#!/usr/bin/env node
// The last step of `npm run build`: dist/.build-stamp says a whole build finished, and when.
// Jest's global setup (test/support/global-setup.js) rebuilds when a source is newer than it.
const fs = require('node:fs');
const path = require('node:path');

const STAMP = path.join('dist', '.build-stamp');

/** Writes ROOT/dist/.build-stamp (its mtime is what counts; the content is for people). */
function writeStamp(root) {
  const file = path.join(root, STAMP);
  fs.mkdirSync(path.dirname(file), { recursive: true });
  fs.writeFileSync(file, `${JSON.stringify({ builtAt: new Date().toISOString() })}\n`);
  return file;
}

// usage: node scripts/build-stamp.js [ROOT] (default: this project)
if (require.main === module) writeStamp(process.argv[2] ? path.resolve(process.argv[2]) : path.join(__dirname, '..'));

module.exports = { STAMP, writeStamp };
