// The hypervisor's side of grant mapping for one granting domain: validation against the entry,
// pin counts, and the GTF_reading/GTF_writing bits the guest sees while a ref is mapped.
import { GNTST } from '../../io/ports';
import { GTF, checkGrant, type GrantLayout } from '../../io/sim/grant-rules';
import { SimXenError } from '../../io/sim/errors';
import type { GuestGrantTable } from '../grant-table';

interface Pin {
  frame: number;
  grantee: number;
  readers: number;
  writers: number;
}

export class GrantPins {
  private readonly pins = new Map<number, Pin>();

  constructor(
    readonly domid: number,
    private readonly table: GuestGrantTable,
    private readonly layout: GrantLayout,
  ) {}

  /**
   * Maps every ref for `caller` or none: returns the frames, in ref order, or throws the
   * SimXenError (with GNTST status) of the first ref Xen would refuse.
   */
  pin(caller: number, refs: ArrayLike<number>, writable: boolean): Uint32Array {
    const frames = new Uint32Array(refs.length);
    for (let i = 0; i < refs.length; i++) {
      const ref = refs[i];
      const op = `map d${this.domid} ref ${ref}`;
      if (ref >= this.table.entries) throw SimXenError.grant(op, GNTST.bad_gntref, `table has ${this.table.entries} entries`);
      const flags = this.table.flags(ref);
      const grantee = this.table.grantee(ref);
      const pinned = this.pins.get(ref);
      const frame = pinned ? pinned.frame : this.table.frame(ref);
      const status = checkGrant(flags, grantee, frame, caller, writable, this.layout);
      if (status !== GNTST.okay) throw SimXenError.grant(op, status, why(flags, grantee, frame, caller, writable));
      frames[i] = frame;
    }
    for (let i = 0; i < refs.length; i++) {
      const ref = refs[i];
      let p = this.pins.get(ref);
      if (!p) {
        p = { frame: frames[i], grantee: caller, readers: 0, writers: 0 };
        this.pins.set(ref, p);
      }
      if (writable) p.writers++;
      else p.readers++;
      this.table.setFlagBits(ref, writable ? GTF.reading | GTF.writing : GTF.reading);
    }
    return frames;
  }

  unpin(refs: ArrayLike<number>, writable: boolean): void {
    for (let i = 0; i < refs.length; i++) {
      const ref = refs[i];
      const p = this.pins.get(ref);
      if (!p) continue;
      if (writable) p.writers = Math.max(0, p.writers - 1);
      else p.readers = Math.max(0, p.readers - 1);
      if (p.writers === 0) this.table.clearFlagBits(ref, GTF.writing);
      if (p.writers + p.readers === 0) {
        this.table.clearFlagBits(ref, GTF.reading);
        this.pins.delete(ref);
      }
    }
  }

  /** Refs currently mapped by anyone. */
  get pinnedRefs(): number {
    return this.pins.size;
  }
}

function why(flags: number, grantee: number, frame: number, caller: number, writable: boolean): string {
  if ((flags & GTF.type_mask) !== GTF.permit_access) return `entry flags ${flags.toString(16)} do not permit access`;
  if (grantee !== caller) return `granted to d${grantee}, not d${caller}`;
  if (writable && flags & GTF.readonly) return 'write access to a read-only grant';
  return `frame ${frame} is not a data page of the domain`;
}
