import fc from 'fast-check';
import {
  BLKIF_DISCARD_SECURE,
  BLKIF_OP_DISCARD,
  BLKIF_OP_FLUSH_DISKCACHE,
  BLKIF_OP_INDIRECT,
  BLKIF_OP_READ,
  BLKIF_OP_RESERVED_1,
  BLKIF_OP_WRITE,
  BLKIF_OP_WRITE_BARRIER,
  BLKIF_RSP_EOPNOTSUPP,
  BLKIF_RSP_ERROR,
  BlkifRequest,
  BlkifRequestCopy,
  BlkifRequestError,
  encodeIndirectSegments,
  parseIndirectSegments,
  parseRequest,
  statusForError,
  type BlkifDeviceLimits,
  type BlkifRequestReason,
} from '../../src/blkif';
import { anyRequest, toCopy } from './support/arbitraries';

const LIMITS: BlkifDeviceLimits = {
  sectors: 2048,
  sectorSize: 512,
  readOnly: false,
  flush: true,
  barrier: true,
  discard: true,
  discardSecure: true,
  maxIndirectSegments: 256,
};

function rw(op: number, sector: number, segs: Array<[number, number]>, id = 42): BlkifRequestCopy {
  const c = new BlkifRequestCopy();
  c.operation = op;
  c.id = BigInt(id) | (7n << 40n);
  c.sector = BigInt(sector);
  c.nrSegments = segs.length;
  c.segCount = Math.min(segs.length, 11);
  segs.slice(0, 11).forEach(([first, last], i) => {
    c.segGref[i] = 1000 + i;
    c.segFirst[i] = first;
    c.segLast[i] = last;
  });
  return c;
}

function discard(sector: bigint, count: bigint, flag = 0): BlkifRequestCopy {
  const c = new BlkifRequestCopy();
  c.operation = BLKIF_OP_DISCARD;
  c.id = 9n;
  c.sector = sector;
  c.nrSectors = count;
  c.flag = flag;
  return c;
}

function indirect(op: number, sector: number, nr: number): BlkifRequestCopy {
  const c = new BlkifRequestCopy();
  c.operation = BLKIF_OP_INDIRECT;
  c.indirectOp = op;
  c.id = 77n;
  c.sector = BigInt(sector);
  c.nrSegments = nr;
  for (let i = 0; i < 8; i++) c.indirectGrefs[i] = 500 + i;
  return c;
}

function parse(c: BlkifRequestCopy, limits: Partial<BlkifDeviceLimits> = {}, out = new BlkifRequest(256)) {
  const err = parseRequest(c, { ...LIMITS, ...limits }, out);
  return { err, out };
}

function reasonOf(c: BlkifRequestCopy, limits: Partial<BlkifDeviceLimits> = {}): BlkifRequestReason | null {
  return parse(c, limits).err?.reason ?? null;
}

const full: Array<[number, number]> = [[0, 7]];

describe('parseRequest: read and write', () => {
  it('a valid read: kind, id, sector, segments and total sectors', () => {
    const { err, out } = parse(rw(BLKIF_OP_READ, 100, [[0, 7], [2, 3], [7, 7]]));
    expect(err).toBeNull();
    expect(out.kind).toBe('read');
    expect([out.idLo, out.idHi]).toEqual([42, 7 << 8]);
    expect(out.operation).toBe(BLKIF_OP_READ);
    expect(out.sector).toBe(100);
    expect(out.nrSegments).toBe(3);
    expect(out.nrSectors).toBe(8 + 2 + 1);
    expect(out.segmentsReady).toBe(true);
    expect(Array.from(out.segGref.subarray(0, 3))).toEqual([1000, 1001, 1002]);
    expect([out.segOffset(1), out.segLength(1)]).toEqual([1024, 1024]);
    expect([out.segOffset(2), out.segLength(2)]).toEqual([3584, 512]);
  });

  it('segment count: 1..11', () => {
    expect(reasonOf(rw(BLKIF_OP_WRITE, 0, []))).toBe('bad-segment-count');
    expect(reasonOf(rw(BLKIF_OP_WRITE, 0, new Array(11).fill([0, 7])))).toBeNull();
    expect(reasonOf(rw(BLKIF_OP_WRITE, 0, new Array(12).fill([0, 7])))).toBe('bad-segment-count');
    const c = rw(BLKIF_OP_READ, 0, full);
    c.nrSegments = 255;
    expect(reasonOf(c)).toBe('bad-segment-count');
  });

  it('segments: first_sect <= last_sect <= 7', () => {
    expect(reasonOf(rw(BLKIF_OP_READ, 0, [[3, 2]]))).toBe('bad-segment');
    expect(reasonOf(rw(BLKIF_OP_READ, 0, [[0, 8]]))).toBe('bad-segment');
    expect(reasonOf(rw(BLKIF_OP_READ, 0, [[0, 7], [8, 8]]))).toBe('bad-segment');
    expect(reasonOf(rw(BLKIF_OP_READ, 0, [[255, 255]]))).toBe('bad-segment');
    expect(reasonOf(rw(BLKIF_OP_READ, 0, [[7, 7]]))).toBeNull();
  });

  it('sector range inside the image, overflow-safe', () => {
    expect(reasonOf(rw(BLKIF_OP_READ, 2040, full))).toBeNull(); // ends exactly at the end
    expect(reasonOf(rw(BLKIF_OP_READ, 2041, full))).toBe('out-of-range');
    expect(reasonOf(rw(BLKIF_OP_READ, 2048, [[0, 0]]))).toBe('out-of-range');
    expect(reasonOf(rw(BLKIF_OP_READ, 2 ** 53 - 1, full))).toBe('out-of-range');
    const huge = rw(BLKIF_OP_READ, 0, full);
    huge.sector = 0xfffffffffffffff8n; // sector + 8 wraps to 0 in u64
    expect(reasonOf(huge)).toBe('out-of-range');
    huge.sector = 1n << 53n;
    expect(reasonOf(huge)).toBe('out-of-range');
  });

  it('writes to a read-only device are refused, reads are not', () => {
    expect(reasonOf(rw(BLKIF_OP_WRITE, 0, full), { readOnly: true })).toBe('read-only');
    expect(reasonOf(rw(BLKIF_OP_READ, 0, full), { readOnly: true })).toBeNull();
  });

  it('alignment to a 4096-byte logical sector', () => {
    const l = { sectorSize: 4096 };
    expect(reasonOf(rw(BLKIF_OP_READ, 8, full), l)).toBeNull();
    expect(reasonOf(rw(BLKIF_OP_READ, 4, full), l)).toBe('misaligned');
    expect(reasonOf(rw(BLKIF_OP_READ, 8, [[0, 3]]), l)).toBe('misaligned');
    expect(reasonOf(rw(BLKIF_OP_READ, 8, [[4, 7]]), l)).toBe('misaligned');
  });
});

describe('parseRequest: flush and barrier', () => {
  it('a bare flush carries no data and no sector', () => {
    const c = rw(BLKIF_OP_FLUSH_DISKCACHE, 0, []);
    c.sector = 0xffffffffffffffffn; // ignored without segments
    const { err, out } = parse(c);
    expect(err).toBeNull();
    expect([out.kind, out.nrSegments, out.nrSectors]).toEqual(['flush', 0, 0]);
  });

  it('a flush with segments is a write: range and read-only checks apply', () => {
    const { err, out } = parse(rw(BLKIF_OP_FLUSH_DISKCACHE, 16, [[0, 7]]));
    expect(err).toBeNull();
    expect([out.kind, out.nrSegments, out.nrSectors, out.sector]).toEqual(['flush', 1, 8, 16]);
    expect(reasonOf(rw(BLKIF_OP_FLUSH_DISKCACHE, 2047, full))).toBe('out-of-range');
    expect(reasonOf(rw(BLKIF_OP_FLUSH_DISKCACHE, 0, full), { readOnly: true })).toBe('read-only');
    expect(reasonOf(rw(BLKIF_OP_FLUSH_DISKCACHE, 0, []), { readOnly: true })).toBeNull();
  });

  it('flush and barrier not offered: EOPNOTSUPP', () => {
    const f = parse(rw(BLKIF_OP_FLUSH_DISKCACHE, 0, []), { flush: false });
    expect(f.err?.reason).toBe('unsupported-operation');
    expect(statusForError(f.err!)).toBe(BLKIF_RSP_EOPNOTSUPP);
    expect(f.out.operation).toBe(BLKIF_OP_FLUSH_DISKCACHE);
    expect(reasonOf(rw(BLKIF_OP_WRITE_BARRIER, 0, full), { barrier: false })).toBe('unsupported-operation');
    const b = parse(rw(BLKIF_OP_WRITE_BARRIER, 0, full));
    expect(b.err).toBeNull();
    expect(b.out.kind).toBe('barrier');
  });
});

describe('parseRequest: discard', () => {
  it('a valid discard, secure when offered', () => {
    const { err, out } = parse(discard(100n, 1948n));
    expect(err).toBeNull();
    expect([out.kind, out.sector, out.nrSectors, out.secure]).toEqual(['discard', 100, 1948, false]);
    const s = parse(discard(0n, 8n, BLKIF_DISCARD_SECURE));
    expect(s.err).toBeNull();
    expect(s.out.secure).toBe(true);
  });

  it('range checks with u64 counts', () => {
    expect(reasonOf(discard(100n, 1949n))).toBe('out-of-range');
    expect(reasonOf(discard(2048n, 0n))).toBeNull();
    expect(reasonOf(discard(2049n, 0n))).toBe('out-of-range');
    expect(reasonOf(discard(8n, 0xfffffffffffffff8n))).toBe('out-of-range');
    expect(reasonOf(discard(8n, 1n << 40n))).toBe('out-of-range');
  });

  it('not offered, secure not offered: EOPNOTSUPP; read-only: ERROR', () => {
    const a = parse(discard(0n, 8n), { discard: false }).err!;
    expect([a.reason, statusForError(a)]).toEqual(['unsupported-operation', BLKIF_RSP_EOPNOTSUPP]);
    const b = parse(discard(0n, 8n, BLKIF_DISCARD_SECURE), { discardSecure: false }).err!;
    expect([b.reason, statusForError(b)]).toEqual(['secure-discard-unsupported', BLKIF_RSP_EOPNOTSUPP]);
    const c = parse(discard(0n, 8n), { readOnly: true }).err!;
    expect([c.reason, statusForError(c)]).toEqual(['read-only', BLKIF_RSP_ERROR]);
  });
});

describe('parseRequest: indirect', () => {
  it('validates the header; segments come from the pages', () => {
    const { err, out } = parse(indirect(BLKIF_OP_WRITE, 64, 513), { maxIndirectSegments: 1024 }, new BlkifRequest(1024));
    expect(err).toBeNull();
    expect([out.kind, out.operation, out.indirect, out.segmentsReady]).toEqual(['write', BLKIF_OP_WRITE, true, false]);
    expect([out.nrSegments, out.indirectPages]).toEqual([513, 2]);
    expect(Array.from(out.indirectGrefs.subarray(0, 2))).toEqual([500, 501]);
  });

  it('the response echoes indirect_op, as Linux blkback does', () => {
    expect(parse(indirect(BLKIF_OP_READ, 0, 1)).out.operation).toBe(BLKIF_OP_READ);
    const bad = parse(indirect(BLKIF_OP_DISCARD, 0, 1));
    expect(bad.err?.reason).toBe('bad-indirect-operation');
    expect(statusForError(bad.err!)).toBe(BLKIF_RSP_ERROR);
    expect(bad.out.operation).toBe(BLKIF_OP_DISCARD);
  });

  it('segment count 1..max, max from the device and the request capacity', () => {
    expect(reasonOf(indirect(BLKIF_OP_READ, 0, 0))).toBe('bad-segment-count');
    expect(reasonOf(indirect(BLKIF_OP_READ, 0, 256))).toBeNull();
    expect(reasonOf(indirect(BLKIF_OP_READ, 0, 257))).toBe('bad-segment-count');
    expect(reasonOf(indirect(BLKIF_OP_READ, 0, 4096), { maxIndirectSegments: 4096 })).toBe('bad-segment-count');
    const big = parse(indirect(BLKIF_OP_READ, 0, 4096), { maxIndirectSegments: 4096, sectors: 1 << 20 }, new BlkifRequest(4096));
    expect(big.err).toBeNull();
    expect(big.out.indirectPages).toBe(8);
  });

  it('segment arrays start at the direct maximum and grow to the request, never past capacity', () => {
    const out = new BlkifRequest(256);
    expect(out.segGref.length).toBe(11);
    expect(parse(indirect(BLKIF_OP_READ, 0, 12), {}, out).err).toBeNull();
    expect(out.segGref.length).toBeGreaterThanOrEqual(12);
    expect(parse(indirect(BLKIF_OP_READ, 0, 256), {}, out).err).toBeNull();
    expect([out.segGref.length, out.segFirst.length, out.segLast.length]).toEqual([256, 256, 256]);
    expect(parse(indirect(BLKIF_OP_READ, 0, 257), {}, out).err?.reason).toBe('bad-segment-count');
    expect(out.segGref.length).toBe(256);
  });

  it('not offered: EOPNOTSUPP; read-only write: ERROR; start past the end: ERROR', () => {
    const e = parse(indirect(BLKIF_OP_READ, 0, 1), { maxIndirectSegments: 0 }).err!;
    expect(statusForError(e)).toBe(BLKIF_RSP_EOPNOTSUPP);
    expect(reasonOf(indirect(BLKIF_OP_WRITE, 0, 1), { readOnly: true })).toBe('read-only');
    expect(reasonOf(indirect(BLKIF_OP_READ, 2048, 1))).toBe('out-of-range');
  });

  it('parseIndirectSegments decodes the descriptors and checks them', () => {
    const limits = { ...LIMITS };
    const { out } = parse(indirect(BLKIF_OP_READ, 0, 200));
    const pages = new Uint8Array(4096);
    const grefs = Array.from({ length: 200 }, (_, i) => 0xfff00000 + i);
    const first = Array.from({ length: 200 }, (_, i) => i % 4);
    const last = Array.from({ length: 200 }, () => 7);
    encodeIndirectSegments(pages, grefs, first, last, 200);
    expect(parseIndirectSegments(pages, out, limits)).toBeNull();
    expect(out.segmentsReady).toBe(true);
    expect(out.segGref[199]).toBe(0xfff00000 + 199);
    expect(out.nrSectors).toBe(first.reduce((s, f) => s + 8 - f, 0));

    const bad = parse(indirect(BLKIF_OP_READ, 0, 200)).out;
    last[150] = 8;
    encodeIndirectSegments(pages, grefs, first, last, 200);
    expect(parseIndirectSegments(pages, bad, limits)?.reason).toBe('bad-segment');
    expect(bad.segmentsReady).toBe(false);

    const far = parse(indirect(BLKIF_OP_READ, 1900, 200)).out;
    last[150] = 7;
    encodeIndirectSegments(pages, grefs, first, last, 200);
    expect(parseIndirectSegments(pages, far, limits)?.reason).toBe('out-of-range');

    const short = parse(indirect(BLKIF_OP_READ, 0, 200)).out;
    expect(parseIndirectSegments(pages.subarray(0, 8 * 199), short, limits)?.reason).toBe('short-indirect-pages');
  });
});

describe('parseRequest: other operations', () => {
  it.each([BLKIF_OP_RESERVED_1, 7, 200, 255])('operation %i: EOPNOTSUPP, id and operation echoed', (op) => {
    const c = new BlkifRequestCopy();
    c.operation = op;
    c.id = 0xabcdef0123456789n;
    const { err, out } = parse(c);
    expect(err).toBeInstanceOf(BlkifRequestError);
    expect(err?.reason).toBe('unknown-operation');
    expect(statusForError(err!)).toBe(BLKIF_RSP_EOPNOTSUPP);
    expect([out.operation, out.idLo, out.idHi]).toEqual([op, 0x23456789, 0xabcdef01]);
  });
});

describe('statusForError', () => {
  it('EOPNOTSUPP only for unsupported operations, ERROR for everything else', () => {
    const cases: Array<[BlkifRequestReason, number]> = [
      ['unknown-operation', -2],
      ['unsupported-operation', -2],
      ['secure-discard-unsupported', -2],
      ['bad-indirect-operation', -1],
      ['bad-segment-count', -1],
      ['bad-segment', -1],
      ['out-of-range', -1],
      ['read-only', -1],
      ['misaligned', -1],
      ['short-indirect-pages', -1],
    ];
    for (const [reason, status] of cases) expect(statusForError(new BlkifRequestError(reason, 'x'))).toBe(status);
  });
});

describe('parseRequest on anything', () => {
  const limitsArb = fc.record({
    sectors: fc.integer({ min: 0, max: 2 ** 40 }),
    sectorSize: fc.constantFrom(512, 4096),
    readOnly: fc.boolean(),
    flush: fc.boolean(),
    barrier: fc.boolean(),
    discard: fc.boolean(),
    discardSecure: fc.boolean(),
    maxIndirectSegments: fc.constantFrom(0, 32, 256),
  });

  it('never throws, always echoes the id, and accepts only requests inside the image', () => {
    const out = new BlkifRequest(256);
    fc.assert(
      fc.property(anyRequest, limitsArb, (f, limits) => {
        const copy = toCopy(f);
        const err = parseRequest(copy, limits, out);
        expect([out.idLo, out.idHi]).toEqual([copy.idLo, copy.idHi]);
        expect(out.operation).toBe(copy.operation === BLKIF_OP_INDIRECT ? copy.indirectOp : copy.operation);
        if (err === null) {
          expect(out.sector + out.nrSectors).toBeLessThanOrEqual(limits.sectors);
          if (limits.readOnly) expect(out.kind === 'read' || out.nrSegments === 0).toBe(true);
          for (let i = 0; out.segmentsReady && i < out.nrSegments; i++) {
            expect(out.segFirst[i]).toBeLessThanOrEqual(out.segLast[i]);
            expect(out.segLast[i]).toBeLessThanOrEqual(7);
          }
        }
      }),
      { numRuns: 3000 },
    );
  });
});
