// The NBD wire format (NetworkBlockDevice/nbd doc/proto.md): constants and pure codecs for the
// fixed newstyle handshake and the transmission phase with simple replies. No I/O here.
// Everything the server sends is untrusted: every decoder checks magic and bounds every length
// before anything is allocated, and throws NbdProtocolError (one line) on anything else.

export class NbdProtocolError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'NbdProtocolError';
  }
}

// Handshake magics: 'NBDMAGIC' and 'IHAVEOPT' as two 32-bit halves (no BigInt on this path).
export const NBDMAGIC_HI = 0x4e42444d;
export const NBDMAGIC_LO = 0x41474943;
export const IHAVEOPT_HI = 0x49484156;
export const IHAVEOPT_LO = 0x454f5054;
export const OPT_REPLY_MAGIC_HI = 0x0003e889;
export const OPT_REPLY_MAGIC_LO = 0x045565a9;
export const REQUEST_MAGIC = 0x25609513;
export const SIMPLE_REPLY_MAGIC = 0x67446698;

export const FLAG_FIXED_NEWSTYLE = 1 << 0;
export const FLAG_NO_ZEROES = 1 << 1;

export const OPT_EXPORT_NAME = 1;
export const OPT_ABORT = 2;
export const OPT_GO = 7;

export const REP_ACK = 1;
export const REP_INFO = 3;
export const REP_FLAG_ERROR = 0x80000000;
export const REP_ERR_UNSUP = REP_FLAG_ERROR + 1;
export const REP_ERR_POLICY = REP_FLAG_ERROR + 2;
export const REP_ERR_INVALID = REP_FLAG_ERROR + 3;
export const REP_ERR_PLATFORM = REP_FLAG_ERROR + 4;
export const REP_ERR_TLS_REQD = REP_FLAG_ERROR + 5;
export const REP_ERR_UNKNOWN = REP_FLAG_ERROR + 6;
export const REP_ERR_SHUTDOWN = REP_FLAG_ERROR + 7;
export const REP_ERR_BLOCK_SIZE_REQD = REP_FLAG_ERROR + 8;
export const REP_ERR_TOO_BIG = REP_FLAG_ERROR + 9;

export const INFO_EXPORT = 0;
export const INFO_BLOCK_SIZE = 3;

// Transmission flags.
export const TF_HAS_FLAGS = 1 << 0;
export const TF_READ_ONLY = 1 << 1;
export const TF_SEND_FLUSH = 1 << 2;
export const TF_SEND_FUA = 1 << 3;
export const TF_ROTATIONAL = 1 << 4;
export const TF_SEND_TRIM = 1 << 5;
export const TF_SEND_WRITE_ZEROES = 1 << 6;

export const CMD_READ = 0;
export const CMD_WRITE = 1;
export const CMD_DISC = 2;
export const CMD_FLUSH = 3;
export const CMD_TRIM = 4;
export const CMD_WRITE_ZEROES = 6;
export const CMD_FLAG_FUA = 1 << 0;

export const REQUEST_BYTES = 28;
export const SIMPLE_REPLY_BYTES = 16;
/** Fixed part of an option reply: magic, option, type, length. */
export const OPT_REPLY_HEADER_BYTES = 20;
/** The server greeting: NBDMAGIC, IHAVEOPT, handshake flags. */
export const GREETING_BYTES = 18;
/** NBD_OPT_EXPORT_NAME's reply without the 124 zero bytes. */
export const EXPORT_NAME_REPLY_BYTES = 10;
export const EXPORT_NAME_ZEROES = 124;
/** No option reply we ask for carries more (strings are at most 4096 bytes). */
export const MAX_OPT_REPLY_DATA = 4096 + 64;
/** The largest export size a JavaScript number holds exactly. */
const MAX_EXPORT_HI = 0x1fffff;

/** A 64-bit big-endian unsigned as a number; null when above 2^53 - 1. */
function readU64(buf: Uint8Array, off: number): number | null {
  const v = new DataView(buf.buffer, buf.byteOffset, buf.byteLength);
  const hi = v.getUint32(off);
  if (hi > MAX_EXPORT_HI) return null;
  return hi * 0x100000000 + v.getUint32(off + 4);
}

function view(buf: Uint8Array): DataView {
  return new DataView(buf.buffer, buf.byteOffset, buf.byteLength);
}

/** Checks the greeting; returns the handshake flags. */
export function decodeGreeting(buf: Uint8Array): number {
  const v = view(buf);
  if (v.getUint32(0) !== NBDMAGIC_HI || v.getUint32(4) !== NBDMAGIC_LO) throw new NbdProtocolError('not an NBD server (no NBDMAGIC)');
  if (v.getUint32(8) !== IHAVEOPT_HI || v.getUint32(12) !== IHAVEOPT_LO) {
    throw new NbdProtocolError('the server speaks oldstyle NBD (only fixed newstyle is served)');
  }
  const flags = v.getUint16(16);
  if ((flags & FLAG_FIXED_NEWSTYLE) === 0) throw new NbdProtocolError('the server does not offer fixed newstyle negotiation');
  return flags;
}

/** The client's 32-bit flags in answer to the greeting's handshake flags. */
export function encodeClientFlags(serverFlags: number): Buffer {
  const b = Buffer.alloc(4);
  b.writeUInt32BE(FLAG_FIXED_NEWSTYLE | (serverFlags & FLAG_NO_ZEROES));
  return b;
}

export function encodeOption(option: number, data: Uint8Array): Buffer {
  const b = Buffer.alloc(16 + data.byteLength);
  b.writeUInt32BE(IHAVEOPT_HI, 0);
  b.writeUInt32BE(IHAVEOPT_LO, 4);
  b.writeUInt32BE(option, 8);
  b.writeUInt32BE(data.byteLength, 12);
  b.set(data, 16);
  return b;
}

/** NBD_OPT_GO's data: the export name and the information requests (export, block size). */
export function encodeGo(exportName: string): Buffer {
  const name = Buffer.from(exportName, 'utf8');
  const b = Buffer.alloc(4 + name.byteLength + 2 + 4);
  b.writeUInt32BE(name.byteLength, 0);
  name.copy(b, 4);
  let o = 4 + name.byteLength;
  b.writeUInt16BE(2, o);
  b.writeUInt16BE(INFO_EXPORT, o + 2);
  b.writeUInt16BE(INFO_BLOCK_SIZE, o + 4);
  return b;
}

export function encodeExportNameOption(exportName: string): Buffer {
  return encodeOption(OPT_EXPORT_NAME, Buffer.from(exportName, 'utf8'));
}

export interface OptReplyHeader {
  option: number;
  type: number;
  length: number;
}

/** Checks an option reply header against the option asked; bounds its data length. */
export function decodeOptReplyHeader(buf: Uint8Array, askedOption: number): OptReplyHeader {
  const v = view(buf);
  if (v.getUint32(0) !== OPT_REPLY_MAGIC_HI || v.getUint32(4) !== OPT_REPLY_MAGIC_LO) {
    throw new NbdProtocolError('bad option reply magic');
  }
  const option = v.getUint32(8);
  const type = v.getUint32(12);
  const length = v.getUint32(16);
  if (option !== askedOption) throw new NbdProtocolError(`option reply for option ${option}, asked ${askedOption}`);
  if (length > MAX_OPT_REPLY_DATA) throw new NbdProtocolError(`option reply of ${length} bytes (at most ${MAX_OPT_REPLY_DATA})`);
  if (type === REP_ACK && length !== 0) throw new NbdProtocolError('NBD_REP_ACK with data');
  return { option, type, length };
}

export interface ExportInfo {
  sizeBytes: number;
  flags: number;
}

export interface BlockSizeInfo {
  minimum: number;
  preferred: number;
  maximum: number;
}

const isPow2 = (n: number): boolean => n > 0 && (n & (n - 1)) === 0;

/**
 * Decodes one NBD_REP_INFO payload; returns null for information types not asked for (a
 * server may send others, the client ignores them).
 */
export function decodeInfo(data: Uint8Array): { export: ExportInfo } | { blockSize: BlockSizeInfo } | null {
  if (data.byteLength < 2) throw new NbdProtocolError('NBD_REP_INFO without a type');
  const v = view(data);
  const type = v.getUint16(0);
  if (type === INFO_EXPORT) {
    if (data.byteLength !== 12) throw new NbdProtocolError(`NBD_INFO_EXPORT of ${data.byteLength} bytes (12 expected)`);
    const sizeBytes = readU64(data, 2);
    if (sizeBytes === null) throw new NbdProtocolError('export size beyond 2^53 bytes');
    return { export: { sizeBytes, flags: v.getUint16(10) } };
  }
  if (type === INFO_BLOCK_SIZE) {
    if (data.byteLength !== 14) throw new NbdProtocolError(`NBD_INFO_BLOCK_SIZE of ${data.byteLength} bytes (14 expected)`);
    const minimum = v.getUint32(2);
    const preferred = v.getUint32(6);
    const maximum = v.getUint32(10);
    if (!isPow2(minimum) || minimum > 65536) throw new NbdProtocolError(`minimum block size ${minimum} is not a power of 2 up to 64 KiB`);
    if (!isPow2(preferred) || preferred < minimum || preferred > 0x2000000) {
      throw new NbdProtocolError(`preferred block size ${preferred} is not a power of 2 between the minimum and 32 MiB`);
    }
    if (maximum < minimum || (maximum !== 0xffffffff && maximum % minimum !== 0)) {
      throw new NbdProtocolError(`maximum block size ${maximum} does not fit the minimum ${minimum}`);
    }
    return { blockSize: { minimum, preferred, maximum } };
  }
  return null;
}

/** NBD_OPT_EXPORT_NAME's reply (size and transmission flags). */
export function decodeExportNameReply(buf: Uint8Array): ExportInfo {
  const sizeBytes = readU64(buf, 0);
  if (sizeBytes === null) throw new NbdProtocolError('export size beyond 2^53 bytes');
  return { sizeBytes, flags: view(buf).getUint16(8) };
}

/** An option error reply's name, for one-line messages. */
export function optionErrorName(type: number): string {
  switch (type) {
    case REP_ERR_UNSUP: return 'NBD_REP_ERR_UNSUP';
    case REP_ERR_POLICY: return 'NBD_REP_ERR_POLICY';
    case REP_ERR_INVALID: return 'NBD_REP_ERR_INVALID';
    case REP_ERR_PLATFORM: return 'NBD_REP_ERR_PLATFORM';
    case REP_ERR_TLS_REQD: return 'NBD_REP_ERR_TLS_REQD';
    case REP_ERR_UNKNOWN: return 'NBD_REP_ERR_UNKNOWN';
    case REP_ERR_SHUTDOWN: return 'NBD_REP_ERR_SHUTDOWN';
    case REP_ERR_BLOCK_SIZE_REQD: return 'NBD_REP_ERR_BLOCK_SIZE_REQD';
    case REP_ERR_TOO_BIG: return 'NBD_REP_ERR_TOO_BIG';
    default: return `error reply ${(type >>> 0).toString(16)}`;
  }
}

/**
 * Writes one request header at buf[off..off+28]. The 64-bit handle is two 32-bit halves (slot
 * index, generation); the offset is split likewise (exact below 2^53).
 */
export function encodeRequest(
  buf: Buffer,
  off: number,
  type: number,
  flags: number,
  handleHi: number,
  handleLo: number,
  offset: number,
  length: number,
): void {
  buf.writeUInt32BE(REQUEST_MAGIC, off);
  buf.writeUInt16BE(flags, off + 4);
  buf.writeUInt16BE(type, off + 6);
  buf.writeUInt32BE(handleHi >>> 0, off + 8);
  buf.writeUInt32BE(handleLo >>> 0, off + 12);
  buf.writeUInt32BE(Math.floor(offset / 0x100000000), off + 16);
  buf.writeUInt32BE(offset >>> 0, off + 20);
  buf.writeUInt32BE(length >>> 0, off + 24);
}

/** NBD error values (Linux errno numbers) as errno names; anything unknown is EIO. */
export function replyErrorCode(error: number): string {
  switch (error) {
    case 1: return 'EPERM';
    case 5: return 'EIO';
    case 12: return 'ENOMEM';
    case 22: return 'EINVAL';
    case 28: return 'ENOSPC';
    case 75: return 'EOVERFLOW';
    case 95: return 'EOPNOTSUPP';
    case 108: return 'ESHUTDOWN';
    default: return 'EIO';
  }
}
