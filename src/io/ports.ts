// The ports through which everything above src/io touches Xen. Each has a real implementation
// (/dev/xen through libxengnttab/libxenevtchn) and a simulated one (the simulated Xen host).
// Nothing above the ports knows which one it holds.
import type { Observable } from 'rxjs';
import type { DmaRegion } from './dma';

/** A contiguous local mapping of granted guest pages. */
export interface GrantMapping {
  /** The mapped pages, refs.length * 4096 bytes, in the order of the refs. */
  readonly view: Uint8Array;
  readonly writable: boolean;
  /** Idempotent. */
  unmap(): Promise<void>;
}

/**
 * A batch of grant-copy segments, struct-of-arrays so that the dataplane fills it without
 * allocating. Local memory is always a DmaRegion (page-aligned, known address, usable by the
 * real hypercall and by the simulation alike).
 */
export interface GrantCopySegment {
  /** true: local -> guest page (a read answered); false: guest page -> local (a write). */
  toGuest: boolean;
  domid: number;
  ref: number;
  /** Offset inside the granted 4 KiB page. offset + len <= 4096. */
  guestOffset: number;
  len: number;
  local: DmaRegion;
  localOffset: number;
}

export interface GrantTable {
  map(domid: number, refs: readonly number[], writable: boolean): Promise<GrantMapping>;
  /**
   * Executes every segment; statuses[i] receives 0 (GNTST_okay) or a negative GNTST_* code.
   * Synchronous: it is one hypercall on a real host. Returns the number of failed segments.
   */
  copy(segments: readonly GrantCopySegment[], count: number, statuses: Int16Array): number;
  close(): Promise<void>;
}

export interface EvtchnPort {
  readonly localPort: number;
  readonly remoteDomid: number;
  readonly remotePort: number;
  /**
   * One emission per delivery. After an emission the port stays masked (further notifications
   * coalesce) until unmask() is called, as with /dev/xen/evtchn.
   */
  readonly events$: Observable<void>;
  notify(): void;
  unmask(): void;
  /** Idempotent. */
  unbind(): Promise<void>;
}

export interface EventChannel {
  bindInterdomain(remoteDomid: number, remotePort: number): Promise<EvtchnPort>;
  /** Allocates a port that remoteDomid may bind to (what a frontend does). */
  allocUnbound(remoteDomid: number): Promise<EvtchnPort>;
  close(): Promise<void>;
}

/** Xen's grant status codes (grant_table.h), as they come back from a copy. */
export const GNTST = {
  okay: 0,
  general_error: -1,
  bad_domain: -2,
  bad_gntref: -3,
  bad_handle: -4,
  bad_virt_addr: -5,
  bad_dev_addr: -6,
  no_device_space: -7,
  permission_denied: -8,
  bad_page: -9,
  bad_copy_arg: -10,
  address_too_big: -11,
  eagain: -12,
} as const;
