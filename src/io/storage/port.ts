// The storage port: where a virtual disk's bytes live. Drivers: raw files and block devices
// (raw.ts), Ceph RBD through librbd (rbd/), NBD exports (nbd/), and the image formats QEMU's
// block layer serves through a supervised qemu-storage-daemon (qsd/, over NBD).
// Callback style on purpose: this is the dataplane's hot path, no promise per request. A driver
// may complete several requests in one turn (rbd's event batch, an NBD reply burst); each
// callback is called exactly once, never synchronously from the call that issued it.

export type IoCallback = (err: NodeJS.ErrnoException | null) => void;

export interface DiscardSupport {
  /** Bytes. */
  readonly granularity: number;
  readonly alignment: number;
  /** A secure erase (BLKIF_DISCARD_SECURE) can be honoured. */
  readonly secure: boolean;
}

/** What a driver can do beyond reading and writing; decides part of the realize keys. */
export interface StorageCapabilities {
  /** Writes may sit in a volatile cache until a flush (false: flush completes at once). */
  readonly volatileCache: boolean;
  /** write(..., fua=true) is durable by itself: a barrier's write needs no flush after it. */
  readonly fua: boolean;
  /** writeZeroes is served by the storage itself. */
  readonly writeZeroes: boolean;
  /** The largest read or write one call takes, in bytes (bounds feature-max-indirect-segments). */
  readonly maxTransferBytes: number;
  /** The alignment buffers need, in bytes (4096 with O_DIRECT, 1 where anything goes). */
  readonly bufferAlignment: number;
}

/** A driver that knows nothing beyond read, write, flush: the conservative defaults. */
export const BASIC_CAPABILITIES: StorageCapabilities = {
  volatileCache: true,
  fua: false,
  writeZeroes: false,
  maxTransferBytes: Number.MAX_SAFE_INTEGER,
  bufferAlignment: 1,
};

/** The storage engines; 'qsd' images are served by a qemu-storage-daemon over NBD. */
export type StorageDriverName = 'file' | 'block-device' | 'rbd' | 'nbd' | 'qsd';

export interface BlockImage {
  /** What was opened, as the toolstack spelled it (a path, rbd:..., nbd:..., qcow2:...). */
  readonly path: string;
  /** Which engine serves it (absent on test doubles: a file). */
  readonly driver?: StorageDriverName;
  /** Absent: BASIC_CAPABILITIES. */
  readonly capabilities?: StorageCapabilities;
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
  /**
   * Since when (ms since the epoch) the storage has not answered: a lost NBD server being
   * reconnected. null while it answers; absent for drivers that cannot tell.
   */
  readonly stalledSince?: number | null;

  /** Reads exactly len bytes at pos into buf[bufOffset..]. */
  read(buf: Uint8Array, bufOffset: number, len: number, pos: number, cb: IoCallback): void;
  /** fua: durable when cb is called (only asked where capabilities.fua). */
  write(buf: Uint8Array, bufOffset: number, len: number, pos: number, cb: IoCallback, fua?: boolean): void;
  /** Returns once everything written before reached stable storage (fdatasync). */
  flush(cb: IoCallback): void;
  discard(pos: number, len: number, secure: boolean, cb: IoCallback): void;
  /** Zeroes the range on the storage itself (only where capabilities.writeZeroes). */
  writeZeroes?(pos: number, len: number, cb: IoCallback): void;
  /**
   * The dataplane issues a batch between plug() and unplug(): a driver that sends requests over
   * a socket writes them out at unplug (one syscall per batch, like Linux's block plug).
   */
  plug?(): void;
  unplug?(): void;
  /** Re-reads the size (online resize); returns the new size in bytes. */
  refreshSize(): Promise<number>;
  /**
   * Calls listener with the new size whenever the storage says the image changed size (rbd's
   * update watch). Returns the unsubscribe function.
   */
  onResize?(listener: (sizeBytes: number) => void): () => void;
  /** Ends this process's use of the image; what serves it elsewhere (a storage daemon) stays. */
  close(): Promise<void>;
  /** close(), and ends what was started to serve it (the device is gone for good). */
  retire?(): Promise<void>;
}

export interface OpenImageOptions {
  readOnly?: boolean;
  /** Try O_DIRECT; falls back to buffered I/O where the file system refuses it. Default true. */
  direct?: boolean;
}

/** The capabilities of an image (the defaults for drivers that declare none). */
export function capabilitiesOf(image: Pick<BlockImage, 'capabilities'>): StorageCapabilities {
  return image.capabilities ?? BASIC_CAPABILITIES;
}
