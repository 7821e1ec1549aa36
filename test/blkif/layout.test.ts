// The ring ABI against Xen's own headers, as the C compiler lays them out.
import {
  abiFor,
  BLKIF_DISCARD_SECURE,
  BLKIF_MAX_INDIRECT_PAGES_PER_REQUEST,
  BLKIF_MAX_SEGMENTS_PER_REQUEST,
  BLKIF_OP_DISCARD,
  BLKIF_OP_FLUSH_DISKCACHE,
  BLKIF_OP_INDIRECT,
  BLKIF_OP_READ,
  BLKIF_OP_WRITE,
  BLKIF_OP_WRITE_BARRIER,
  BLKIF_RSP_EOPNOTSUPP,
  BLKIF_RSP_ERROR,
  BLKIF_RSP_OKAY,
  BlkifRequestCopy,
  BlkifResponseCopy,
  NATIVE_ABI,
  REQ_EVENT,
  REQ_PROD,
  ringEntries,
  RSP_EVENT,
  RSP_PROD,
  SEGMENT_SIZE,
  SRING_HEADER_SIZE,
  X86_32_ABI,
  X86_64_ABI,
  type BlkifAbi,
} from '../../src/blkif';
import { compileXenLayouts, type CLayout } from './support/xen-layout';

const c = compileXenLayouts();
const cases: Array<[string, BlkifAbi, CLayout]> = [
  ['x86_64', X86_64_ABI, c.x86_64],
  ['x86_32', X86_32_ABI, c.x86_32],
];

function bytes(hex: string): Uint8Array {
  return Uint8Array.from(Buffer.from(hex, 'hex'));
}

function dv(u: Uint8Array): DataView {
  return new DataView(u.buffer, u.byteOffset, u.byteLength);
}

describe('constants match blkif.h', () => {
  it('operations, statuses and limits', () => {
    const k = c.x86_64.constants;
    expect([
      BLKIF_OP_READ,
      BLKIF_OP_WRITE,
      BLKIF_OP_WRITE_BARRIER,
      BLKIF_OP_FLUSH_DISKCACHE,
      BLKIF_OP_DISCARD,
      BLKIF_OP_INDIRECT,
    ]).toEqual([k.READ, k.WRITE, k.WRITE_BARRIER, k.FLUSH_DISKCACHE, k.DISCARD, k.INDIRECT]);
    expect([BLKIF_RSP_OKAY, BLKIF_RSP_ERROR, BLKIF_RSP_EOPNOTSUPP]).toEqual([k.RSP_OKAY, k.RSP_ERROR, k.RSP_EOPNOTSUPP]);
    expect(BLKIF_MAX_SEGMENTS_PER_REQUEST).toBe(k.MAX_SEGMENTS);
    expect(BLKIF_MAX_INDIRECT_PAGES_PER_REQUEST).toBe(k.MAX_INDIRECT_PAGES);
    expect(BLKIF_DISCARD_SECURE).toBe(k.DISCARD_SECURE);
  });
});

describe.each(cases)('%s layout', (_name, abi, ref) => {
  const L = abi.layout;

  it('sizes and offsets of every structure', () => {
    expect(abi.reqSize).toBe(ref.req.size);
    expect(abi.rspSize).toBe(ref.rsp.size);
    expect(abi.entrySize).toBe(ref.sring.entry);
    expect([ref.req.operation, ref.req.nr_segments, ref.req.handle]).toEqual([0, 1, 2]);
    expect(L.rw).toEqual({ id: ref.req.id, sector: ref.req.sector_number, seg: ref.req.seg });
    expect(SEGMENT_SIZE).toBe(ref.seg.size);
    expect([ref.seg.gref, ref.seg.first_sect, ref.seg.last_sect]).toEqual([0, 4, 5]);
    expect([ref.discard.operation, ref.discard.flag, ref.discard.handle]).toEqual([0, 1, 2]);
    expect(L.discard).toEqual({
      id: ref.discard.id,
      sector: ref.discard.sector_number,
      nrSectors: ref.discard.nr_sectors,
      size: ref.discard.size,
    });
    expect([ref.indirect.operation, ref.indirect.indirect_op, ref.indirect.nr_segments]).toEqual([0, 1, 2]);
    expect({ ...L.indirect, size: 0 }).toEqual({
      id: ref.indirect.id,
      sector: ref.indirect.sector_number,
      handle: ref.indirect.handle,
      grefs: ref.indirect.indirect_grefs,
      size: 0,
    });
    // The i386 build adds an 8-byte pad (#ifdef __i386__) that a pack(4) build on x86_64 lacks.
    expect(L.indirect.size).toBe(abi === X86_32_ABI ? ref.indirect.size + 8 : ref.indirect.size);
    expect(L.rsp).toEqual({ id: ref.rsp.id, operation: ref.rsp.operation, status: ref.rsp.status });
  });

  it('shared ring header and entries per ring for orders 0..4', () => {
    expect([REQ_PROD * 4, REQ_EVENT * 4, RSP_PROD * 4, RSP_EVENT * 4]).toEqual([
      ref.sring.req_prod,
      ref.sring.req_event,
      ref.sring.rsp_prod,
      ref.sring.rsp_event,
    ]);
    expect(SRING_HEADER_SIZE).toBe(ref.sring.ring);
    expect([1, 2, 4, 8, 16].map((p) => ringEntries(abi, p))).toEqual(ref.entries);
  });

  it('decodes a read/write slot written by C', () => {
    const out = new BlkifRequestCopy();
    abi.decodeRequest(dv(bytes(ref.samples.rw)), 0, out);
    expect(out.operation).toBe(BLKIF_OP_WRITE);
    expect(out.nrSegments).toBe(11);
    expect(out.handle).toBe(0xcafe);
    expect(out.id).toBe(0x0123456789abcdefn);
    expect(out.sector).toBe(0x00000102a0b0c0d0n);
    expect(out.segCount).toBe(11);
    for (let i = 0; i < 11; i++) {
      expect(out.segGref[i]).toBe((0x10000000 + i * 0x01010101) >>> 0);
      expect(out.segFirst[i]).toBe(i % 8);
      expect(out.segLast[i]).toBe(7);
    }
  });

  it('decodes discard and indirect slots written by C', () => {
    const d = new BlkifRequestCopy();
    abi.decodeRequest(dv(bytes(ref.samples.discard)), 0, d);
    expect([d.operation, d.flag, d.handle]).toEqual([BLKIF_OP_DISCARD, BLKIF_DISCARD_SECURE, 0x0203]);
    expect([d.id, d.sector, d.nrSectors]).toEqual([0xfedcba9876543210n, 0x0000000100000200n, 0x0000000300000004n]);

    const x = new BlkifRequestCopy();
    abi.decodeRequest(dv(bytes(ref.samples.indirect)), 0, x);
    expect([x.operation, x.indirectOp, x.nrSegments, x.handle]).toEqual([BLKIF_OP_INDIRECT, BLKIF_OP_READ, 0x0fed, 0x5150]);
    expect([x.id, x.sector]).toEqual([0x1122334455667788n, 0x0000000a0000000bn]);
    expect(Array.from(x.indirectGrefs)).toEqual([0, 1, 2, 3, 4, 5, 6, 7].map((i) => 0xa0000000 + i));
  });

  it('encodes requests byte for byte as C lays them out', () => {
    const rw = new BlkifRequestCopy();
    rw.operation = BLKIF_OP_WRITE;
    rw.nrSegments = 11;
    rw.segCount = 11;
    rw.handle = 0xcafe;
    rw.id = 0x0123456789abcdefn;
    rw.sector = 0x00000102a0b0c0d0n;
    for (let i = 0; i < 11; i++) {
      rw.segGref[i] = 0x10000000 + i * 0x01010101;
      rw.segFirst[i] = i % 8;
      rw.segLast[i] = 7;
    }
    const slot = new Uint8Array(abi.entrySize).fill(0xee);
    abi.encodeRequest(dv(slot), 0, rw);
    expect(Buffer.from(slot).toString('hex')).toBe(ref.samples.rw);

    const d = new BlkifRequestCopy();
    d.operation = BLKIF_OP_DISCARD;
    d.flag = BLKIF_DISCARD_SECURE;
    d.handle = 0x0203;
    d.id = 0xfedcba9876543210n;
    d.sector = 0x0000000100000200n;
    d.nrSectors = 0x0000000300000004n;
    slot.fill(0xee);
    abi.encodeRequest(dv(slot), 0, d);
    expect(Buffer.from(slot).toString('hex')).toBe(ref.samples.discard);

    const x = new BlkifRequestCopy();
    x.operation = BLKIF_OP_INDIRECT;
    x.indirectOp = BLKIF_OP_READ;
    x.nrSegments = 0x0fed;
    x.id = 0x1122334455667788n;
    x.sector = 0x0000000a0000000bn;
    x.handle = 0x5150;
    for (let i = 0; i < 8; i++) x.indirectGrefs[i] = 0xa0000000 + i;
    slot.fill(0xee);
    abi.encodeRequest(dv(slot), 0, x);
    expect(Buffer.from(slot).toString('hex')).toBe(ref.samples.indirect);
  });

  it('encodes and decodes responses as C lays them out', () => {
    const slot = new Uint8Array(abi.rspSize).fill(0xee);
    abi.encodeResponse(dv(slot), 0, 0x44332211, 0x88776655, BLKIF_OP_FLUSH_DISKCACHE, BLKIF_RSP_EOPNOTSUPP);
    expect(Buffer.from(slot).toString('hex')).toBe(ref.samples.rsp);
    const out = new BlkifResponseCopy();
    abi.decodeResponse(dv(bytes(ref.samples.rsp)), 0, out);
    expect([out.id, out.operation, out.status]).toEqual([0x8877665544332211n, BLKIF_OP_FLUSH_DISKCACHE, -2]);
  });

  it('a response fits in the slot of the request it answers', () => {
    expect(abi.rspSize).toBeLessThanOrEqual(abi.entrySize);
    expect(L.discard.size).toBeLessThanOrEqual(abi.entrySize);
    expect(L.indirect.size).toBeLessThanOrEqual(abi.entrySize);
  });
});

describe('abiFor(protocol key)', () => {
  it('names the two x86 layouts', () => {
    expect(abiFor('x86_64-abi')).toBe(X86_64_ABI);
    expect(abiFor('x86_32-abi')).toBe(X86_32_ABI);
  });
  it('falls back to native (x86_64) for other values, like QEMU', () => {
    expect(NATIVE_ABI).toBe(X86_64_ABI);
    expect(abiFor('arm-abi')).toBe(NATIVE_ABI);
    expect(abiFor('')).toBe(NATIVE_ABI);
  });
  it('takes an absent key as x86_32, as Linux blkback and QEMU do on x86', () => {
    expect(abiFor(undefined)).toBe(X86_32_ABI);
  });
});
