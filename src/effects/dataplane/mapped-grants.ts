// Grant mappings as a data path: per-batch mappings (map mode, unmapped when the last request of
// the batch let go) and the persistent-grant cache (each ref mapped once, kept until the ring
// stops, as Linux blkback does for feature-persistent).
import { XEN_PAGE_SIZE } from '../../blkif/constants';
import type { GrantMapping, GrantTable } from '../../io/ports';
import type { Logger } from '../../log';

/** One map-mode mapping shared by the requests of a batch. */
export class SharedMapping {
  private users: number;

  constructor(
    readonly mapping: GrantMapping,
    users: number,
    private readonly logger: Logger,
  ) {
    this.users = users;
  }

  release(): void {
    if (--this.users === 0) {
      this.mapping.unmap().catch((e: Error) => this.logger.warn({ err: e.message }, 'unmapping a request batch failed'));
    }
  }
}

interface CachedGrant {
  readonly view: Uint8Array;
  readonly base: number;
}

export class PersistentGrantCache {
  private readonly grants = new Map<number, CachedGrant>();
  private readonly mappings: GrantMapping[] = [];
  /** Refs a frontend offered that could not be mapped (refused): never retried, copied instead. */
  private readonly refused = new Set<number>();

  constructor(
    readonly capacity: number,
    private readonly gnttab: GrantTable,
    private readonly domid: number,
  ) {}

  get size(): number {
    return this.grants.size;
  }

  /** Fills view/base for segments [0, n) when every ref is cached; false otherwise. */
  resolve(grefs: Uint32Array, n: number, view: Uint8Array[], base: Int32Array): boolean {
    for (let i = 0; i < n; i++) {
      const g = this.grants.get(grefs[i]);
      if (g === undefined) return false;
      view[i] = g.view;
      base[i] = g.base;
    }
    return true;
  }

  /**
   * Adds the refs of [0, n) not cached yet to `into`, if they all fit the cache and none was
   * refused before; false: this request must be served by grant copy.
   */
  collectMissing(grefs: Uint32Array, n: number, into: Set<number>): boolean {
    let added = 0;
    for (let i = 0; i < n; i++) {
      const r = grefs[i];
      if (this.refused.has(r)) return false;
      if (!this.grants.has(r) && !into.has(r)) added++;
    }
    if (this.grants.size + into.size + added > this.capacity) return false;
    for (let i = 0; i < n; i++) if (!this.grants.has(grefs[i])) into.add(grefs[i]);
    return true;
  }

  /** Maps refs writable (persistent grants serve reads and writes alike) and caches them. */
  async add(refs: number[]): Promise<boolean> {
    let m: GrantMapping;
    try {
      m = await this.gnttab.map(this.domid, refs, true);
    } catch {
      // One bad ref fails the batch: map one by one to find it, keep the good ones.
      if (refs.length === 1) {
        if (this.refused.size >= this.capacity) this.refused.clear(); // bounded whatever the guest sends
        this.refused.add(refs[0]);
        return false;
      }
      let all = true;
      for (const r of refs) if (!(await this.add([r]))) all = false;
      return all;
    }
    this.mappings.push(m);
    for (let i = 0; i < refs.length; i++) this.grants.set(refs[i], { view: m.view, base: i * XEN_PAGE_SIZE });
    return true;
  }

  async close(): Promise<void> {
    this.grants.clear();
    const ms = this.mappings.splice(0);
    await Promise.allSettled(ms.map((m) => m.unmap()));
  }
}
