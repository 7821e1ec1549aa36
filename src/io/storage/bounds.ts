// The bounds every storage driver checks before touching a buffer or an image (defence in depth:
// the dataplane checks requests too). Pure; a problem is one line for a StorageError.

/** Why len bytes at bufOffset do not fit in buf (EINVAL); null when they do. */
export function bufferProblem(what: string, buf: Uint8Array, bufOffset: number, len: number): string | null {
  const valid = Number.isSafeInteger(bufOffset) && Number.isSafeInteger(len) && bufOffset >= 0 && len >= 0;
  return valid && bufOffset + len <= buf.byteLength ? null : `${what}: ${len} bytes at offset ${bufOffset} of a ${buf.byteLength}-byte buffer`;
}

/** Why [pos, pos + len) is not inside an image of sizeBytes (ERANGE); null when it is. */
export function rangeProblem(what: string, len: number, pos: number, sizeBytes: number): string | null {
  const valid = Number.isSafeInteger(pos) && Number.isSafeInteger(len) && pos >= 0 && len >= 0;
  return valid && pos <= sizeBytes && len <= sizeBytes - pos ? null : `${what} of ${len} bytes at ${pos} outside an image of ${sizeBytes} bytes`;
}
