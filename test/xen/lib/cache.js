'use strict';
// Host-side stages of the harness: timed steps and builds cached on a hash of their inputs.
const crypto = require('node:crypto');
const fs = require('node:fs');
const path = require('node:path');
const { spawnSync } = require('node:child_process');

/** sha256 of a file's bytes. */
function fileDigest(file) {
  return crypto.createHash('sha256').update(fs.readFileSync(file)).digest('hex');
}

/** sha256 over every file under the given files/dirs (names relative to base, sorted). */
function treeDigest(base, entries) {
  const h = crypto.createHash('sha256');
  const files = [];
  const walk = (p) => {
    const st = fs.lstatSync(p);
    if (st.isDirectory()) for (const e of fs.readdirSync(p)) walk(path.join(p, e));
    else if (st.isSymbolicLink()) files.push([p, `-> ${fs.readlinkSync(p)}`]);
    else if (st.isFile()) files.push([p, null]);
  };
  for (const e of entries) walk(path.resolve(base, e));
  files.sort((a, b) => (a[0] < b[0] ? -1 : 1));
  for (const [f, link] of files) {
    h.update(path.relative(base, f) + '\0');
    h.update(link ?? fileDigest(f));
    h.update('\0');
  }
  return h.digest('hex');
}

function digestOf(value) {
  return crypto.createHash('sha256').update(JSON.stringify(value)).digest('hex');
}

/** Runs a command, its output into logFile; throws with the log's tail when it fails. */
function runLogged(cmd, args, { env, cwd, logFile }) {
  const r = spawnSync(cmd, args, { env: { ...process.env, ...env }, cwd, encoding: 'utf8', maxBuffer: 64 << 20 });
  fs.writeFileSync(logFile, `$ ${cmd} ${args.join(' ')}\n${r.stdout ?? ''}${r.stderr ?? ''}`);
  if (r.error) throw new Error(`${cmd}: ${r.error.message}`);
  if (r.status !== 0) {
    const tail = `${r.stdout ?? ''}${r.stderr ?? ''}`.trim().split('\n').slice(-5).join(' | ');
    throw new Error(`${path.basename(cmd)} exited ${r.status ?? r.signal}: ${tail} (log: ${logFile})`);
  }
  return r.stdout;
}

/**
 * Returns cacheDir/<name>-<hash>.<ext>, building it with build(outPath) when missing.
 * Older versions of the same layer are removed. stats = { bytes, unpackedBytes, files }.
 */
function cachedLayer({ cacheDir, name, ext, inputs, build }) {
  fs.mkdirSync(cacheDir, { recursive: true });
  const hash = digestOf(inputs).slice(0, 16);
  const out = path.join(cacheDir, `${name}-${hash}.${ext}`);
  let hit = fs.existsSync(out);
  if (!hit) {
    for (const f of fs.readdirSync(cacheDir)) {
      if (f.startsWith(`${name}-`)) fs.rmSync(path.join(cacheDir, f), { force: true });
    }
    build(out);
    if (!fs.existsSync(out)) throw new Error(`${name}: the build made no ${out}`);
  }
  const stats = { bytes: fs.statSync(out).size };
  const statsFile = `${out}.stats`;
  if (fs.existsSync(statsFile)) {
    const [unpacked, files] = fs.readFileSync(statsFile, 'utf8').trim().split(/\s+/).map(Number);
    stats.unpackedBytes = unpacked;
    stats.files = files;
  }
  return { path: out, hit, hash, stats };
}

/** Times named host stages; a failing stage is recorded and rethrown. */
class Stages {
  constructor(print) {
    this.rows = [];
    this.print = print;
  }

  async run(name, fn) {
    const t0 = process.hrtime.bigint();
    this.print(`stage ${name} ...`);
    try {
      const value = await fn();
      const seconds = Number(process.hrtime.bigint() - t0) / 1e9;
      const note = value && typeof value === 'object' && 'note' in value ? value.note : '';
      this.rows.push({ name, status: 'PASS', seconds, detail: note });
      this.print(`stage ${name} PASS ${seconds.toFixed(1)}s${note ? ` (${note})` : ''}`);
      return value;
    } catch (err) {
      const seconds = Number(process.hrtime.bigint() - t0) / 1e9;
      this.rows.push({ name, status: 'FAIL', seconds, detail: err.message });
      this.print(`stage ${name} FAIL ${seconds.toFixed(1)}s: ${err.message}`);
      throw err;
    }
  }
}

module.exports = { fileDigest, treeDigest, digestOf, runLogged, cachedLayer, Stages };
