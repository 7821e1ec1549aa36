// Real concurrency: the frontend runs on a worker thread, the backend here, over one
// SharedArrayBuffer ring, each end reading and writing while the other does. Every request must
// arrive intact once and every response must come back intact once, in order.
import * as path from 'node:path';
import { Worker } from 'node:worker_threads';
import { BackRing, BlkifRequestCopy, XEN_PAGE_SIZE, X86_32_ABI, X86_64_ABI, type BlkifAbi } from '../../src/blkif';

const BACK = 0;
const FRONT = 1;
const READY = 2;
const ERRORS = 3;
const SEEN = 4;

async function runPair(abi: BlkifAbi, pages: number, count: number): Promise<{ consumed: number; badRequests: number }> {
  const ring = new SharedArrayBuffer(pages * XEN_PAGE_SIZE);
  const bells = new SharedArrayBuffer(64);
  const bell = new Int32Array(bells);
  const worker = new Worker(path.join(__dirname, 'support', 'front-worker.js'), {
    workerData: { ring, bells, abiName: abi.name, pages, count },
  });
  const exited = new Promise<number>((resolve, reject) => {
    worker.once('error', reject);
    worker.once('exit', resolve);
  });
  try {
    while (Atomics.load(bell, READY) === 0) Atomics.wait(bell, READY, 0, 50);
    const back = BackRing.attach(new Uint8Array(ring), abi, pages);
    const copy = new BlkifRequestCopy();
    let consumed = 0;
    let badRequests = 0;
    const deadline = Date.now() + 60_000;
    while (Atomics.load(bell, SEEN) < count && Date.now() < deadline) {
      let n = 0;
      while (back.consumeRequest(copy)) {
        const id = consumed++;
        const ok =
          copy.idLo === id &&
          copy.idHi === (~id >>> 0) &&
          copy.sectorLo === (id * 8) >>> 0 &&
          copy.nrSegments === 1 &&
          copy.segGref[0] === id &&
          copy.segLast[0] === 7 &&
          copy.handle === 0x51;
        if (!ok) badRequests++;
        back.writeResponse(back.rspProdPvt + n, copy.idLo, copy.idHi, copy.operation, (id % 3) - 1);
        n++;
      }
      if (n > 0 && back.publishResponses(n)) {
        Atomics.add(bell, FRONT, 1);
        Atomics.notify(bell, FRONT);
      }
      if (back.fault) throw new Error(back.fault.message);
      if (n === 0) {
        const v = Atomics.load(bell, BACK);
        if (!back.finalCheckForRequests()) Atomics.wait(bell, BACK, v, 50);
      }
    }
    return { consumed, badRequests };
  } finally {
    // A stuck frontend (lost request or response) is stopped rather than waited for.
    if (Atomics.load(bell, SEEN) < count) await worker.terminate();
    const code = await exited;
    expect(code).toBe(0);
    expect(Atomics.load(bell, ERRORS)).toBe(0);
    expect(Atomics.load(bell, SEEN)).toBe(count);
  }
}

describe('rings across threads', () => {
  it.each([
    ['x86_64, one page', X86_64_ABI, 1],
    ['x86_32, four pages', X86_32_ABI, 4],
  ])('%s: 100000 requests answered exactly once, intact', async (_n, abi, pages) => {
    const r = await runPair(abi, pages, 100_000);
    expect(r.consumed).toBe(100_000);
    expect(r.badRequests).toBe(0);
  });
});
