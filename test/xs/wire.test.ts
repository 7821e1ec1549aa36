import fc from 'fast-check';
import { XsError, isXsError } from '../../src/io/xs/errors';
import { decodeNames, oneString, splitStrings } from '../../src/io/xs/payload';
import {
  FrameDecoder,
  FrameTooLargeError,
  HEADER_SIZE,
  XENSTORE_PAYLOAD_MAX,
  XsType,
  encodeFrame,
  encodeStringsFrame,
  frameSlices,
  xsTypeName,
  type XsFrame,
} from '../../src/io/xs/wire';

function collect(decoder: FrameDecoder, chunks: Buffer[]): XsFrame[] {
  const out: XsFrame[] = [];
  for (const c of chunks) decoder.push(c, (f) => out.push({ ...f, payload: Buffer.from(f.payload) }));
  return out;
}

describe('xenstore wire codec', () => {
  it('uses the message numbers of xs_wire.h', () => {
    expect(XsType.DIRECTORY).toBe(1);
    expect(XsType.WRITE).toBe(11);
    expect(XsType.WATCH_EVENT).toBe(15);
    expect(XsType.ERROR).toBe(16);
    expect(XsType.RESET_WATCHES).toBe(21);
    expect(XsType.DIRECTORY_PART).toBe(22);
    expect(XsType.SET_QUOTA).toBe(26);
    expect(xsTypeName(12)).toBe('MKDIR');
    expect(xsTypeName(20)).toBe('type20');
  });

  it('encodes a little-endian header followed by the payload', () => {
    const f = encodeStringsFrame(XsType.WRITE, 0x01020304, 7, ['/a/b', 'val'], true)!;
    expect(f.subarray(0, HEADER_SIZE)).toEqual(
      Buffer.from([11, 0, 0, 0, 4, 3, 2, 1, 7, 0, 0, 0, 8, 0, 0, 0]),
    );
    expect(f.subarray(HEADER_SIZE).toString('latin1')).toBe('/a/b\0val');
    const w = encodeStringsFrame(XsType.WATCH, 1, 0, ['/x', 'tok'])!;
    expect(w.subarray(HEADER_SIZE).toString('latin1')).toBe('/x\0tok\0');
  });

  it('refuses to encode a payload over 4096 bytes', () => {
    expect(encodeStringsFrame(XsType.WRITE, 1, 0, ['/a', Buffer.alloc(4093)], true)).toBeDefined();
    expect(encodeStringsFrame(XsType.WRITE, 1, 0, ['/a', Buffer.alloc(4094)], true)).toBeUndefined();
  });

  it('reassembles frames however the stream is cut', () => {
    const frameArb = fc.record({
      type: fc.integer({ min: 0, max: 30 }),
      reqId: fc.nat(),
      txId: fc.nat(),
      payload: fc.uint8Array({ maxLength: 300 }),
    });
    fc.assert(
      fc.property(fc.array(frameArb, { maxLength: 8 }), fc.array(fc.integer({ min: 1, max: 64 }), { minLength: 1 }), (frames, cuts) => {
        const bytes = Buffer.concat(frames.map((f) => encodeFrame(f.type, f.reqId, f.txId, f.payload)));
        const chunks: Buffer[] = [];
        let off = 0;
        for (let i = 0; off < bytes.length; i++) {
          const n = cuts[i % cuts.length];
          chunks.push(bytes.subarray(off, off + n));
          off += n;
        }
        const d = new FrameDecoder();
        const got = collect(d, chunks);
        expect(got.map((f) => [f.type, f.reqId, f.txId, [...f.payload]])).toEqual(
          frames.map((f) => [f.type, f.reqId, f.txId, [...f.payload]]),
        );
        expect(d.hasPartial).toBe(false);
      }),
      { numRuns: 200, seed: 7 },
    );
  });

  it('reports a buffered partial frame', () => {
    const d = new FrameDecoder();
    const f = encodeFrame(XsType.READ, 1, 0, Buffer.from('/a\0'));
    expect(collect(d, [f.subarray(0, 10)])).toEqual([]);
    expect(d.hasPartial).toBe(true);
    expect(collect(d, [f.subarray(10)])).toHaveLength(1);
    expect(d.hasPartial).toBe(false);
  });

  it('rejects a header announcing more than 4096 bytes as soon as the header is complete', () => {
    const header = Buffer.alloc(HEADER_SIZE);
    header.writeUInt32LE(XENSTORE_PAYLOAD_MAX + 1, 12);
    const d = new FrameDecoder();
    expect(() => collect(d, [header.subarray(0, 5)])).not.toThrow();
    expect(() => collect(d, [header.subarray(5)])).toThrow(FrameTooLargeError);
    const ok = encodeFrame(1, 1, 0, Buffer.alloc(XENSTORE_PAYLOAD_MAX));
    expect(collect(new FrameDecoder(), [ok])).toHaveLength(1);
  });

  it('cuts a batch into whole frames for one-message-per-write devices', () => {
    const a = encodeFrame(XsType.READ, 1, 0, Buffer.from('/a\0'));
    const b = encodeFrame(XsType.WRITE, 2, 0, Buffer.from('/b\0value'));
    const c = encodeFrame(XsType.DIRECTORY, 3, 0, Buffer.from('/\0'));
    const all = Buffer.concat([a, b, c]);
    const first = frameSlices(all.subarray(0, a.length + 5));
    expect(first.frames).toEqual([a]);
    expect(first.rest).toEqual(b.subarray(0, 5));
    const second = frameSlices(all.subarray(a.length + 5), first.rest);
    expect(second.frames).toEqual([b, c]);
    expect(second.rest).toBeUndefined();
  });

  it('splits NUL-separated payloads', () => {
    expect(splitStrings(Buffer.from('a\0bc\0tail'))).toEqual({ strings: ['a', 'bc'], rest: Buffer.from('tail') });
    expect(oneString(Buffer.from('/x\0'))).toBe('/x');
    expect(oneString(Buffer.from('/x'))).toBeUndefined();
    expect(oneString(Buffer.from('/x\0y\0'))).toBeUndefined();
    expect(decodeNames(Buffer.alloc(0))).toEqual([]);
    expect(decodeNames(Buffer.from('a\0b\0'))).toEqual(['a', 'b']);
  });

  it('carries the errno name in a typed error', () => {
    const e = new XsError('ENOENT', '/nope');
    expect(e.errno).toBe('ENOENT');
    expect(e.message).toBe('ENOENT: /nope');
    expect(isXsError(e, 'ENOENT')).toBe(true);
    expect(isXsError(e, 'EACCES')).toBe(false);
    expect(isXsError(new Error('x'))).toBe(false);
  });
});
