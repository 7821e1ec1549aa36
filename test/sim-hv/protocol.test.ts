import fc from 'fast-check';
import { FrameReader, FrameSink, MAX_PAYLOAD, MSG, parseError } from '../../src/io/sim/protocol';

type Got = [number, number, string];

function collect(): { reader: FrameReader; got: Got[] } {
  const got: Got[] = [];
  const reader = new FrameReader((type, id, buf, off, len) => got.push([type, id, buf.toString('hex', off, off + len)]));
  return { reader, got };
}

describe('hv.sock framing', () => {
  it('encodes the documented header: type u16, len u16, id u32, little endian', async () => {
    const out: Buffer[] = [];
    const sink = new FrameSink((b) => out.push(b));
    sink.send2(MSG.BIND_INTERDOMAIN, 0x01020304, 7, 0x10000);
    await Promise.resolve();
    expect(out.map((b) => b.toString('hex'))).toEqual(['0400' + '0800' + '04030201' + '07000000' + '00000100']);
  });

  it('batches the frames of one tick into one write', async () => {
    const out: Buffer[] = [];
    const sink = new FrameSink((b) => out.push(b));
    for (let p = 1; p <= 100; p++) sink.send1(MSG.NOTIFY, 0, p);
    expect(out).toHaveLength(0);
    await Promise.resolve();
    expect(out).toHaveLength(1);
    expect(out[0].length).toBe(100 * 12);
    const { reader, got } = collect();
    reader.push(out[0]);
    expect(got.map((g) => g[2])).toEqual(Array.from({ length: 100 }, (_, i) => Buffer.from([i + 1, 0, 0, 0]).toString('hex')));
  });

  it('reassembles frames however the stream is cut', () => {
    fc.assert(
      fc.property(
        fc.array(fc.tuple(fc.integer({ min: 1, max: 0xffff }), fc.nat(), fc.uint8Array({ maxLength: 300 })), { maxLength: 20 }),
        fc.array(fc.integer({ min: 1, max: 50 }), { minLength: 1 }),
        (frames, cuts) => {
          const out: Buffer[] = [];
          const sink = new FrameSink((b) => out.push(b));
          for (const [t, id, p] of frames) {
            const o = sink.begin(t, id, p.length);
            sink.buffer.set(p, o);
          }
          sink.flush();
          const stream = Buffer.concat(out);
          const { reader, got } = collect();
          let at = 0;
          for (let i = 0; at < stream.length; i++) {
            const n = cuts[i % cuts.length];
            reader.push(stream.subarray(at, at + n));
            at += n;
          }
          expect(got).toEqual(frames.map(([t, id, p]) => [t, id, Buffer.from(p).toString('hex')]));
        },
      ),
    );
  });

  it('grows its buffer for big frames and refuses frames above 64 KiB', async () => {
    const out: Buffer[] = [];
    const sink = new FrameSink((b) => out.push(b));
    sink.sendList(MSG.MAP, 1, [1, 0], new Array(4096).fill(7));
    expect(() => sink.begin(MSG.MAP, 2, MAX_PAYLOAD + 1)).toThrow(RangeError);
    await Promise.resolve();
    expect(out[0].length).toBe(8 + 8 + 4 * 4096);
  });

  it('stops at once when told to, even mid-chunk', () => {
    const out: Buffer[] = [];
    const sink = new FrameSink((b) => out.push(b));
    sink.send1(MSG.NOTIFY, 0, 1);
    sink.send1(MSG.NOTIFY, 0, 2);
    sink.flush();
    let n = 0;
    const reader: FrameReader = new FrameReader(() => {
      n++;
      reader.stop();
    });
    reader.push(out[0]);
    expect(n).toBe(1);
  });

  it('checks headers before waiting for their payload', () => {
    const seen: number[] = [];
    const reader = new FrameReader(
      () => {},
      (type) => {
        seen.push(type);
        return false;
      },
    );
    reader.push(Buffer.from('GET / HTTP/1.1', 'latin1'));
    expect(seen).toEqual([0x4547]);
  });

  it('splits error payloads into code and message', () => {
    const b = Buffer.from('xxEINVAL\0port 3 is not bound here', 'utf8');
    expect(parseError(b, 2, b.length - 2)).toEqual({ code: 'EINVAL', message: 'port 3 is not bound here' });
    expect(parseError(b, 2, 4)).toEqual({ code: 'EPROTO', message: 'EINV' });
  });
});
