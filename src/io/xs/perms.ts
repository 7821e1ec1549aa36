// Node permissions (xenstore.txt GET_PERMS/SET_PERMS): `<n|r|w|b><domid>`. The first entry names
// the owner and sets the access of every domain without an entry of its own. Pure.

export type XsAccess = 'n' | 'r' | 'w' | 'b';

export interface XsPerm {
  readonly domid: number;
  readonly access: XsAccess;
}

export const PERM_READ = 1;
export const PERM_WRITE = 2;
export const PERM_OWNER = 4;
export const PERM_ALL = PERM_READ | PERM_WRITE | PERM_OWNER;

const PERM_RE = /^([nrwb])(\d{1,5})$/;

/** Parses one `<n|r|w|b><domid>` entry; undefined when malformed or the domid exceeds 65535. */
export function parsePerm(s: string): XsPerm | undefined {
  const m = PERM_RE.exec(s);
  if (!m) return undefined;
  const domid = Number(m[2]);
  if (domid > 0xffff) return undefined;
  return { access: m[1] as XsAccess, domid };
}

export function formatPerm(p: XsPerm): string {
  return `${p.access}${p.domid}`;
}

export function accessBits(access: XsAccess): number {
  switch (access) {
    case 'n':
      return 0;
    case 'r':
      return PERM_READ;
    case 'w':
      return PERM_WRITE;
    case 'b':
      return PERM_READ | PERM_WRITE;
  }
}

export function validatePerms(perms: readonly XsPerm[]): string | undefined {
  if (perms.length === 0) return 'at least one permission entry (the owner) is required';
  for (const p of perms) {
    if (!Number.isInteger(p.domid) || p.domid < 0 || p.domid > 0xffff) return `bad domid ${p.domid}`;
    if (!['n', 'r', 'w', 'b'].includes(p.access)) return `bad access '${String(p.access)}'`;
  }
  return undefined;
}
