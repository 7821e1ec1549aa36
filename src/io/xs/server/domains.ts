// Per-domain state the server keeps besides the tree: which domains are introduced, SET_TARGET
// relations, the permissions of the special watch paths, and per-domain quota overrides.
import { type SpecialPath } from '../paths';
import type { XsPerm } from '../perms';
import { DEFAULT_QUOTAS, type XsQuotas } from './quotas';

const DOM0_ONLY: readonly XsPerm[] = [{ domid: 0, access: 'n' }];

export class Domains {
  private readonly introduced = new Set<number>();
  private readonly targets = new Map<number, number>();
  private readonly special = new Map<SpecialPath, readonly XsPerm[]>();
  private readonly overrides = new Map<number, Partial<XsQuotas>>();
  quotas: XsQuotas;

  constructor(quotas: Partial<XsQuotas> = {}) {
    this.quotas = { ...DEFAULT_QUOTAS, ...quotas };
  }

  isIntroduced(domid: number): boolean {
    return domid === 0 || this.introduced.has(domid);
  }

  /** Returns false when the domain was already introduced. */
  introduce(domid: number): boolean {
    if (this.isIntroduced(domid)) return false;
    this.introduced.add(domid);
    return true;
  }

  /** Returns false when the domain was not introduced. */
  release(domid: number): boolean {
    if (!this.introduced.delete(domid)) return false;
    this.targets.delete(domid);
    for (const [d, t] of this.targets) if (t === domid) this.targets.delete(d);
    this.overrides.delete(domid);
    return true;
  }

  targetOf(domid: number): number | undefined {
    return this.targets.get(domid);
  }

  setTarget(domid: number, target: number): void {
    this.targets.set(domid, target);
  }

  specialPerms(path: SpecialPath): readonly XsPerm[] {
    return this.special.get(path) ?? DOM0_ONLY;
  }

  setSpecialPerms(path: SpecialPath, perms: readonly XsPerm[]): void {
    this.special.set(path, perms);
  }

  quotasFor(domid: number): XsQuotas {
    const o = this.overrides.get(domid);
    return o ? { ...this.quotas, ...o } : this.quotas;
  }

  setQuota(domid: number | undefined, name: keyof XsQuotas, value: number): void {
    if (domid === undefined) this.quotas = { ...this.quotas, [name]: value };
    else this.overrides.set(domid, { ...this.overrides.get(domid), [name]: value });
  }
}
