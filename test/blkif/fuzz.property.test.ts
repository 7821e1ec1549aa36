// A hostile frontend: random slot bytes and random header indexes, changed at any moment. The
// back ring and the request parser must never throw and never touch memory outside the ring:
// the ring sits between guard bytes in a larger buffer, and its DataView is bounded to the ring
// (a read outside would throw, which fails the property).
import fc from 'fast-check';
import {
  BackRing,
  BLKIF_OP_INDIRECT,
  BlkifRequest,
  BlkifRequestCopy,
  parseIndirectSegments,
  parseRequest,
  ringEntries,
  statusForError,
  X86_32_ABI,
  X86_64_ABI,
  XEN_PAGE_SIZE,
  type BlkifDeviceLimits,
} from '../../src/blkif';

const GUARD = 4096;
const GUARD_BYTE = 0xc3;

type Op =
  | { t: 'header'; word: number; value: number }
  | { t: 'bump'; word: number; delta: number }
  | { t: 'scribble'; offset: number; bytes: Uint8Array }
  | { t: 'plant'; k: number; op: number; sector: number; nseg: number }
  | { t: 'consume'; n: number }
  | { t: 'answer'; n: number }
  | { t: 'final' }
  | { t: 'reattach' };

const u32 = fc.oneof(
  fc.integer({ min: 0, max: 0xffffffff }),
  fc.integer({ min: 0, max: 64 }),
  fc.integer({ min: 0xffffffc0, max: 0xffffffff }),
);

const op: fc.Arbitrary<Op> = fc.oneof(
  { arbitrary: fc.record({ t: fc.constant('header' as const), word: fc.integer({ min: 0, max: 15 }), value: u32 }), weight: 1 },
  fc.record({ t: fc.constant('bump' as const), word: fc.integer({ min: 0, max: 3 }), delta: fc.integer({ min: -4, max: 70 }) }),
  { arbitrary: fc.record({ t: fc.constant('bump' as const), word: fc.constant(0), delta: fc.integer({ min: 0, max: 40 }) }), weight: 4 },
  { arbitrary: fc.record({ t: fc.constant('bump' as const), word: fc.constant(0), delta: fc.integer({ min: 0, max: 3 }) }), weight: 4 },
  fc.record({
    t: fc.constant('scribble' as const),
    offset: fc.nat(),
    bytes: fc.uint8Array({ minLength: 1, maxLength: 256 }),
  }),
  {
    weight: 6,
    arbitrary: fc.record({
    t: fc.constant('plant' as const),
    k: fc.oneof(fc.constant(0), fc.integer({ min: 0, max: 8 })),
    op: fc.constantFrom(0, 1, 3, 5, 6),
    sector: fc.oneof(fc.integer({ min: 0, max: 1 << 19 }), fc.integer({ min: 0, max: (1 << 20) + 8 })),
    nseg: fc.oneof(fc.integer({ min: 1, max: 11 }), fc.integer({ min: 0, max: 12 })),
  }),
  },
  { arbitrary: fc.record({ t: fc.constant('consume' as const), n: fc.integer({ min: 1, max: 600 }) }), weight: 3 },
  { arbitrary: fc.record({ t: fc.constant('answer' as const), n: fc.integer({ min: 1, max: 600 }) }), weight: 3 },
  fc.record({ t: fc.constant('final' as const) }),
  fc.record({ t: fc.constant('reattach' as const) }),
);

const limits: BlkifDeviceLimits = {
  sectors: 1 << 20,
  sectorSize: 512,
  readOnly: false,
  flush: true,
  barrier: true,
  discard: true,
  discardSecure: false,
  maxIndirectSegments: 256,
};

function fillPseudoRandom(buf: Uint8Array, seed: number): void {
  let x = seed | 1;
  for (let i = 0; i < buf.length; i++) {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    buf[i] = x & 0xff;
  }
}

function firstChangedGuard(all: Uint8Array, ringBytes: number): number {
  for (let i = 0; i < GUARD; i++) if (all[i] !== GUARD_BYTE) return i;
  for (let i = GUARD + ringBytes; i < all.length; i++) if (all[i] !== GUARD_BYTE) return i;
  return -1;
}

describe('back ring under a hostile frontend', () => {
  it('never throws, never overruns the ring, never answers a slot twice', () => {
    const stats = { consumed: 0, valid: 0, answered: 0, faults: 0 };
    fc.assert(
      fc.property(
        fc.constantFrom(X86_64_ABI, X86_32_ABI),
        fc.constantFrom(1, 2, 4, 8, 16),
        fc.integer(),
        fc.array(op, { minLength: 20, maxLength: 100, size: 'max' }),
        (abi, pages, seed, ops) => {
          const ringBytes = pages * XEN_PAGE_SIZE;
          const all = new Uint8Array(GUARD + ringBytes + GUARD).fill(GUARD_BYTE);
          const ring = all.subarray(GUARD, GUARD + ringBytes);
          fillPseudoRandom(ring, seed);
          const base = seed >>> 0;
          const hdr = new Uint32Array(ring.buffer, ring.byteOffset, 16);
          [hdr[0], hdr[1], hdr[2], hdr[3]] = [base, base + 1, base, base + 1];
          let back = BackRing.attach(ring, abi, pages);
          const copy = new BlkifRequestCopy();
          const req = new BlkifRequest(limits.maxIndirectSegments);
          const indirectPages = new Uint8Array(XEN_PAGE_SIZE);
          fillPseudoRandom(indirectPages, seed ^ 0x55);
          const queue: Array<[number, number, number, number]> = [];
          for (const o of ops) {
            switch (o.t) {
              case 'header':
                hdr[o.word] = o.value;
                break;
              case 'bump':
                hdr[o.word] = hdr[o.word] + o.delta;
                break;
              case 'scribble': {
                const at = o.offset % ringBytes;
                ring.set(o.bytes.subarray(0, ringBytes - at), at);
                break;
              }
              case 'plant': {
                // A well-formed request at req_prod, published as an honest frontend would.
                const r = new BlkifRequestCopy();
                r.operation = o.op;
                r.idLo = o.k;
                r.sector = BigInt(o.sector);
                r.nrSegments = o.nseg;
                r.segCount = Math.min(o.nseg, 11);
                r.segLast.fill(7);
                r.nrSectors = 8n;
                r.indirectOp = 0;
                if (o.op === BLKIF_OP_INDIRECT) r.nrSegments = o.nseg * 40;
                const slots = ringEntries(abi, pages);
                const at = 64 + ((hdr[0] + o.k) & (slots - 1)) * abi.entrySize;
                abi.encodeRequest(new DataView(ring.buffer, ring.byteOffset, ringBytes), at, r);
                if (o.k === 0) hdr[0] = hdr[0] + 1;
                break;
              }
              case 'consume':
                for (let i = 0; i < o.n && back.consumeRequest(copy); i++) {
                  const err = parseRequest(copy, limits, req);
                  let status = err === null ? 0 : statusForError(err);
                  if (err === null && req.indirect) {
                    const e2 = parseIndirectSegments(indirectPages, req, limits);
                    if (e2 !== null) status = statusForError(e2);
                  }
                  if (status === 0) {
                    expect(req.segmentsReady).toBe(true);
                    expect(req.sector + req.nrSectors).toBeLessThanOrEqual(limits.sectors);
                  }
                  if (copy.operation !== BLKIF_OP_INDIRECT) expect(req.operation).toBe(copy.operation);
                  queue.push([req.idLo, req.idHi, req.operation, status]);
                  stats.consumed++;
                  if (status === 0) stats.valid++;
                }
                expect(queue.length).toBe(back.unanswered);
                expect(back.unanswered).toBeLessThanOrEqual(back.entries);
                break;
              case 'answer': {
                const k = Math.min(o.n, queue.length);
                const start = back.rspProdPvt;
                for (let j = 0; j < k; j++) back.writeResponse(start + j, ...queue[j]);
                back.publishResponses(k);
                stats.answered += k;
                queue.splice(0, k);
                break;
              }
              case 'final':
                back.finalCheckForRequests();
                break;
              case 'reattach':
                back = BackRing.attach(ring, abi, pages);
                queue.length = 0;
                break;
            }
          }
          if (back.fault !== null) stats.faults++;
          expect(firstChangedGuard(all, ringBytes)).toBe(-1);
        },
      ),
      { numRuns: 200 },
    );
    // The runs did exercise every path: consumption, valid and refused requests, faults.
    expect(stats.consumed).toBeGreaterThan(1000);
    expect(stats.valid).toBeGreaterThan(0);
    expect(stats.consumed - stats.valid).toBeGreaterThan(0);
    expect(stats.answered).toBeGreaterThan(0);
    expect(stats.faults).toBeGreaterThan(0);
  });
});
