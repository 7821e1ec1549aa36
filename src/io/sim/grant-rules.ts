// Xen's v1 grant-table rules, shared by the simulated hypervisor (map) and the daemon's simulated
// grant copy. Pure: callers read the entry once and pass the copied values in.
import { GNTST } from '../ports';

export const PAGE_SIZE = 4096;
export const PAGE_SHIFT = 12;

/** grant_entry_v1: flags u16 @0, domid u16 @2, frame u32 @4. */
export const GRANT_ENTRY_BYTES = 8;
export const GRANT_ENTRIES_PER_FRAME = PAGE_SIZE / GRANT_ENTRY_BYTES;

/** GTF_* bits of grant_entry_v1.flags (xen/include/public/grant_table.h). */
export const GTF = {
  invalid: 0,
  permit_access: 1,
  type_mask: 3,
  readonly: 1 << 2,
  reading: 1 << 3,
  writing: 1 << 4,
} as const;

/** Linux keeps the first refs for the toolstack (GNTTAB_NR_RESERVED_ENTRIES). */
export const RESERVED_GRANT_REFS = 8;

/** Highest domid a guest can have (DOMID_FIRST_RESERVED - 1). */
export const MAX_GUEST_DOMID = 0x7fef;

/** What a grant check needs to know about the granting domain's memory. */
export interface GrantLayout {
  /** Pages of guest memory. */
  readonly frames: number;
  /** The first grantFrames pages hold the grant table. */
  readonly grantFrames: number;
}

/**
 * Whether domain `caller` may use an entry {flags, grantee, frame} for reading (or writing).
 * Returns GNTST.okay or the status Xen's map/copy path gives for the violation.
 */
export function checkGrant(
  flags: number,
  grantee: number,
  frame: number,
  caller: number,
  write: boolean,
  layout: GrantLayout,
): number {
  if ((flags & GTF.type_mask) !== GTF.permit_access || grantee !== caller) return GNTST.general_error;
  if (write && (flags & GTF.readonly) !== 0) return GNTST.general_error;
  // The grant table itself is the hypervisor's: never handed out as a data page.
  if (frame < layout.grantFrames || frame >= layout.frames) return GNTST.bad_page;
  return GNTST.okay;
}

/** Number of grant entries a domain has. */
export function grantEntries(layout: GrantLayout): number {
  return layout.grantFrames * GRANT_ENTRIES_PER_FRAME;
}

const GNTST_NAMES = new Map<number, string>(Object.entries(GNTST).map(([k, v]) => [v, `GNTST_${k}`]));

export function gntstName(status: number): string {
  return GNTST_NAMES.get(status) ?? `GNTST ${status}`;
}

/** A non-negative integer below 2^32, as a wire u32 must be. */
export function isU32(n: number): boolean {
  return Number.isInteger(n) && n >= 0 && n <= 0xffffffff;
}
