// Page-aligned local memory with a known address: what grant copy and O_DIRECT need.
export interface DmaRegion {
  readonly view: Uint8Array;
  /** Virtual address of view[0] in this process. */
  readonly address: bigint;
  readonly length: number;
  free(): void;
}
