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

/** Allocates page-aligned anonymous memory outside the JS heap. */
export function allocDma(bytes: number): DmaRegion {
  const length = Math.max(PAGE, Math.ceil(bytes / PAGE) * PAGE);
  const m = mmap(length, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS);
  let freed = false;
  return {
    view: new Uint8Array(m.buffer),
    address: m.address,
    length,
    free() {
      if (freed) return;
      freed = true;
      munmap(m.address, length);
    },
  };
}
