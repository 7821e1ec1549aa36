// Page-aligned local memory with a known address: what grant copy and O_DIRECT need.
import { MAP_ANONYMOUS, MAP_PRIVATE, PROT_READ, PROT_WRITE, mmap, munmap } from './libc';

export interface DmaRegion {
  readonly view: Uint8Array;
  /** Virtual address of view[0] in this process. */
  readonly address: bigint;
  readonly length: number;
  free(): void;
}

const PAGE = 4096;

/** Where each live region starts, as a number (user addresses are below 2^47). */
const starts = new WeakMap<ArrayBufferLike, number>();

/** The address of view[0] when view lies in a live DmaRegion, else -1 (kernel I/O needs one). */
export function dmaAddressOf(view: Uint8Array): number {
  const start = starts.get(view.buffer);
  return start === undefined ? -1 : start + view.byteOffset;
}

/** Allocates page-aligned anonymous memory outside the JS heap. */
export function allocDma(bytes: number): DmaRegion {
  const length = Math.max(PAGE, Math.ceil(bytes / PAGE) * PAGE);
  const m = mmap(length, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS);
  let freed = false;
  starts.set(m.buffer, Number(m.address));
  return {
    view: new Uint8Array(m.buffer),
    address: m.address,
    length,
    free() {
      if (freed) return;
      freed = true;
      starts.delete(m.buffer);
      munmap(m.address, length);
    },
  };
}
