// The storage port: where a virtual disk's bytes live. The raw image (file or block device) is
// the default engine; others (a network block device client) fit behind the same interface.
// Callback style on purpose: this is the dataplane's hot path, no promise per request.

export type IoCallback = (err: NodeJS.ErrnoException | null) => void;

export interface DiscardSupport {
  /** Bytes. */
  readonly granularity: number;
  readonly alignment: number;
  /** A secure erase (BLKIF_DISCARD_SECURE) can be honoured. */
  readonly secure: boolean;
}

export interface BlockImage {
  readonly path: string;
  /** Size in bytes; a multiple of 512. */
  readonly sizeBytes: number;
  readonly readOnly: boolean;
  /** Logical sector size exposed to the guest (sector-size). */
  readonly sectorSize: number;
  readonly physicalSectorSize: number;
  /** null when the engine cannot punch holes. */
  readonly discardSupport: DiscardSupport | null;
  /** Whether reads and writes bypass the page cache (buffers must then be 4 KiB aligned). */
  readonly direct: boolean;

  /** Reads exactly len bytes at pos into buf[bufOffset..]. */
  read(buf: Uint8Array, bufOffset: number, len: number, pos: number, cb: IoCallback): void;
  write(buf: Uint8Array, bufOffset: number, len: number, pos: number, cb: IoCallback): void;
  /** Returns once everything written before reached stable storage (fdatasync). */
  flush(cb: IoCallback): void;
  discard(pos: number, len: number, secure: boolean, cb: IoCallback): void;
  /** Re-reads the size (online resize); returns the new size in bytes. */
  refreshSize(): Promise<number>;
  close(): Promise<void>;
}

export interface OpenImageOptions {
  readOnly?: boolean;
  /** Try O_DIRECT; falls back to buffered I/O where the file system refuses it. Default true. */
  direct?: boolean;
}
