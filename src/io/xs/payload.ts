// Payload helpers: xenstore payloads are NUL-separated strings (xenstore.txt "Xenstore protocol
// details"). Pure.

/**
 * Splits a payload made of NUL-terminated strings. Bytes after the last NUL (an unterminated
 * tail) are returned in `rest`, so callers can insist on exact forms.
 */
export function splitStrings(
  payload: Uint8Array,
  encoding: BufferEncoding = 'utf8',
): { strings: string[]; rest: Buffer } {
  const buf = Buffer.isBuffer(payload) ? payload : Buffer.from(payload.buffer, payload.byteOffset, payload.length);
  const strings: string[] = [];
  let start = 0;
  for (;;) {
    const nul = buf.indexOf(0, start);
    if (nul < 0) break;
    strings.push(buf.toString(encoding, start, nul));
    start = nul + 1;
  }
  return { strings, rest: buf.subarray(start) };
}

/** The payload as one NUL-terminated string, or undefined unless it is exactly that. */
export function oneString(payload: Buffer, encoding: BufferEncoding = 'utf8'): string | undefined {
  if (payload.length === 0 || payload[payload.length - 1] !== 0) return undefined;
  const nul = payload.indexOf(0);
  if (nul !== payload.length - 1) return undefined;
  return payload.toString(encoding, 0, nul);
}

/** Decodes a reply that is a string followed by an optional NUL (e.g. `OK\0`, `5\0`). */
export function replyString(payload: Buffer): string {
  const end = payload.length > 0 && payload[payload.length - 1] === 0 ? payload.length - 1 : payload.length;
  return payload.toString('utf8', 0, end);
}

/** Child names of a DIRECTORY reply: each name NUL-terminated; an empty payload is no children. */
export function decodeNames(payload: Buffer, start = 0): string[] {
  const names: string[] = [];
  let s = start;
  while (s < payload.length) {
    let nul = payload.indexOf(0, s);
    if (nul < 0) nul = payload.length;
    names.push(payload.toString('utf8', s, nul));
    s = nul + 1;
  }
  return names;
}
