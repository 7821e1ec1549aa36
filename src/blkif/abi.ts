// The ring ABIs: where each field of a request or response sits, chosen once per connection from
// the frontend's `protocol` key. Offsets follow xen/include/public/io/blkif.h for x86_64 and the
// packed x86_32 variants of Linux xen-blkback (common.h) and QEMU (hw/block/xen_blkif.h).
// All fields are little-endian.
import {
  BLKIF_MAX_INDIRECT_PAGES_PER_REQUEST,
  BLKIF_MAX_SEGMENTS_PER_REQUEST,
  BLKIF_OP_DISCARD,
  BLKIF_OP_FLUSH_DISKCACHE,
  BLKIF_OP_INDIRECT,
  BLKIF_OP_READ,
  BLKIF_OP_WRITE,
  BLKIF_OP_WRITE_BARRIER,
  SEGMENT_SIZE,
  XEN_IO_PROTO_ABI_X86_32,
  XEN_IO_PROTO_ABI_X86_64,
} from './constants';
import type { BlkifRequestCopy, BlkifResponseCopy } from './messages';

export type BlkifAbiName = typeof XEN_IO_PROTO_ABI_X86_32 | typeof XEN_IO_PROTO_ABI_X86_64;

/** Byte offsets of every field, per ABI. Operation is always at 0. */
export interface BlkifLayout {
  /** sizeof the read/write request (the largest request). */
  readonly reqSize: number;
  readonly rspSize: number;
  /** sizeof(union sring_entry): a slot holds a request or the response that replaced it. */
  readonly entrySize: number;
  /** Read, write, barrier, flush: nr_segments u8 @1, handle u16 @2. */
  readonly rw: { readonly id: number; readonly sector: number; readonly seg: number };
  /** Discard: flag u8 @1, handle u16 @2. */
  readonly discard: { readonly id: number; readonly sector: number; readonly nrSectors: number; readonly size: number };
  /** Indirect: indirect_op u8 @1, nr_segments u16 @2. */
  readonly indirect: {
    readonly id: number;
    readonly sector: number;
    readonly handle: number;
    readonly grefs: number;
    readonly size: number;
  };
  /** Response: id u64 @0, operation u8 @8, status i16 @10. */
  readonly rsp: { readonly id: number; readonly operation: number; readonly status: number };
}

export interface BlkifAbi {
  /** The protocol key value naming this ABI. */
  readonly name: BlkifAbiName;
  readonly reqSize: number;
  readonly rspSize: number;
  readonly entrySize: number;
  readonly layout: BlkifLayout;
  /**
   * Copies the request at view[off..off+reqSize) into out, reading each field once. Only the
   * fields of the layout named by the operation byte are read; the others are set to 0
   * (segment entries beyond segCount and indirectGrefs of non-indirect requests are left as
   * they were). Never reads outside [off, off+reqSize).
   */
  decodeRequest(view: DataView, off: number, out: BlkifRequestCopy): void;
  /** Writes req in the layout its operation names; the rest of the slot is zeroed. */
  encodeRequest(view: DataView, off: number, req: BlkifRequestCopy): void;
  decodeResponse(view: DataView, off: number, out: BlkifResponseCopy): void;
  encodeResponse(view: DataView, off: number, idLo: number, idHi: number, operation: number, status: number): void;
}

export const X86_64_LAYOUT: BlkifLayout = {
  reqSize: 112,
  rspSize: 16,
  entrySize: 112,
  rw: { id: 8, sector: 16, seg: 24 },
  discard: { id: 8, sector: 16, nrSectors: 24, size: 32 },
  indirect: { id: 8, sector: 16, handle: 24, grefs: 28, size: 64 },
  rsp: { id: 0, operation: 8, status: 10 },
};

/** x86_32 packs u64 fields on 4-byte boundaries. */
export const X86_32_LAYOUT: BlkifLayout = {
  reqSize: 108,
  rspSize: 12,
  entrySize: 108,
  rw: { id: 4, sector: 12, seg: 20 },
  discard: { id: 4, sector: 12, nrSectors: 20, size: 28 },
  indirect: { id: 4, sector: 12, handle: 20, grefs: 24, size: 64 },
  rsp: { id: 0, operation: 8, status: 10 },
};

const LE = true;

class LayoutCodec implements BlkifAbi {
  readonly reqSize: number;
  readonly rspSize: number;
  readonly entrySize: number;
  // Flattened offsets: monomorphic property loads on the hot path.
  private readonly rwId: number;
  private readonly rwSector: number;
  private readonly rwSeg: number;
  private readonly dId: number;
  private readonly dSector: number;
  private readonly dNr: number;
  private readonly iId: number;
  private readonly iSector: number;
  private readonly iHandle: number;
  private readonly iGrefs: number;

  constructor(
    readonly name: BlkifAbiName,
    readonly layout: BlkifLayout,
  ) {
    this.reqSize = layout.reqSize;
    this.rspSize = layout.rspSize;
    this.entrySize = layout.entrySize;
    this.rwId = layout.rw.id;
    this.rwSector = layout.rw.sector;
    this.rwSeg = layout.rw.seg;
    this.dId = layout.discard.id;
    this.dSector = layout.discard.sector;
    this.dNr = layout.discard.nrSectors;
    this.iId = layout.indirect.id;
    this.iSector = layout.indirect.sector;
    this.iHandle = layout.indirect.handle;
    this.iGrefs = layout.indirect.grefs;
  }

  decodeRequest(v: DataView, off: number, out: BlkifRequestCopy): void {
    const op = v.getUint8(off);
    out.operation = op;
    out.flag = 0;
    out.nrSectorsLo = 0;
    out.nrSectorsHi = 0;
    out.indirectOp = 0;
    out.segCount = 0;
    switch (op) {
      case BLKIF_OP_READ:
      case BLKIF_OP_WRITE:
      case BLKIF_OP_WRITE_BARRIER:
      case BLKIF_OP_FLUSH_DISKCACHE: {
        const nr = v.getUint8(off + 1);
        out.nrSegments = nr;
        out.handle = v.getUint16(off + 2, LE);
        out.idLo = v.getUint32(off + this.rwId, LE);
        out.idHi = v.getUint32(off + this.rwId + 4, LE);
        out.sectorLo = v.getUint32(off + this.rwSector, LE);
        out.sectorHi = v.getUint32(off + this.rwSector + 4, LE);
        // The copied count bounds the loop, never a second read of the slot.
        const n = nr < BLKIF_MAX_SEGMENTS_PER_REQUEST ? nr : BLKIF_MAX_SEGMENTS_PER_REQUEST;
        let s = off + this.rwSeg;
        for (let i = 0; i < n; i++, s += SEGMENT_SIZE) {
          out.segGref[i] = v.getUint32(s, LE);
          out.segFirst[i] = v.getUint8(s + 4);
          out.segLast[i] = v.getUint8(s + 5);
        }
        out.segCount = n;
        return;
      }
      case BLKIF_OP_DISCARD:
        out.nrSegments = 0;
        out.flag = v.getUint8(off + 1);
        out.handle = v.getUint16(off + 2, LE);
        out.idLo = v.getUint32(off + this.dId, LE);
        out.idHi = v.getUint32(off + this.dId + 4, LE);
        out.sectorLo = v.getUint32(off + this.dSector, LE);
        out.sectorHi = v.getUint32(off + this.dSector + 4, LE);
        out.nrSectorsLo = v.getUint32(off + this.dNr, LE);
        out.nrSectorsHi = v.getUint32(off + this.dNr + 4, LE);
        return;
      case BLKIF_OP_INDIRECT: {
        out.indirectOp = v.getUint8(off + 1);
        out.nrSegments = v.getUint16(off + 2, LE);
        out.idLo = v.getUint32(off + this.iId, LE);
        out.idHi = v.getUint32(off + this.iId + 4, LE);
        out.sectorLo = v.getUint32(off + this.iSector, LE);
        out.sectorHi = v.getUint32(off + this.iSector + 4, LE);
        out.handle = v.getUint16(off + this.iHandle, LE);
        const g = off + this.iGrefs;
        for (let i = 0; i < BLKIF_MAX_INDIRECT_PAGES_PER_REQUEST; i++) out.indirectGrefs[i] = v.getUint32(g + 4 * i, LE);
        return;
      }
      default:
        // Unknown operation: only the id (same place as in read/write) matters, to answer it.
        out.nrSegments = 0;
        out.handle = 0;
        out.idLo = v.getUint32(off + this.rwId, LE);
        out.idHi = v.getUint32(off + this.rwId + 4, LE);
        out.sectorLo = 0;
        out.sectorHi = 0;
    }
  }

  encodeRequest(v: DataView, off: number, req: BlkifRequestCopy): void {
    for (let i = 0; i < this.reqSize; i += 4) v.setUint32(off + i, 0, LE); // reqSize is a multiple of 4
    const op = req.operation;
    v.setUint8(off, op);
    switch (op) {
      case BLKIF_OP_READ:
      case BLKIF_OP_WRITE:
      case BLKIF_OP_WRITE_BARRIER:
      case BLKIF_OP_FLUSH_DISKCACHE: {
        v.setUint8(off + 1, req.nrSegments);
        v.setUint16(off + 2, req.handle, LE);
        v.setUint32(off + this.rwId, req.idLo, LE);
        v.setUint32(off + this.rwId + 4, req.idHi, LE);
        v.setUint32(off + this.rwSector, req.sectorLo, LE);
        v.setUint32(off + this.rwSector + 4, req.sectorHi, LE);
        const n = Math.min(req.segCount, BLKIF_MAX_SEGMENTS_PER_REQUEST);
        let s = off + this.rwSeg;
        for (let i = 0; i < n; i++, s += SEGMENT_SIZE) {
          v.setUint32(s, req.segGref[i], LE);
          v.setUint8(s + 4, req.segFirst[i]);
          v.setUint8(s + 5, req.segLast[i]);
        }
        return;
      }
      case BLKIF_OP_DISCARD:
        v.setUint8(off + 1, req.flag);
        v.setUint16(off + 2, req.handle, LE);
        v.setUint32(off + this.dId, req.idLo, LE);
        v.setUint32(off + this.dId + 4, req.idHi, LE);
        v.setUint32(off + this.dSector, req.sectorLo, LE);
        v.setUint32(off + this.dSector + 4, req.sectorHi, LE);
        v.setUint32(off + this.dNr, req.nrSectorsLo, LE);
        v.setUint32(off + this.dNr + 4, req.nrSectorsHi, LE);
        return;
      case BLKIF_OP_INDIRECT: {
        v.setUint8(off + 1, req.indirectOp);
        v.setUint16(off + 2, req.nrSegments, LE);
        v.setUint32(off + this.iId, req.idLo, LE);
        v.setUint32(off + this.iId + 4, req.idHi, LE);
        v.setUint32(off + this.iSector, req.sectorLo, LE);
        v.setUint32(off + this.iSector + 4, req.sectorHi, LE);
        v.setUint16(off + this.iHandle, req.handle, LE);
        const g = off + this.iGrefs;
        for (let i = 0; i < BLKIF_MAX_INDIRECT_PAGES_PER_REQUEST; i++) v.setUint32(g + 4 * i, req.indirectGrefs[i], LE);
        return;
      }
      default:
        v.setUint32(off + this.rwId, req.idLo, LE);
        v.setUint32(off + this.rwId + 4, req.idHi, LE);
    }
  }

  decodeResponse(v: DataView, off: number, out: BlkifResponseCopy): void {
    out.idLo = v.getUint32(off, LE);
    out.idHi = v.getUint32(off + 4, LE);
    out.operation = v.getUint8(off + 8);
    out.status = v.getInt16(off + 10, LE);
  }

  encodeResponse(v: DataView, off: number, idLo: number, idHi: number, operation: number, status: number): void {
    v.setUint32(off, idLo, LE);
    v.setUint32(off + 4, idHi, LE);
    v.setUint8(off + 8, operation);
    v.setUint8(off + 9, 0);
    v.setInt16(off + 10, status, LE);
    if (this.rspSize === 16) v.setUint32(off + 12, 0, LE);
  }
}

export const X86_64_ABI: BlkifAbi = new LayoutCodec(XEN_IO_PROTO_ABI_X86_64, X86_64_LAYOUT);
export const X86_32_ABI: BlkifAbi = new LayoutCodec(XEN_IO_PROTO_ABI_X86_32, X86_32_LAYOUT);
/** This backend runs on x86_64: "native" is the x86_64 layout. */
export const NATIVE_ABI: BlkifAbi = X86_64_ABI;

/**
 * The ABI for a frontend's `protocol` key (undefined when the key is absent).
 * `x86_32-abi` and `x86_64-abi` name their layouts; any other value means native (QEMU does the
 * same; Linux refuses unknown values). An absent key means x86_32: on x86 both Linux blkback
 * (BLKIF_PROTOCOL_DEFAULT) and QEMU xen-block (since 8.1) assume the 32-bit layout, because old
 * 32-bit PV guests never wrote the key; 64-bit frontends always write it.
 */
export function abiFor(protocolKey: string | undefined): BlkifAbi {
  if (protocolKey === undefined) return X86_32_ABI;
  if (protocolKey === XEN_IO_PROTO_ABI_X86_32) return X86_32_ABI;
  if (protocolKey === XEN_IO_PROTO_ABI_X86_64) return X86_64_ABI;
  return NATIVE_ABI;
}
