// Ring memory for tests: plain bytes, optionally with a header set at a given start index.
import { REQ_EVENT, REQ_PROD, RSP_EVENT, RSP_PROD, XEN_PAGE_SIZE } from '../../../src/blkif';

export function ringMemory(pages: number): Uint8Array {
  return new Uint8Array(pages * XEN_PAGE_SIZE);
}

/** A ring as a frontend leaves it after FRONT_RING_ATTACH at `start` with nothing in flight. */
export function headerAt(mem: Uint8Array, start: number): void {
  const h = new Uint32Array(mem.buffer, mem.byteOffset, 16);
  h[REQ_PROD] = start >>> 0;
  h[RSP_PROD] = start >>> 0;
  h[REQ_EVENT] = (start + 1) >>> 0;
  h[RSP_EVENT] = (start + 1) >>> 0;
}

export function header(mem: Uint8Array): Uint32Array {
  return new Uint32Array(mem.buffer, mem.byteOffset, 16);
}
