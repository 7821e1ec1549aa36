// Who may do what to a node (xenstore.txt "Permissions"; xenstored's perm_for_conn): dom0 and the
// owner have every right; otherwise the first entry naming the domain applies, else the first
// entry's access. A domain given a target (SET_TARGET) also acts with the target's rights.
import { PERM_ALL, accessBits, type XsPerm } from '../perms';

/** Domain ids at or above this are special (xen.h DOMID_FIRST_RESERVED). */
export const DOMID_FIRST_RESERVED = 0x7ff0;
export const DOMID_SELF = 0x7ff0;

export function isPrivileged(domid: number): boolean {
  return domid === 0;
}

export function permFor(domid: number, target: number | undefined, perms: readonly XsPerm[]): number {
  const own = perms[0].domid;
  if (isPrivileged(domid) || own === domid || (target !== undefined && own === target)) return PERM_ALL;
  for (let i = 1; i < perms.length; i++) {
    const p = perms[i];
    if (p.domid === domid || (target !== undefined && p.domid === target)) return accessBits(p.access);
  }
  return accessBits(perms[0].access);
}
