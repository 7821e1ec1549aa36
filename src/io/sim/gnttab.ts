// The daemon's GrantTable on the simulated host. Map goes through the hypervisor (it validates
// and pins the grants), then the granted frames of the guest's memory file are mmapped into one
// contiguous region. Copy never leaves this process: it checks each entry in the shared grant
// table itself and copies between the guest's memory (mapped once per domain) and the DmaRegion.
import { MAP_ANONYMOUS, MAP_FIXED, MAP_PRIVATE, MAP_SHARED, PROT_READ, PROT_WRITE, mmap, munmap } from '../libc';
import { GNTST, type GrantCopySegment, type GrantMapping, type GrantTable } from '../ports';
import { SimXenError } from './errors';
import { MAX_GUEST_DOMID, PAGE_SIZE, checkGrant, grantEntries, isU32, type GrantLayout } from './grant-rules';
import type { DomainInfo, HvClient, SimLogger } from './hv-client';
import { mapMemoryFile, type MemoryFile } from './memory-file';
import { MAP_FLAG_WRITABLE, MAX_MAP_REFS, MSG } from './protocol';

interface GuestMemory extends GrantLayout {
  readonly info: DomainInfo;
  readonly file: MemoryFile;
  readonly bytes: Buffer;
  /** The grant table as u32 words: [2*ref] = flags | domid << 16, [2*ref + 1] = frame. */
  readonly entries: Uint32Array;
  readonly nrEntries: number;
}

const copyBytes = Buffer.prototype.copy;

export class SimGrantTable implements GrantTable {
  private readonly mems: (GuestMemory | undefined)[] = [];
  private readonly mappings = new Set<SimGrantMapping>();

  constructor(
    private readonly client: HvClient,
    private readonly log: SimLogger,
  ) {
    client.onDomainDown = (info) => this.forget(info);
  }

  async map(domid: number, refs: readonly number[], writable: boolean): Promise<GrantMapping> {
    const op = `map d${domid} refs [${refs.length > 4 ? `${refs.slice(0, 4).join(',')},...` : refs.join(',')}]`;
    if (!isU32(domid) || domid > MAX_GUEST_DOMID) throw SimXenError.grant(op, GNTST.bad_domain, `bad domid ${domid}`);
    if (refs.length === 0 || refs.length > MAX_MAP_REFS) throw new SimXenError(op, 'EINVAL', `${refs.length} refs (1..${MAX_MAP_REFS})`);
    for (const r of refs) if (!isU32(r)) throw SimXenError.grant(op, GNTST.bad_gntref, `bad ref ${r}`);
    const reply = await this.client.call(op, MSG.MAP, MSG.MAP_OK, [domid, writable ? MAP_FLAG_WRITABLE : 0], refs);
    const handle = reply.readUInt32LE(0);
    const frames: number[] = [];
    for (let i = 0; i < refs.length; i++) frames.push(reply.readUInt32LE(4 + 4 * i));
    const mem = this.memory(domid);
    try {
      if (!mem || frames.length !== refs.length) throw new SimXenError(op, 'EIO', `memory of d${domid} is not available`);
      const m = new SimGrantMapping(this, mem, handle, frames, writable);
      this.mappings.add(m);
      return m;
    } catch (e) {
      await this.release(handle, mem?.info.generation ?? -1, domid).catch(() => {});
      throw e;
    }
  }

  copy(segments: readonly GrantCopySegment[], count: number, statuses: Int16Array): number {
    const caller = this.client.domid;
    let failed = 0;
    for (let i = 0; i < count; i++) {
      const st = this.copyOne(segments[i], caller);
      statuses[i] = st;
      if (st !== GNTST.okay) failed++;
    }
    return failed;
  }

  async close(): Promise<void> {
    await Promise.all([...this.mappings].map((m) => m.unmap()));
    for (let d = 0; d < this.mems.length; d++) {
      this.mems[d]?.file.close();
      this.mems[d] = undefined;
    }
  }

  /** Tells the hypervisor a mapping is gone (unless its domain went first). */
  async release(handle: number, generation: number, domid: number): Promise<void> {
    if (!this.client.alive || this.client.domains.get(domid)?.generation !== generation) return;
    await this.client.call(`unmap handle ${handle}`, MSG.UNMAP, MSG.OK, [handle]);
  }

  forgetMapping(m: SimGrantMapping): void {
    this.mappings.delete(m);
  }

  private copyOne(s: GrantCopySegment, caller: number): number {
    const len = s.len;
    const go = s.guestOffset;
    const lo = s.localOffset;
    if ((len | 0) !== len || (go | 0) !== go || (lo | 0) !== lo || len < 0 || go < 0 || lo < 0) return GNTST.bad_copy_arg;
    if (go + len > PAGE_SIZE || lo + len > s.local.length) return GNTST.bad_copy_arg;
    const domid = s.domid;
    const m = (domid | 0) === domid && domid >= 0 ? (this.mems[domid] ?? this.memory(domid)) : undefined;
    if (!m) return GNTST.bad_domain;
    const ref = s.ref;
    if ((ref >>> 0) !== ref || ref >= m.nrEntries) return GNTST.bad_gntref;
    // One read of the entry: the guest may rewrite it at any moment.
    const word = m.entries[2 * ref];
    const frame = m.entries[2 * ref + 1];
    const st = checkGrant(word & 0xffff, word >>> 16, frame, caller, s.toGuest, m);
    if (st !== GNTST.okay) return st;
    const g = frame * PAGE_SIZE + go;
    if (s.toGuest) copyBytes.call(s.local.view, m.bytes, g, lo, lo + len);
    else m.bytes.copy(s.local.view, lo, g, g + len);
    return GNTST.okay;
  }

  private memory(domid: number): GuestMemory | undefined {
    const cached = this.mems[domid];
    if (cached) return cached;
    const info = this.client.domains.get(domid);
    if (!info) return undefined;
    let file: MemoryFile;
    try {
      file = mapMemoryFile(info.path);
    } catch (e) {
      this.log.warn(`cannot map the memory of d${domid}: ${(e as Error).message}`);
      return undefined;
    }
    const nrEntries = grantEntries(info);
    if (file.length < info.frames * PAGE_SIZE) {
      this.log.warn(`memory file of d${domid} is ${file.length} bytes, expected ${info.frames * PAGE_SIZE}`);
      file.close();
      return undefined;
    }
    const m: GuestMemory = {
      info,
      file,
      bytes: file.bytes,
      frames: info.frames,
      grantFrames: info.grantFrames,
      entries: new Uint32Array(file.bytes.buffer, file.bytes.byteOffset, nrEntries * 2),
      nrEntries,
    };
    this.mems[domid] = m;
    return m;
  }

  private forget(info: DomainInfo): void {
    const m = this.mems[info.domid];
    if (m && m.info.generation === info.generation) {
      m.file.close();
      this.mems[info.domid] = undefined;
    }
  }
}

class SimGrantMapping implements GrantMapping {
  readonly view: Uint8Array;
  private readonly address: bigint;
  private unmapping: Promise<void> | undefined;

  constructor(
    private readonly table: SimGrantTable,
    private readonly mem: GuestMemory,
    private readonly handle: number,
    frames: readonly number[],
    readonly writable: boolean,
  ) {
    for (const f of frames)
      if (f < mem.grantFrames || f >= mem.frames) throw new SimXenError(`map d${mem.info.domid}`, 'EIO', `hypervisor gave frame ${f}`);
    const length = frames.length * PAGE_SIZE;
    const prot = writable ? PROT_READ | PROT_WRITE : PROT_READ;
    const region = mmap(length, prot, MAP_PRIVATE | MAP_ANONYMOUS);
    try {
      // One mmap per run of consecutive frames.
      for (let i = 0; i < frames.length; ) {
        let j = i + 1;
        while (j < frames.length && frames[j] === frames[j - 1] + 1) j++;
        const at = region.address + BigInt(i * PAGE_SIZE);
        mmap((j - i) * PAGE_SIZE, prot, MAP_SHARED | MAP_FIXED, mem.file.fd, frames[i] * PAGE_SIZE, at);
        i = j;
      }
    } catch (e) {
      munmap(region.address, length);
      throw e;
    }
    this.address = region.address;
    this.view = new Uint8Array(region.buffer);
  }

  /** The view must not be touched once unmap() is called (like a real gntdev mapping). */
  unmap(): Promise<void> {
    if (!this.unmapping) {
      munmap(this.address, this.view.length);
      this.table.forgetMapping(this);
      this.unmapping = this.table.release(this.handle, this.mem.info.generation, this.mem.info.domid);
    }
    return this.unmapping;
  }
}
