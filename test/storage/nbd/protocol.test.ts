// The pure NBD codecs: what a server sends is bounded and checked before use.
import {
  decodeGreeting,
  decodeInfo,
  decodeOptReplyHeader,
  encodeGo,
  encodeRequest,
  NbdProtocolError,
  OPT_GO,
} from '../../../src/io/storage/nbd/protocol';

function info(type: number, ...fields: [number, 2 | 4][]): Buffer {
  const b = Buffer.alloc(2 + fields.reduce((n, [, w]) => n + w, 0));
  b.writeUInt16BE(type, 0);
  let o = 2;
  for (const [v, w] of fields) {
    if (w === 2) b.writeUInt16BE(v, o);
    else b.writeUInt32BE(v, o);
    o += w;
  }
  return b;
}

test('greeting: NBDMAGIC and IHAVEOPT with fixed newstyle, nothing else', () => {
  const g = Buffer.alloc(18);
  g.write('NBDMAGICIHAVEOPT', 0, 'latin1');
  g.writeUInt16BE(3, 16);
  expect(decodeGreeting(g)).toBe(3);
  g.writeUInt16BE(0, 16);
  expect(() => decodeGreeting(g)).toThrow(/fixed newstyle/);
  g.write('NBDMAGIC\x00\x00\x42\x02\x81\x86\x12\x53', 0, 'latin1');
  expect(() => decodeGreeting(g)).toThrow(/oldstyle/);
  expect(() => decodeGreeting(Buffer.from('GET / HTTP/1.1\r\n\r\n'))).toThrow(NbdProtocolError);
});

test('option replies: magic, the option asked, bounded length', () => {
  const h = Buffer.alloc(20);
  h.writeUInt32BE(0x0003e889, 0);
  h.writeUInt32BE(0x045565a9, 4);
  h.writeUInt32BE(OPT_GO, 8);
  h.writeUInt32BE(3, 12);
  h.writeUInt32BE(12, 16);
  expect(decodeOptReplyHeader(h, OPT_GO)).toEqual({ option: OPT_GO, type: 3, length: 12 });
  h.writeUInt32BE(0xffffffff, 16);
  expect(() => decodeOptReplyHeader(h, OPT_GO)).toThrow(/at most/);
  h.writeUInt32BE(12, 16);
  expect(() => decodeOptReplyHeader(h, 1)).toThrow(/asked/);
  h.writeUInt32BE(1, 0);
  expect(() => decodeOptReplyHeader(h, OPT_GO)).toThrow(/magic/);
});

test('NBD_INFO_EXPORT and NBD_INFO_BLOCK_SIZE: sizes and constraints checked', () => {
  expect(decodeInfo(info(0, [0, 4], [1 << 20, 4], [0x4d, 2]))).toEqual({ export: { sizeBytes: 1 << 20, flags: 0x4d } });
  expect(decodeInfo(info(0, [0x1fffff, 4], [0xffffffff, 4], [1, 2]))).toEqual({ export: { sizeBytes: 2 ** 53 - 1, flags: 1 } });
  expect(() => decodeInfo(info(0, [0x200000, 4], [0, 4], [1, 2]))).toThrow(/2\^53/);
  expect(() => decodeInfo(info(0, [0, 4]))).toThrow(/12 expected/);
  expect(decodeInfo(info(3, [512, 4], [4096, 4], [1 << 25, 4]))).toEqual({ blockSize: { minimum: 512, preferred: 4096, maximum: 1 << 25 } });
  expect(() => decodeInfo(info(3, [3, 4], [4096, 4], [1 << 25, 4]))).toThrow(/minimum/);
  expect(() => decodeInfo(info(3, [1 << 17, 4], [1 << 17, 4], [1 << 25, 4]))).toThrow(/minimum/);
  expect(() => decodeInfo(info(3, [512, 4], [256, 4], [1 << 25, 4]))).toThrow(/preferred/);
  expect(() => decodeInfo(info(3, [4096, 4], [4096, 4], [1000, 4]))).toThrow(/maximum/);
  expect(decodeInfo(info(1, [0, 4]))).toBeNull(); // NBD_INFO_NAME: not asked, ignored
  expect(() => decodeInfo(Buffer.alloc(1))).toThrow(NbdProtocolError);
});

test('requests: 28 bytes, handle halves and a 53-bit offset exactly', () => {
  const b = Buffer.alloc(28);
  encodeRequest(b, 0, 1, 1, 7, 42, 2 ** 40 + 512, 4096);
  expect(b.toString('hex')).toBe('25609513' + '0001' + '0001' + '00000007' + '0000002a' + '00000100' + '00000200' + '00001000');
  const go = encodeGo('disk0');
  expect(go.readUInt32BE(0)).toBe(5);
  expect(go.subarray(4, 9).toString()).toBe('disk0');
  expect(go.readUInt16BE(9)).toBe(2);
});
