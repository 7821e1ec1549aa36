// The frontend of the cross-thread ring test, on its own thread: produces `count` requests and
// checks every response, over a SharedArrayBuffer ring shared with the test's backend.
'use strict';
require('./ts-require');
const { workerData } = require('node:worker_threads');
const blkif = require('../../../src/blkif/index.ts');

const { ring, bells, abiName, pages, count } = workerData;
const abi = blkif.abiFor(abiName);
const mem = new Uint8Array(ring);
const bell = new Int32Array(bells);
const BACK = 0;
const FRONT = 1;
const ERRORS = 3;
const SEEN = 4;

const front = blkif.FrontRing.init(mem, abi, pages);
Atomics.store(bell, 2, 1); // ring initialised: the backend may attach
Atomics.notify(bell, 2);
const req = new blkif.BlkifRequestCopy();
const rsp = new blkif.BlkifResponseCopy();
let produced = 0;
let seen = 0;

function fail() {
  Atomics.add(bell, ERRORS, 1);
}

while (seen < count) {
  let wrote = 0;
  while (produced < count && front.freeRequests() > 0 && wrote < 7) {
    const id = produced++;
    req.operation = id % 2 === 0 ? blkif.BLKIF_OP_READ : blkif.BLKIF_OP_WRITE;
    req.nrSegments = 1;
    req.segCount = 1;
    req.handle = 0x51;
    req.idLo = id;
    req.idHi = ~id >>> 0;
    req.sectorLo = (id * 8) >>> 0;
    req.sectorHi = 0;
    req.segGref[0] = id;
    req.segFirst[0] = 0;
    req.segLast[0] = 7;
    front.writeRequest(req);
    wrote++;
  }
  if (wrote > 0 && front.pushRequests()) {
    Atomics.add(bell, BACK, 1);
    Atomics.notify(bell, BACK);
  }
  let got = 0;
  while (front.consumeResponse(rsp)) {
    const id = seen++;
    got++;
    if (rsp.idLo !== id || rsp.idHi !== (~id >>> 0) || rsp.status !== (id % 3) - 1) fail();
    if (rsp.operation !== (id % 2 === 0 ? blkif.BLKIF_OP_READ : blkif.BLKIF_OP_WRITE)) fail();
  }
  Atomics.store(bell, SEEN, seen);
  if (got === 0 && wrote === 0 && !front.finalCheckForResponses()) {
    const v = Atomics.load(bell, FRONT);
    if (!front.finalCheckForResponses()) Atomics.wait(bell, FRONT, v, 50);
  }
  if (front.fault) {
    fail();
    break;
  }
}
