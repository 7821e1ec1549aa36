// GrantTable on a real dom0: /dev/xen/gntdev through libxengnttab. The handle opens on first use.
import koffi = require('koffi');
import { PROT_READ, PROT_WRITE } from '../libc';
import { GNTST, type GrantCopySegment, type GrantMapping, type GrantTable } from '../ports';
import { XenDeviceError } from './errors';
import { CopySegmentArray } from './grant-copy-segments';
import { gnttabLib, type GnttabLib } from './libs';

const PAGE = 4096;

export interface RealGrantTableOptions {
  /** Path of libxengnttab (tests point it at a stand-in). */
  library?: string;
  /** xengnttab_set_max_grants after open. Default 8192. */
  maxGrants?: number;
}

export class RealGrantTable implements GrantTable {
  private lib: GnttabLib | undefined;
  private handle: unknown = null;
  private closed = false;
  private readonly segs = new CopySegmentArray();
  /** sent[k] = index in the caller's batch of the k-th segment handed to the library. */
  private sent = new Int32Array(64);
  private readonly mappings = new Set<RealGrantMapping>();

  constructor(private readonly opts: RealGrantTableOptions = {}) {}

  /** Opens /dev/xen/gntdev now (otherwise the first map or copy does). */
  open(): void {
    this.h();
  }

  async map(domid: number, refs: readonly number[], writable: boolean): Promise<GrantMapping> {
    const h = this.h();
    const what = `map d${domid} ${refs.length} refs`;
    if (!isU32(domid) || refs.length === 0 || !refs.every(isU32))
      throw new XenDeviceError('xengnttab_map_domain_grant_refs', 22, `${what}: bad domid or refs`);
    const arr = Uint32Array.from(refs);
    const ptr = this.lib!.mapDomainGrantRefs(h, arr.length, domid, arr, writable ? PROT_READ | PROT_WRITE : PROT_READ);
    if (ptr === null) throw XenDeviceError.failed('xengnttab_map_domain_grant_refs', koffi.errno(), what);
    const m = new RealGrantMapping(this, ptr, arr.length, writable);
    this.mappings.add(m);
    return m;
  }

  copy(segments: readonly GrantCopySegment[], count: number, statuses: Int16Array): number {
    const h = this.h();
    this.segs.reserve(count);
    if (this.sent.length < count) this.sent = new Int32Array(Math.max(count, 2 * this.sent.length));
    let failed = 0;
    let n = 0;
    for (let i = 0; i < count; i++) {
      const s = segments[i];
      const st = check(s);
      if (st !== GNTST.okay) {
        statuses[i] = st;
        failed++;
      } else if (s.len === 0) {
        statuses[i] = GNTST.okay;
      } else {
        this.segs.set(n, s.toGuest, s.domid, s.ref, s.guestOffset, s.len, Number(s.local.address) + s.localOffset);
        this.sent[n++] = i;
      }
    }
    if (n === 0) return failed;
    const rc = this.lib!.grantCopy(h, n, this.segs.bytes);
    for (let k = 0; k < n; k++) {
      // rc < 0: statuses are undefined (gntdev.h): every segment failed.
      const st = rc < 0 ? GNTST.general_error : this.segs.status(k);
      statuses[this.sent[k]] = st;
      if (st !== GNTST.okay) failed++;
    }
    return failed;
  }

  async close(): Promise<void> {
    if (this.closed) return;
    await Promise.allSettled([...this.mappings].map((m) => m.unmap()));
    this.closed = true;
    if (this.handle !== null) this.lib!.close(this.handle);
    this.handle = null;
    this.segs.free();
  }

  /** Used by mappings. */
  unmapRaw(ptr: unknown, count: number, m: RealGrantMapping): void {
    this.mappings.delete(m);
    if (this.handle === null) return;
    if (this.lib!.unmap(this.handle, ptr, count) < 0)
      throw XenDeviceError.failed('xengnttab_unmap', koffi.errno(), `unmap ${count} pages`);
  }

  private h(): unknown {
    if (this.handle !== null) return this.handle;
    if (this.closed) throw new XenDeviceError('xengnttab_open', 9, 'grant table is closed');
    const lib = gnttabLib(this.opts.library);
    const h = lib.open(null, 0);
    if (h === null) throw XenDeviceError.open('xengnttab_open', '/dev/xen/gntdev', koffi.errno());
    if (lib.setMaxGrants(h, this.opts.maxGrants ?? 8192) < 0) {
      const errno = koffi.errno();
      lib.close(h);
      throw XenDeviceError.failed('xengnttab_set_max_grants', errno, 'set max grants');
    }
    this.lib = lib;
    this.handle = h;
    return h;
  }
}

class RealGrantMapping implements GrantMapping {
  readonly view: Uint8Array;
  private done: Promise<void> | undefined;

  constructor(
    private readonly table: RealGrantTable,
    private readonly ptr: unknown,
    private readonly count: number,
    readonly writable: boolean,
  ) {
    this.view = new Uint8Array(koffi.view(ptr, count * PAGE));
  }

  /** The view must not be touched once unmap() is called. */
  unmap(): Promise<void> {
    if (!this.done) {
      try {
        this.table.unmapRaw(this.ptr, this.count, this);
        this.done = Promise.resolve();
      } catch (e) {
        this.done = Promise.reject(e);
      }
    }
    return this.done;
  }
}

/** Refuses what the kernel would refuse for the whole batch, per segment instead. */
function check(s: GrantCopySegment): number {
  const { len, guestOffset: go, localOffset: lo } = s;
  if (!isU16(len) || !isU16(go) || !Number.isInteger(lo) || lo < 0) return GNTST.bad_copy_arg;
  if (go + len > PAGE || lo + len > s.local.length) return GNTST.bad_copy_arg;
  if (!isU16(s.domid)) return GNTST.bad_domain;
  if (!isU32(s.ref)) return GNTST.bad_gntref;
  return GNTST.okay;
}

function isU16(n: number): boolean {
  return (n & 0xffff) === n;
}

function isU32(n: number): boolean {
  return n >>> 0 === n;
}
