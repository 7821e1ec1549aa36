// From a private request copy to a validated request, pure (no I/O). The dataplane keeps one
// BlkifRequest per ring slot and parses into it, so nothing is allocated per valid request.
import {
  BLKIF_DISCARD_SECURE,
  BLKIF_MAX_INDIRECT_PAGES_PER_REQUEST,
  BLKIF_MAX_SEGMENTS_PER_REQUEST,
  BLKIF_OP_DISCARD,
  BLKIF_OP_FLUSH_DISKCACHE,
  BLKIF_OP_INDIRECT,
  BLKIF_OP_READ,
  BLKIF_OP_WRITE,
  BLKIF_OP_WRITE_BARRIER,
  MAX_INDIRECT_SEGMENTS_WIRE,
  SECTOR_SIZE,
  SECTORS_PER_PAGE,
  SEGMENTS_PER_INDIRECT_PAGE,
} from './constants';
import { BlkifRequestError } from './errors';
import type { BlkifRequestCopy } from './messages';

/**
 * read, write: transfer the segments at `sector`.
 * flush: flush the image, then write the segments if there are any (QEMU's presync).
 * barrier: wait for earlier requests, flush, write the segments if any, flush again.
 * discard: drop nrSectors at `sector` (secure: BLKIF_DISCARD_SECURE).
 */
export type BlkifRequestKind = 'read' | 'write' | 'flush' | 'barrier' | 'discard';

/** What the device offers; requests are checked against it. */
export interface BlkifDeviceLimits {
  /** Size of the image in 512-byte sectors. */
  readonly sectors: number;
  /** Logical sector size in bytes (512, 4096...): requests must be aligned to it. */
  readonly sectorSize: number;
  readonly readOnly: boolean;
  /** feature-flush-cache offered. */
  readonly flush: boolean;
  /** feature-barrier offered. */
  readonly barrier: boolean;
  /** feature-discard offered. */
  readonly discard: boolean;
  /** discard-secure offered. */
  readonly discardSecure: boolean;
  /** feature-max-indirect-segments offered; 0 when indirect requests are not. */
  readonly maxIndirectSegments: number;
}

/** A request that passed validation (or, after an error, just enough to answer it). */
export class BlkifRequest {
  kind: BlkifRequestKind = 'read';
  /** Operation echoed in the response: the wire operation, indirect_op for indirect requests. */
  operation = 0;
  idLo = 0;
  idHi = 0;
  handle = 0;
  /** First 512-byte sector. */
  sector = 0;
  /** 512-byte sectors moved (sum of the segments) or discarded. */
  nrSectors = 0;
  secure = false;
  /** Segments are described in indirect pages (see parseIndirectSegments). */
  indirect = false;
  /** False for an indirect request until its pages were parsed. */
  segmentsReady = false;
  nrSegments = 0;
  /** Indirect pages holding the descriptors: ceil(nrSegments / 512). */
  indirectPages = 0;
  readonly indirectGrefs = new Uint32Array(BLKIF_MAX_INDIRECT_PAGES_PER_REQUEST);
  segGref: Uint32Array;
  segFirst: Uint8Array;
  segLast: Uint8Array;

  /**
   * capacity: the most segments this object may hold (the advertised indirect maximum). The
   * segment arrays start at the direct maximum and grow once on the first bigger request: a ring
   * of 512 slots would otherwise hold megabytes for indirect requests a guest may never send.
   */
  constructor(readonly capacity = BLKIF_MAX_SEGMENTS_PER_REQUEST) {
    const n = BLKIF_MAX_SEGMENTS_PER_REQUEST;
    this.segGref = new Uint32Array(n);
    this.segFirst = new Uint8Array(n);
    this.segLast = new Uint8Array(n);
  }

  /** Makes room for n segments (n <= capacity, checked by the parser). */
  reserve(n: number): void {
    if (n <= this.segGref.length) return;
    const size = Math.min(Math.max(n, this.segGref.length * 4), Math.max(this.capacity, BLKIF_MAX_SEGMENTS_PER_REQUEST));
    this.segGref = new Uint32Array(size);
    this.segFirst = new Uint8Array(size);
    this.segLast = new Uint8Array(size);
  }

  /** Byte offset of segment i inside its granted page. */
  segOffset(i: number): number {
    return this.segFirst[i] * SECTOR_SIZE;
  }

  /** Bytes moved by segment i. */
  segLength(i: number): number {
    return (this.segLast[i] - this.segFirst[i] + 1) * SECTOR_SIZE;
  }
}

const MAX_SAFE_HI = 0x200000; // sector halves with hi >= 2^21 are >= 2^53

/**
 * Validates a request copy against the device and fills `out`. Returns null when the request
 * can be executed (indirect ones still need parseIndirectSegments), else the error to answer
 * with. Whatever the outcome, out.idLo/idHi/operation are set so the slot gets its response.
 */
export function parseRequest(
  copy: BlkifRequestCopy,
  limits: BlkifDeviceLimits,
  out: BlkifRequest,
): BlkifRequestError | null {
  const op = copy.operation;
  out.operation = op;
  out.idLo = copy.idLo;
  out.idHi = copy.idHi;
  out.handle = copy.handle;
  out.sector = 0;
  out.nrSectors = 0;
  out.secure = false;
  out.indirect = false;
  out.segmentsReady = false;
  out.nrSegments = 0;
  out.indirectPages = 0;

  switch (op) {
    case BLKIF_OP_READ:
      out.kind = 'read';
      return parseDirect(copy, limits, out, false);
    case BLKIF_OP_WRITE:
      out.kind = 'write';
      return parseDirect(copy, limits, out, false);
    case BLKIF_OP_FLUSH_DISKCACHE:
      out.kind = 'flush';
      if (!limits.flush) return new BlkifRequestError('unsupported-operation', 'flush not offered');
      return parseDirect(copy, limits, out, true);
    case BLKIF_OP_WRITE_BARRIER:
      out.kind = 'barrier';
      if (!limits.barrier) return new BlkifRequestError('unsupported-operation', 'barrier not offered');
      return parseDirect(copy, limits, out, true);
    case BLKIF_OP_DISCARD:
      out.kind = 'discard';
      return parseDiscard(copy, limits, out);
    case BLKIF_OP_INDIRECT:
      return parseIndirect(copy, limits, out);
    default:
      return new BlkifRequestError('unknown-operation', `operation ${op}`);
  }
}

function parseDirect(
  copy: BlkifRequestCopy,
  limits: BlkifDeviceLimits,
  out: BlkifRequest,
  emptyOk: boolean,
): BlkifRequestError | null {
  const nr = copy.nrSegments;
  if (nr > BLKIF_MAX_SEGMENTS_PER_REQUEST || (nr === 0 && !emptyOk)) {
    return new BlkifRequestError('bad-segment-count', `${nr} segments, 1..${BLKIF_MAX_SEGMENTS_PER_REQUEST} allowed`);
  }
  out.nrSegments = nr;
  out.segmentsReady = true;
  if (nr === 0) return null; // a bare flush or barrier: no data, no sector
  if (out.kind !== 'read' && limits.readOnly) return new BlkifRequestError('read-only', `${out.kind} to a read-only device`);
  if (copy.sectorHi >= MAX_SAFE_HI) return outOfRange(copy.sectorLo, copy.sectorHi, limits);
  out.sector = copy.sectorHi * 0x100000000 + copy.sectorLo;
  for (let i = 0; i < nr; i++) {
    out.segGref[i] = copy.segGref[i];
    out.segFirst[i] = copy.segFirst[i];
    out.segLast[i] = copy.segLast[i];
  }
  return checkSegmentsAndRange(out, limits);
}

function parseDiscard(copy: BlkifRequestCopy, limits: BlkifDeviceLimits, out: BlkifRequest): BlkifRequestError | null {
  if (!limits.discard) return new BlkifRequestError('unsupported-operation', 'discard not offered');
  const secure = (copy.flag & BLKIF_DISCARD_SECURE) !== 0;
  if (secure && !limits.discardSecure) {
    return new BlkifRequestError('secure-discard-unsupported', 'secure discard not offered');
  }
  if (limits.readOnly) return new BlkifRequestError('read-only', 'discard on a read-only device');
  out.secure = secure;
  out.segmentsReady = true;
  if (copy.sectorHi >= MAX_SAFE_HI || copy.nrSectorsHi >= MAX_SAFE_HI) {
    return outOfRange(copy.sectorLo, copy.sectorHi, limits);
  }
  const sector = copy.sectorHi * 0x100000000 + copy.sectorLo;
  const count = copy.nrSectorsHi * 0x100000000 + copy.nrSectorsLo;
  if (sector > limits.sectors || count > limits.sectors - sector) {
    return new BlkifRequestError(
      'out-of-range',
      `discard of ${count} sectors at ${sector}, image has ${limits.sectors}`,
    );
  }
  out.sector = sector;
  out.nrSectors = count;
  return null;
}

function parseIndirect(copy: BlkifRequestCopy, limits: BlkifDeviceLimits, out: BlkifRequest): BlkifRequestError | null {
  const op = copy.indirectOp;
  out.operation = op;
  out.indirect = true;
  if (limits.maxIndirectSegments <= 0) {
    out.kind = op === BLKIF_OP_WRITE ? 'write' : 'read';
    return new BlkifRequestError('unsupported-operation', 'indirect requests not offered');
  }
  if (op !== BLKIF_OP_READ && op !== BLKIF_OP_WRITE) {
    out.kind = 'read';
    return new BlkifRequestError('bad-indirect-operation', `indirect_op ${op}`);
  }
  out.kind = op === BLKIF_OP_READ ? 'read' : 'write';
  const max = Math.min(limits.maxIndirectSegments, MAX_INDIRECT_SEGMENTS_WIRE, out.capacity);
  const nr = copy.nrSegments;
  if (nr === 0 || nr > max) {
    return new BlkifRequestError('bad-segment-count', `${nr} indirect segments, 1..${max} allowed`);
  }
  if (out.kind === 'write' && limits.readOnly) return new BlkifRequestError('read-only', 'write to a read-only device');
  if (copy.sectorHi >= MAX_SAFE_HI) return outOfRange(copy.sectorLo, copy.sectorHi, limits);
  out.sector = copy.sectorHi * 0x100000000 + copy.sectorLo;
  // At least one sector moves: refuse a start at or past the end before fetching any page.
  if (out.sector >= limits.sectors) {
    return new BlkifRequestError('out-of-range', `sector ${out.sector} beyond an image of ${limits.sectors}`);
  }
  out.reserve(nr);
  out.nrSegments = nr;
  out.indirectPages = Math.ceil(nr / SEGMENTS_PER_INDIRECT_PAGE);
  for (let i = 0; i < out.indirectPages; i++) out.indirectGrefs[i] = copy.indirectGrefs[i];
  return null;
}

/**
 * Checks the segments out.segFirst/segLast[0..nrSegments) and the resulting sector range;
 * sets out.nrSectors.
 */
export function checkSegmentsAndRange(out: BlkifRequest, limits: BlkifDeviceLimits): BlkifRequestError | null {
  const align = limits.sectorSize > SECTOR_SIZE ? limits.sectorSize / SECTOR_SIZE : 1;
  let total = 0;
  for (let i = 0; i < out.nrSegments; i++) {
    const first = out.segFirst[i];
    const last = out.segLast[i];
    if (last >= SECTORS_PER_PAGE || first > last) {
      return new BlkifRequestError('bad-segment', `segment ${i}: sectors ${first}..${last} of a 0..7 page`);
    }
    if (align > 1 && (first % align !== 0 || (last + 1) % align !== 0)) {
      return new BlkifRequestError('misaligned', `segment ${i} not aligned to ${limits.sectorSize} bytes`);
    }
    total += last - first + 1;
  }
  if (align > 1 && out.sector % align !== 0) {
    return new BlkifRequestError('misaligned', `sector ${out.sector} not aligned to ${limits.sectorSize} bytes`);
  }
  if (out.sector > limits.sectors || total > limits.sectors - out.sector) {
    return new BlkifRequestError(
      'out-of-range',
      `${total} sectors at ${out.sector}, image has ${limits.sectors}`,
    );
  }
  out.nrSectors = total;
  return null;
}

function outOfRange(lo: number, hi: number, limits: BlkifDeviceLimits): BlkifRequestError {
  const sector = (BigInt(hi >>> 0) << 32n) | BigInt(lo >>> 0);
  return new BlkifRequestError('out-of-range', `sector ${sector} beyond an image of ${limits.sectors}`);
}
