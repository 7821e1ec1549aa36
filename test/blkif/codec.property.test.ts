// Encode/decode round trips for every message and ABI.
import fc from 'fast-check';
import {
  BlkifRequestCopy,
  BlkifResponseCopy,
  SRING_HEADER_SIZE,
  X86_32_ABI,
  X86_64_ABI,
  type BlkifAbi,
} from '../../src/blkif';
import { anyRequest, meaningful, toCopy } from './support/arbitraries';

/** Index of the first byte outside [from, to) that no longer holds `fill`, or -1. */
function firstChangedOutside(mem: Uint8Array, fill: number, from: number, to: number): number {
  for (let i = 0; i < mem.length; i++) if ((i < from || i >= to) && mem[i] !== fill) return i;
  return -1;
}

const abis: Array<[string, BlkifAbi]> = [
  ['x86_64', X86_64_ABI],
  ['x86_32', X86_32_ABI],
];

describe.each(abis)('%s codec', (_n, abi) => {
  const slots = 32;
  const mem = new Uint8Array(SRING_HEADER_SIZE + slots * abi.entrySize);
  const view = new DataView(mem.buffer);

  it('request: decode(encode(r)) == r, in any slot, whatever the slot held before', () => {
    const out = new BlkifRequestCopy();
    fc.assert(
      fc.property(anyRequest, fc.integer({ min: 0, max: slots - 1 }), fc.uint8Array({ minLength: 8, maxLength: 8 }), (f, slot, junk) => {
        const off = SRING_HEADER_SIZE + slot * abi.entrySize;
        for (let i = 0; i < abi.entrySize; i++) mem[off + i] = junk[i % 8];
        const req = toCopy(f);
        abi.encodeRequest(view, off, req);
        // Stale values in out must not leak through either.
        out.clear();
        out.idLo = 0xdead;
        out.flag = 0xff;
        out.nrSectorsHi = 77;
        abi.decodeRequest(view, off, out);
        expect(meaningful(out)).toEqual(meaningful(req));
        const kept = new BlkifRequestCopy();
        kept.copyFrom(out);
        expect(meaningful(kept)).toEqual(meaningful(req));
      }),
      { numRuns: 2000 },
    );
  });

  it('request: encoding touches only its own slot', () => {
    fc.assert(
      fc.property(anyRequest, fc.integer({ min: 0, max: slots - 1 }), (f, slot) => {
        mem.fill(0x5a);
        const off = SRING_HEADER_SIZE + slot * abi.entrySize;
        abi.encodeRequest(view, off, toCopy(f));
        expect(firstChangedOutside(mem, 0x5a, off, off + abi.entrySize)).toBe(-1);
      }),
      { numRuns: 200 },
    );
  });

  it('response: decode(encode(r)) == r and only rspSize bytes are written', () => {
    const out = new BlkifResponseCopy();
    fc.assert(
      fc.property(
        fc.integer({ min: 0, max: 0xffffffff }),
        fc.integer({ min: 0, max: 0xffffffff }),
        fc.integer({ min: 0, max: 255 }),
        fc.integer({ min: -32768, max: 32767 }),
        fc.integer({ min: 0, max: slots - 1 }),
        (idLo, idHi, op, status, slot) => {
          mem.fill(0xa5);
          const off = SRING_HEADER_SIZE + slot * abi.entrySize;
          abi.encodeResponse(view, off, idLo, idHi, op, status);
          abi.decodeResponse(view, off, out);
          expect([out.idLo, out.idHi, out.operation, out.status]).toEqual([idLo, idHi, op, status]);
          expect(firstChangedOutside(mem, 0xa5, off, off + abi.rspSize)).toBe(-1);
        },
      ),
      { numRuns: 500 },
    );
  });

  it('decoding arbitrary slot bytes never throws and never reads past the slot', () => {
    const out = new BlkifRequestCopy();
    fc.assert(
      fc.property(fc.uint8Array({ minLength: abi.reqSize, maxLength: abi.reqSize }), (raw) => {
        // A DataView of exactly reqSize bytes: any read beyond would throw RangeError.
        const exact = new DataView(raw.buffer, raw.byteOffset, abi.reqSize);
        abi.decodeRequest(exact, 0, out);
        expect(out.segCount).toBeLessThanOrEqual(11);
      }),
      { numRuns: 2000 },
    );
  });
});

describe('the two ABIs differ where the headers say', () => {
  it('an x86_32 request decoded as x86_64 gets a different id', () => {
    const r = new BlkifRequestCopy();
    r.operation = 0;
    r.nrSegments = 1;
    r.segCount = 1;
    r.id = 0x1111222233334444n;
    const mem = new Uint8Array(112);
    X86_32_ABI.encodeRequest(new DataView(mem.buffer), 0, r);
    const out = new BlkifRequestCopy();
    X86_64_ABI.decodeRequest(new DataView(mem.buffer), 0, out);
    expect(out.id).not.toBe(r.id);
    X86_32_ABI.decodeRequest(new DataView(mem.buffer), 0, out);
    expect(out.id).toBe(r.id);
  });
});
