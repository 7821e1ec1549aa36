// fast-check generators for wire messages.
import fc from 'fast-check';
import {
  BLKIF_MAX_SEGMENTS_PER_REQUEST,
  BLKIF_OP_DISCARD,
  BLKIF_OP_FLUSH_DISKCACHE,
  BLKIF_OP_INDIRECT,
  BLKIF_OP_READ,
  BLKIF_OP_WRITE,
  BLKIF_OP_WRITE_BARRIER,
  BlkifRequestCopy,
} from '../../../src/blkif';

const u32 = fc.integer({ min: 0, max: 0xffffffff });
const u16 = fc.integer({ min: 0, max: 0xffff });
const u8 = fc.integer({ min: 0, max: 0xff });

export interface RequestFields {
  operation: number;
  nrSegments: number;
  handle: number;
  idLo: number;
  idHi: number;
  sectorLo: number;
  sectorHi: number;
  flag: number;
  nrSectorsLo: number;
  nrSectorsHi: number;
  indirectOp: number;
  indirectGrefs: number[];
  segs: Array<[number, number, number]>;
}

const seg = fc.tuple(u32, u8, u8);

const rw = fc.record({
  operation: fc.constantFrom(BLKIF_OP_READ, BLKIF_OP_WRITE, BLKIF_OP_WRITE_BARRIER, BLKIF_OP_FLUSH_DISKCACHE),
  nrSegments: u8,
  handle: u16,
  idLo: u32,
  idHi: u32,
  sectorLo: u32,
  sectorHi: u32,
  flag: fc.constant(0),
  nrSectorsLo: fc.constant(0),
  nrSectorsHi: fc.constant(0),
  indirectOp: fc.constant(0),
  indirectGrefs: fc.constant([] as number[]),
  segs: fc.array(seg, { minLength: BLKIF_MAX_SEGMENTS_PER_REQUEST, maxLength: BLKIF_MAX_SEGMENTS_PER_REQUEST }),
});

const discard = fc.record({
  operation: fc.constant(BLKIF_OP_DISCARD),
  nrSegments: fc.constant(0),
  handle: u16,
  idLo: u32,
  idHi: u32,
  sectorLo: u32,
  sectorHi: u32,
  flag: u8,
  nrSectorsLo: u32,
  nrSectorsHi: u32,
  indirectOp: fc.constant(0),
  indirectGrefs: fc.constant([] as number[]),
  segs: fc.constant([] as Array<[number, number, number]>),
});

const indirect = fc.record({
  operation: fc.constant(BLKIF_OP_INDIRECT),
  nrSegments: u16,
  handle: u16,
  idLo: u32,
  idHi: u32,
  sectorLo: u32,
  sectorHi: u32,
  flag: fc.constant(0),
  nrSectorsLo: fc.constant(0),
  nrSectorsHi: fc.constant(0),
  indirectOp: u8,
  indirectGrefs: fc.array(u32, { minLength: 8, maxLength: 8 }),
  segs: fc.constant([] as Array<[number, number, number]>),
});

const other = fc.record({
  operation: fc.integer({ min: 7, max: 255 }).chain((o) => fc.constantFrom(o, 4)),
  nrSegments: fc.constant(0),
  handle: fc.constant(0),
  idLo: u32,
  idHi: u32,
  sectorLo: fc.constant(0),
  sectorHi: fc.constant(0),
  flag: fc.constant(0),
  nrSectorsLo: fc.constant(0),
  nrSectorsHi: fc.constant(0),
  indirectOp: fc.constant(0),
  indirectGrefs: fc.constant([] as number[]),
  segs: fc.constant([] as Array<[number, number, number]>),
});

/** Any request a frontend could write, in the layout its operation names. */
export const anyRequest: fc.Arbitrary<RequestFields> = fc.oneof(rw, discard, indirect, other);

export function toCopy(f: RequestFields, out = new BlkifRequestCopy()): BlkifRequestCopy {
  out.clear();
  out.operation = f.operation;
  out.nrSegments = f.nrSegments;
  out.handle = f.handle;
  out.idLo = f.idLo;
  out.idHi = f.idHi;
  out.sectorLo = f.sectorLo;
  out.sectorHi = f.sectorHi;
  out.flag = f.flag;
  out.nrSectorsLo = f.nrSectorsLo;
  out.nrSectorsHi = f.nrSectorsHi;
  out.indirectOp = f.indirectOp;
  f.indirectGrefs.forEach((g, i) => (out.indirectGrefs[i] = g));
  out.segCount = Math.min(f.nrSegments, f.segs.length);
  f.segs.forEach(([g, first, last], i) => {
    out.segGref[i] = g;
    out.segFirst[i] = first;
    out.segLast[i] = last;
  });
  return out;
}

/** The fields a decoder must reproduce for this request (segments: only the copied ones). */
export function meaningful(r: BlkifRequestCopy): Record<string, unknown> {
  const base = {
    operation: r.operation,
    nrSegments: r.nrSegments,
    handle: r.handle,
    idLo: r.idLo,
    idHi: r.idHi,
    sectorLo: r.sectorLo,
    sectorHi: r.sectorHi,
    flag: r.flag,
    nrSectorsLo: r.nrSectorsLo,
    nrSectorsHi: r.nrSectorsHi,
    indirectOp: r.indirectOp,
    segCount: r.segCount,
    segs: Array.from({ length: r.segCount }, (_, i) => [r.segGref[i], r.segFirst[i], r.segLast[i]]),
  };
  return r.operation === BLKIF_OP_INDIRECT ? { ...base, indirectGrefs: Array.from(r.indirectGrefs) } : base;
}
