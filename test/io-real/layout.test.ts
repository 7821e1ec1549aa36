// The struct layouts and constants the bindings hard-code, against the installed Xen headers.
import { execFileSync } from 'node:child_process';
import * as path from 'node:path';
import { GNTST } from '../../src/io/ports';
import { GRANT_ENTRY_BYTES, GTF } from '../../src/io/sim/grant-rules';
import * as seg from '../../src/io/real/grant-copy-segments';
import { CopySegmentArray } from '../../src/io/real/grant-copy-segments';
import { compile } from './support/build';

describe('Xen ABI facts used by the bindings', () => {
  let facts: Record<string, number>;
  beforeAll(() => {
    const prog = compile(path.join(__dirname, 'support', 'layout.c'), 'program');
    facts = JSON.parse(execFileSync(prog.path, { encoding: 'utf8' })) as Record<string, number>;
    prog.cleanup();
  });

  it('xengnttab_grant_copy_segment_t', () => {
    const ours = {
      size: seg.SEGMENT_BYTES,
      align: 8,
      source: seg.SEG_SOURCE,
      dest: seg.SEG_DEST,
      foreign_ref: seg.SEG_FOREIGN_REF,
      foreign_offset: seg.SEG_FOREIGN_OFFSET,
      foreign_domid: seg.SEG_FOREIGN_DOMID,
      len: seg.SEG_LEN,
      flags: seg.SEG_FLAGS,
      status: seg.SEG_STATUS,
      GNTCOPY_source_gref: seg.GNTCOPY_source_gref,
      GNTCOPY_dest_gref: seg.GNTCOPY_dest_gref,
    };
    expect(ours).toEqual(Object.fromEntries(Object.keys(ours).map((k) => [k, facts[k]])));
  });

  it('grant_entry_v1_t and GTF_* flags', () => {
    expect(facts.entry_v1_size).toBe(GRANT_ENTRY_BYTES);
    expect([facts.entry_v1_flags, facts.entry_v1_domid, facts.entry_v1_frame]).toEqual([0, 2, 4]);
    expect(facts.GTF_permit_access).toBe(GTF.permit_access);
    expect(facts.GTF_type_mask).toBe(GTF.type_mask);
    expect(facts.GTF_readonly).toBe(GTF.readonly);
    expect(facts.GTF_reading).toBe(GTF.reading);
    expect(facts.GTF_writing).toBe(GTF.writing);
  });

  it('GNTST_* status codes', () => {
    for (const [name, value] of Object.entries(GNTST)) expect([name, facts[`GNTST_${name}`]]).toEqual([name, value]);
  });

  it('encodes a segment the way the struct lays it out', () => {
    const a = new CopySegmentArray(2);
    a.set(1, false, 0x1234, 0xdeadbeef, 0x0abc, 0x0200, 0x7f12_3456_7000 + 5);
    a.set(0, true, 7, 9, 1, 2, 0x1000);
    const b = Buffer.from(a.bytes.subarray(24, 48));
    expect(b.readUInt32LE(0)).toBe(0xdeadbeef); // source.foreign.ref
    expect(b.readUInt16LE(4)).toBe(0x0abc);
    expect(b.readUInt16LE(6)).toBe(0x1234);
    expect(b.readBigUInt64LE(8)).toBe(0x7f12_3456_7005n); // dest.virt
    expect(b.readUInt16LE(16)).toBe(0x200);
    expect(b.readUInt16LE(18)).toBe(seg.GNTCOPY_source_gref);
    const c = Buffer.from(a.bytes.subarray(0, 24));
    expect(c.readBigUInt64LE(0)).toBe(0x1000n); // source.virt
    expect(c.readUInt32LE(8)).toBe(9); // dest.foreign.ref
    expect(c.readUInt16LE(18)).toBe(seg.GNTCOPY_dest_gref);
    c.writeInt16LE(-3, 20);
    a.bytes.set(c, 0);
    expect(a.status(0)).toBe(-3);
    a.free();
  });
});
