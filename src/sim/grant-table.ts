// The guest side of a simulated domain's grant table: v1 entries written into the first frames of
// the guest's own memory, as a Linux guest's gnttab driver does.
import { GTF, GRANT_ENTRIES_PER_FRAME, MAX_GUEST_DOMID, RESERVED_GRANT_REFS } from '../io/sim/grant-rules';
import type { DomainMemory } from './memory';

export class GuestGrantTable {
  readonly entries: number;
  /** flags at [4*ref], domid at [4*ref + 1]. */
  private readonly u16: Uint16Array;
  /** frame at [2*ref + 1]. */
  private readonly u32: Uint32Array;
  private readonly freeRefs: number[] = [];
  private readonly used: Uint8Array;

  constructor(private readonly memory: DomainMemory) {
    this.entries = memory.grantFrames * GRANT_ENTRIES_PER_FRAME;
    const bytes = memory.bytes;
    this.u16 = new Uint16Array(bytes.buffer, bytes.byteOffset, this.entries * 4);
    this.u32 = new Uint32Array(bytes.buffer, bytes.byteOffset, this.entries * 2);
    this.used = new Uint8Array(this.entries);
    for (let r = this.entries - 1; r >= RESERVED_GRANT_REFS; r--) this.freeRefs.push(r);
  }

  /** Grants `grantee` access to a data frame; returns the grant ref. */
  grantAccess(frame: number, grantee: number, readonly: boolean): number {
    if (!Number.isInteger(frame) || frame < this.memory.grantFrames || frame >= this.memory.frames)
      throw new RangeError(`cannot grant frame ${frame}: not a data frame of this domain`);
    if (!Number.isInteger(grantee) || grantee < 0 || grantee > MAX_GUEST_DOMID)
      throw new RangeError(`cannot grant to domain ${grantee}`);
    const ref = this.freeRefs.pop();
    if (ref === undefined) throw new RangeError('grant table full');
    this.used[ref] = 1;
    this.u32[2 * ref + 1] = frame;
    this.u16[4 * ref + 1] = grantee;
    // Flags last: a reader that sees permit_access sees the frame and domid too.
    Atomics.store(this.u16, 4 * ref, GTF.permit_access | (readonly ? GTF.readonly : 0));
    return ref;
  }

  /**
   * Revokes a grant. false while a backend still has it mapped (GTF_reading/GTF_writing): the
   * guest must keep the page and retry later, as Linux's gnttab_end_foreign_access does.
   */
  endAccess(ref: number): boolean {
    if (!Number.isInteger(ref) || ref < 0 || ref >= this.entries || this.used[ref] !== 1)
      throw new RangeError(`grant ref ${ref} is not in use`);
    const flags = Atomics.load(this.u16, 4 * ref);
    if ((flags & (GTF.reading | GTF.writing)) !== 0) return false;
    Atomics.store(this.u16, 4 * ref, 0);
    this.used[ref] = 0;
    this.freeRefs.push(ref);
    return true;
  }

  /** The refs the guest has handed out and not yet ended. */
  get activeGrants(): number {
    return this.entries - RESERVED_GRANT_REFS - this.freeRefs.length;
  }

  // Raw entry access for the hypervisor (entries are guest memory: any value may appear).
  flags(ref: number): number {
    return Atomics.load(this.u16, 4 * ref);
  }
  grantee(ref: number): number {
    return this.u16[4 * ref + 1];
  }
  frame(ref: number): number {
    return this.u32[2 * ref + 1];
  }
  setFlagBits(ref: number, bits: number): void {
    Atomics.or(this.u16, 4 * ref, bits);
  }
  clearFlagBits(ref: number, bits: number): void {
    Atomics.and(this.u16, 4 * ref, ~bits & 0xffff);
  }
}
