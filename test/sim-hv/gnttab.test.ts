import { allocDma, type DmaRegion } from '../../src/io/dma';
import { GNTST, type GrantCopySegment } from '../../src/io/ports';
import { connectSimHypervisor, SimXenError, type SimHypervisorConnection } from '../../src/io/sim';
import { GTF } from '../../src/io/sim/grant-rules';
import type { SimDomain } from '../../src/sim/domain';
import { startHost, type TestHost } from './support/harness';

describe('simulated grant table (daemon side, over hv.sock)', () => {
  let host: TestHost;
  let guest: SimDomain;
  let other: SimDomain;
  let conn: SimHypervisorConnection;
  let dma: DmaRegion;

  beforeEach(async () => {
    host = await startHost();
    guest = host.hv.createDomain(1, { memoryBytes: 4 << 20, grantFrames: 2 });
    other = host.hv.createDomain(2, { memoryBytes: 1 << 20, grantFrames: 1 });
    conn = await connectSimHypervisor(host.socketPath, { log: { warn: (m) => host.logs.push(`client ${m}`) } });
    dma = allocDma(64 * 1024);
  });

  afterEach(async () => {
    dma.free();
    await conn.close();
    await host.close();
  });

  const flagsOf = (ref: number) => guest.grants.flags(ref);

  it('maps granted pages into one contiguous view shared with the guest', async () => {
    const frames = guest.allocPages(3);
    frames.forEach((f, i) => guest.page(f).fill(0x10 + i));
    const refs = frames.map((f) => guest.grantAccess(f, 0, false));
    const m = await conn.gnttab.map(1, [refs[2], refs[0], refs[1]], true);
    expect(m.view.length).toBe(3 * 4096);
    expect(m.writable).toBe(true);
    expect(m.view[0]).toBe(0x12);
    expect(m.view[4096]).toBe(0x10);
    expect(m.view[8191 + 4096]).toBe(0x11);
    // Writes go both ways: it is the same memory.
    m.view[5] = 0xee;
    expect(guest.page(frames[2])[5]).toBe(0xee);
    guest.page(frames[0])[7] = 0x77;
    expect(m.view[4096 + 7]).toBe(0x77);
    await m.unmap();
  });

  it('sets GTF_reading/GTF_writing while mapped and the guest cannot end access until unmap', async () => {
    const [f] = guest.allocPages(1);
    const ref = guest.grantAccess(f, 0, false);
    const ro = await conn.gnttab.map(1, [ref], false);
    expect(flagsOf(ref) & (GTF.reading | GTF.writing)).toBe(GTF.reading);
    const rw = await conn.gnttab.map(1, [ref], true);
    expect(flagsOf(ref) & (GTF.reading | GTF.writing)).toBe(GTF.reading | GTF.writing);
    expect(guest.endAccess(ref)).toBe(false);
    await rw.unmap();
    expect(flagsOf(ref) & (GTF.reading | GTF.writing)).toBe(GTF.reading);
    expect(guest.endAccess(ref)).toBe(false);
    await ro.unmap();
    await ro.unmap(); // idempotent
    expect(flagsOf(ref) & (GTF.reading | GTF.writing)).toBe(0);
    expect(guest.endAccess(ref)).toBe(true);
    expect(flagsOf(ref)).toBe(0);
  });

  it('refuses maps Xen refuses, with Xen status codes, and maps nothing of a partly bad list', async () => {
    const [a, b] = guest.allocPages(2);
    const good = guest.grantAccess(a, 0, false);
    const forOther = guest.grantAccess(b, 5, false);
    const ro = guest.grantAccess(b, 0, true);
    const expectStatus = async (p: Promise<unknown>, status: number) => {
      const e = await p.then(
        () => undefined,
        (x: unknown) => x,
      );
      expect(e).toBeInstanceOf(SimXenError);
      expect((e as SimXenError).status).toBe(status);
    };
    await expectStatus(conn.gnttab.map(1, [good, forOther], false), GNTST.general_error);
    expect(flagsOf(good) & GTF.reading).toBe(0); // all or nothing
    await expectStatus(conn.gnttab.map(1, [ro], true), GNTST.general_error);
    await expectStatus(conn.gnttab.map(1, [9999], false), GNTST.bad_gntref);
    await expectStatus(conn.gnttab.map(1, [100], false), GNTST.general_error); // never granted
    await expectStatus(conn.gnttab.map(7, [good], false), GNTST.bad_domain);
    await expect(conn.gnttab.map(1, [ro], true)).rejects.toThrow(/GNTST_general_error \(.*read-only/);
    // A hostile entry naming a frame outside the guest's memory.
    const entry = new DataView(guest.memory.buffer, guest.memory.byteOffset + 8 * 200, 8);
    entry.setUint32(4, 1 << 30, true);
    entry.setUint16(2, 0, true);
    entry.setUint16(0, GTF.permit_access, true);
    await expectStatus(conn.gnttab.map(1, [200], false), GNTST.bad_page);
    // The read-only grant can be mapped read-only.
    const m = await conn.gnttab.map(1, [ro], false);
    expect(m.writable).toBe(false);
    await m.unmap();
    expect(host.logs.some((l) => l.startsWith('warn') && l.includes('GNTST_bad_gntref'))).toBe(true);
  });

  function seg(s: Partial<GrantCopySegment> & { ref: number }): GrantCopySegment {
    return { toGuest: false, domid: 1, guestOffset: 0, len: 512, local: dma, localOffset: 0, ...s };
  }

  it('copies between granted pages and local memory in both directions', () => {
    const [f1, f2] = guest.allocPages(2);
    guest.page(f1).fill(0xab);
    const r1 = guest.grantAccess(f1, 0, true);
    const r2 = guest.grantAccess(f2, 0, false);
    dma.view.fill(0);
    dma.view.fill(0x5c, 8192, 8192 + 4096);
    const segs = [
      seg({ ref: r1, guestOffset: 512, len: 1024, localOffset: 100 }),
      seg({ ref: r2, toGuest: true, guestOffset: 3584, len: 512, localOffset: 8192 }),
    ];
    const statuses = new Int16Array(2).fill(99);
    expect(conn.gnttab.copy(segs, 2, statuses)).toBe(0);
    expect([...statuses]).toEqual([0, 0]);
    expect(dma.view[99]).toBe(0);
    expect(dma.view.subarray(100, 1124).every((b) => b === 0xab)).toBe(true);
    expect(dma.view[1124]).toBe(0);
    const p2 = guest.page(f2);
    expect(p2[3583]).toBe(0);
    expect(p2.subarray(3584).every((b) => b === 0x5c)).toBe(true);
  });

  it('gives each bad segment its own status and still copies the good ones', () => {
    const [f1, f2] = guest.allocPages(2);
    guest.page(f1).fill(0x11);
    const ok = guest.grantAccess(f1, 0, false);
    const ro = guest.grantAccess(f2, 0, true);
    const notMine = guest.grantAccess(f2, 3, false);
    const otherFrame = other.allocPages(1)[0];
    const otherRef = other.grantAccess(otherFrame, 0, false);
    other.page(otherFrame).fill(0x22);
    dma.view.fill(0);
    const segs = [
      seg({ ref: ok }),
      seg({ ref: ro, toGuest: true }),
      seg({ ref: notMine }),
      seg({ ref: 5000 }),
      seg({ ref: ok, domid: 9 }),
      seg({ ref: ok, guestOffset: 4000, len: 200 }),
      seg({ ref: ok, localOffset: dma.length - 10, len: 20 }),
      seg({ ref: ok, len: -1 }),
      seg({ ref: otherRef, domid: 2, localOffset: 4096 }),
      seg({ ref: ro, toGuest: false, localOffset: 8192 }),
    ];
    const statuses = new Int16Array(segs.length);
    const failed = conn.gnttab.copy(segs, segs.length, statuses);
    expect([...statuses]).toEqual([
      GNTST.okay,
      GNTST.general_error,
      GNTST.general_error,
      GNTST.bad_gntref,
      GNTST.bad_domain,
      GNTST.bad_copy_arg,
      GNTST.bad_copy_arg,
      GNTST.bad_copy_arg,
      GNTST.okay,
      GNTST.okay,
    ]);
    expect(failed).toBe(7);
    expect(dma.view[0]).toBe(0x11);
    expect(dma.view[4096]).toBe(0x22);
    expect(guest.page(f2)[0]).toBe(0); // the read-only page was not written
  });

  it('honours only the first count segments', () => {
    const [f] = guest.allocPages(1);
    const ref = guest.grantAccess(f, 0, false);
    const statuses = new Int16Array(2).fill(7);
    expect(conn.gnttab.copy([seg({ ref }), seg({ ref: 9999 })], 1, statuses)).toBe(0);
    expect([...statuses]).toEqual([0, 7]);
  });

  it('sees a grant revoked by the guest at the next copy', () => {
    const [f] = guest.allocPages(1);
    const ref = guest.grantAccess(f, 0, false);
    const statuses = new Int16Array(1);
    expect(conn.gnttab.copy([seg({ ref })], 1, statuses)).toBe(0);
    expect(guest.endAccess(ref)).toBe(true);
    expect(conn.gnttab.copy([seg({ ref })], 1, statuses)).toBe(1);
    expect(statuses[0]).toBe(GNTST.general_error);
  });

  it('forgets a destroyed domain: copies fail with bad_domain, a new domain with that id works', async () => {
    const [f] = guest.allocPages(1);
    const ref = guest.grantAccess(f, 0, false);
    const statuses = new Int16Array(1);
    expect(conn.gnttab.copy([seg({ ref })], 1, statuses)).toBe(0);
    const m = await conn.gnttab.map(1, [ref], false);
    host.hv.destroyDomain(1);
    // A round trip on the socket orders us after the DOMAIN_DOWN push.
    await expect(conn.gnttab.map(1, [ref], false)).rejects.toThrow(/GNTST_bad_domain/);
    expect(conn.gnttab.copy([seg({ ref })], 1, statuses)).toBe(1);
    expect(statuses[0]).toBe(GNTST.bad_domain);
    await m.unmap(); // its domain is gone: nothing to release, no error
    const again = host.hv.createDomain(1, { memoryBytes: 1 << 20, grantFrames: 1 });
    const [g] = again.allocPages(1);
    again.page(g).fill(0x3c);
    const ref2 = again.grantAccess(g, 0, false);
    await conn.gnttab.map(1, [ref2], false).then((x) => x.unmap());
    expect(conn.gnttab.copy([seg({ ref: ref2 })], 1, statuses)).toBe(0);
    expect(dma.view[0]).toBe(0x3c);
    guest = again;
  });

  it('releases its mappings when the connection closes', async () => {
    const [f] = guest.allocPages(1);
    const ref = guest.grantAccess(f, 0, false);
    await conn.gnttab.map(1, [ref], true);
    expect(guest.pins.pinnedRefs).toBe(1);
    await conn.close();
    expect(guest.pins.pinnedRefs).toBe(0);
    expect(guest.endAccess(ref)).toBe(true);
    await expect(conn.gnttab.map(1, [ref], false)).rejects.toThrow(/ECONNRESET/);
  });
});
