'use strict';
// usage: node vbd-placeholder.js SOCKET
// A placeholder vbd backend for the harness, not the daemon: it answers the backend side only
// far enough to watch blkfront negotiate. For each backend/vbd device libxl creates it writes
// what QEMU's realize writes (disk facts, max-ring-page-order, hotplug-status) and InitWait,
// then logs every frontend state with the frontend's keys; Closing gets Closed.
// Log lines start with a word the dom0 steps grep for: WATCHING BACKEND FRONTEND CLOSED
// REMOVED ERROR.
const fs = require('node:fs');
const { connect } = require('./xs-wire');

const BE_ROOT = '/local/domain/0/backend/vbd';
const devices = new Map(); // backend path -> { frontend, initWait, feState, removed }

function log(line) {
  process.stdout.write(`${line}\n`);
}

async function readDir(xs, path) {
  const keys = {};
  for (const k of await xs.tryDirectory(path)) {
    const v = await xs.tryRead(`${path}/${k}`);
    if (v !== undefined) keys[k] = v;
  }
  return keys;
}

async function toInitWait(xs, bePath) {
  const params = await xs.read(`${bePath}/params`);
  const bytes = fs.statSync(params).size;
  const mode = await xs.tryRead(`${bePath}/mode`);
  const facts = {
    'feature-flush-cache': '1',
    info: mode === 'r' ? '4' : '0',
    'sector-size': '512',
    sectors: String(Math.floor(bytes / 512)),
    'max-ring-page-order': '4',
    'hotplug-status': 'connected',
  };
  for (const [k, v] of Object.entries(facts)) await xs.write(`${bePath}/${k}`, v);
  await xs.write(`${bePath}/state`, '2');
  log(`BACKEND ${bePath} state=2 keys=${JSON.stringify(await readDir(xs, bePath))}`);
}

async function scanBackends(xs) {
  for (const domid of await xs.tryDirectory(BE_ROOT)) {
    for (const devid of await xs.tryDirectory(`${BE_ROOT}/${domid}`)) {
      const bePath = `${BE_ROOT}/${domid}/${devid}`;
      if (!devices.has(bePath)) devices.set(bePath, { initWait: false, feState: undefined });
    }
  }
  for (const [bePath, dev] of devices) {
    if (dev.removed) continue;
    const state = await xs.tryRead(`${bePath}/state`);
    if (state === undefined) {
      if ((await xs.tryDirectory(bePath)).length === 0) {
        dev.removed = true;
        log(`REMOVED ${bePath}`);
      }
      continue;
    }
    if (!dev.frontend) {
      dev.frontend = await xs.tryRead(`${bePath}/frontend`);
      if (dev.frontend) await xs.watch(dev.frontend, `fe:${bePath}`);
    }
    const online = await xs.tryRead(`${bePath}/online`);
    if (state === '1' && online === '1' && !dev.initWait) {
      dev.initWait = true;
      await toInitWait(xs, bePath);
    } else if (state === '5') {
      await xs.write(`${bePath}/state`, '6');
      log(`CLOSED ${bePath} (toolstack asked Closing)`);
    }
  }
}

async function scanFrontend(xs, bePath) {
  const dev = devices.get(bePath);
  if (!dev || !dev.frontend) return;
  const keys = await readDir(xs, dev.frontend);
  const state = keys.state ?? 'gone';
  if (state === dev.feState) return;
  dev.feState = state;
  log(`FRONTEND ${dev.frontend} state=${state} keys=${JSON.stringify(keys)}`);
}

async function main([socketPath]) {
  if (!socketPath) {
    process.stderr.write('usage: vbd-placeholder.js SOCKET\n');
    return 2;
  }
  const xs = await connect(socketPath);
  let queue = Promise.resolve();
  const serially = (fn) => {
    queue = queue.then(fn).catch((err) => log(`ERROR ${err.message}`));
  };
  xs.onWatch = (path, token) => {
    if (token === 'be') serially(() => scanBackends(xs));
    else if (token.startsWith('fe:')) serially(() => scanFrontend(xs, token.slice(3)));
  };
  await xs.watch(BE_ROOT, 'be');
  log(`WATCHING ${BE_ROOT}`);
  await xs.closed;
  log('ERROR xenstore connection closed');
  return 1;
}

process.on('SIGTERM', () => process.exit(0));
main(process.argv.slice(2)).then(
  (code) => (process.exitCode = code),
  (err) => {
    log(`ERROR ${err.message}`);
    process.exitCode = 1;
  },
);
