// The wire messages as plain values: what one ring slot held when it was copied, or what a
// response slot will hold. Reusable objects (one per slot or per loop), so that decoding a
// request allocates nothing. u64 fields are kept as two u32 halves: no BigInt on the hot path.
import {
  BLKIF_MAX_INDIRECT_PAGES_PER_REQUEST,
  BLKIF_MAX_SEGMENTS_PER_REQUEST,
} from './constants';

/**
 * A private copy of one request slot. Which fields are meaningful depends on `operation`:
 * read/write/barrier/flush use nrSegments, handle, sector and the segments; discard uses flag,
 * handle, sector and nrSectors; indirect uses indirectOp, nrSegments (u16), sector, handle and
 * indirectGrefs; any other operation carries only its id. Fields a layout does not have are 0.
 */
export class BlkifRequestCopy {
  operation = 0;
  /** u8 for direct requests, u16 for indirect ones. */
  nrSegments = 0;
  handle = 0;
  idLo = 0;
  idHi = 0;
  sectorLo = 0;
  sectorHi = 0;
  /** Discard: BLKIF_DISCARD_SECURE or 0. */
  flag = 0;
  nrSectorsLo = 0;
  nrSectorsHi = 0;
  indirectOp = 0;
  readonly indirectGrefs = new Uint32Array(BLKIF_MAX_INDIRECT_PAGES_PER_REQUEST);
  /** Segments actually copied: min(nrSegments, 11) for direct requests, else 0. */
  segCount = 0;
  readonly segGref = new Uint32Array(BLKIF_MAX_SEGMENTS_PER_REQUEST);
  readonly segFirst = new Uint8Array(BLKIF_MAX_SEGMENTS_PER_REQUEST);
  readonly segLast = new Uint8Array(BLKIF_MAX_SEGMENTS_PER_REQUEST);

  /** Every field back to 0. */
  clear(): void {
    this.operation = 0;
    this.nrSegments = 0;
    this.handle = 0;
    this.idLo = 0;
    this.idHi = 0;
    this.sectorLo = 0;
    this.sectorHi = 0;
    this.flag = 0;
    this.nrSectorsLo = 0;
    this.nrSectorsHi = 0;
    this.indirectOp = 0;
    this.indirectGrefs.fill(0);
    this.segCount = 0;
    this.segGref.fill(0);
    this.segFirst.fill(0);
    this.segLast.fill(0);
  }

  copyFrom(o: BlkifRequestCopy): void {
    this.operation = o.operation;
    this.nrSegments = o.nrSegments;
    this.handle = o.handle;
    this.idLo = o.idLo;
    this.idHi = o.idHi;
    this.sectorLo = o.sectorLo;
    this.sectorHi = o.sectorHi;
    this.flag = o.flag;
    this.nrSectorsLo = o.nrSectorsLo;
    this.nrSectorsHi = o.nrSectorsHi;
    this.indirectOp = o.indirectOp;
    this.indirectGrefs.set(o.indirectGrefs);
    this.segCount = o.segCount;
    this.segGref.set(o.segGref);
    this.segFirst.set(o.segFirst);
    this.segLast.set(o.segLast);
  }

  get id(): bigint {
    return joinU64(this.idLo, this.idHi);
  }

  set id(v: bigint) {
    this.idLo = lowU32(v);
    this.idHi = highU32(v);
  }

  get sector(): bigint {
    return joinU64(this.sectorLo, this.sectorHi);
  }

  set sector(v: bigint) {
    this.sectorLo = lowU32(v);
    this.sectorHi = highU32(v);
  }

  get nrSectors(): bigint {
    return joinU64(this.nrSectorsLo, this.nrSectorsHi);
  }

  set nrSectors(v: bigint) {
    this.nrSectorsLo = lowU32(v);
    this.nrSectorsHi = highU32(v);
  }
}

/** One response slot. */
export class BlkifResponseCopy {
  idLo = 0;
  idHi = 0;
  operation = 0;
  /** i16 on the wire. */
  status = 0;

  get id(): bigint {
    return joinU64(this.idLo, this.idHi);
  }
}

export function joinU64(lo: number, hi: number): bigint {
  return (BigInt(hi >>> 0) << 32n) | BigInt(lo >>> 0);
}

export function lowU32(v: bigint): number {
  return Number(BigInt.asUintN(32, v));
}

export function highU32(v: bigint): number {
  return Number(BigInt.asUintN(32, v >> 32n));
}
