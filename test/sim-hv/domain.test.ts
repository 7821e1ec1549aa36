import * as fs from 'node:fs';
import { firstValueFrom } from 'rxjs';
import { GTF } from '../../src/io/sim/grant-rules';
import { Hypervisor } from '../../src/sim/hv/hypervisor';

describe('simulated guest domains (in-process API)', () => {
  let hv: Hypervisor;
  const logs: string[] = [];

  beforeEach(() => {
    hv = new Hypervisor({ hostId: `dom-test-${process.pid}`, log: { info: (m) => logs.push(m), warn: (m) => logs.push(m) } });
  });
  afterEach(() => hv.close());

  it('keeps guest memory in a sparse shared file under /dev/shm', () => {
    const d = hv.createDomain(3, { memoryBytes: 64 << 20 });
    expect(d.path).toBe(`/dev/shm/xenblkd-dom-test-${process.pid}/dom3.mem`);
    const st = fs.statSync(d.path);
    expect(st.size).toBe(64 << 20);
    expect(st.blocks * 512).toBeLessThan(1 << 20);
    const [f] = d.allocPages(1);
    d.page(f).fill(0x42);
    const fd = fs.openSync(d.path, 'r');
    const b = Buffer.alloc(4096);
    fs.readSync(fd, b, 0, 4096, f * 4096);
    fs.closeSync(fd);
    expect(b.every((x) => x === 0x42)).toBe(true);
    hv.destroyDomain(3);
    expect(fs.existsSync(d.path)).toBe(false);
  });

  it('defaults to 256 MiB with the grant table in the first 32 frames', () => {
    const d = hv.createDomain(1);
    expect(d.memory.length).toBe(256 << 20);
    expect(d.grants.entries).toBe(32 * 512);
    expect(d.allocPages(1)[0]).toBe(32);
  });

  it('allocates and frees pages, never the grant frames, and refuses bad frees', () => {
    const d = hv.createDomain(1, { memoryBytes: 16 * 4096, grantFrames: 2 });
    const pages = d.allocPages(14);
    expect(new Set(pages).size).toBe(14);
    expect(Math.min(...pages)).toBe(2);
    expect(() => d.allocPages(1)).toThrow(/out of guest memory/);
    d.freePages([pages[3]]);
    expect(() => d.freePages([pages[3]])).toThrow(/not allocated/);
    expect(() => d.freePages([0])).toThrow(/not allocated/);
    expect(d.allocPages(1)).toEqual([pages[3]]);
    expect(() => d.page(1)).toThrow(/outside guest data memory/);
    expect(() => d.page(16)).toThrow(/outside guest data memory/);
  });

  it('writes v1 grant entries where Xen reads them: flags u16 @0, domid u16 @2, frame u32 @4', () => {
    const d = hv.createDomain(1, { memoryBytes: 1 << 20, grantFrames: 1 });
    const [f] = d.allocPages(1);
    const ref = d.grantAccess(f, 0x1234, true);
    expect(ref).toBeGreaterThanOrEqual(8); // refs 0..7 stay reserved, as in Linux
    const e = Buffer.from(d.memory.subarray(8 * ref, 8 * ref + 8));
    expect(e.readUInt16LE(0)).toBe(GTF.permit_access | GTF.readonly);
    expect(e.readUInt16LE(2)).toBe(0x1234);
    expect(e.readUInt32LE(4)).toBe(f);
    expect(d.endAccess(ref)).toBe(true);
    expect(Buffer.from(d.memory.subarray(8 * ref, 8 * ref + 2)).readUInt16LE(0)).toBe(0);
    expect(() => d.endAccess(ref)).toThrow(/not in use/);
    expect(() => d.grantAccess(0, 0, false)).toThrow(/not a data frame/);
    expect(() => d.grantAccess(f, 0x7ff0, false)).toThrow(/cannot grant to domain/);
  });

  it('refuses a second domain with the same id and bad domids', () => {
    hv.createDomain(1, { memoryBytes: 1 << 20 , grantFrames: 1});
    expect(() => hv.createDomain(1, { memoryBytes: 1 << 20 })).toThrow(/already exists/);
    expect(() => hv.createDomain(0)).toThrow(/bad guest domid/);
    expect(() => hv.createDomain(1.5)).toThrow(/bad guest domid/);
    expect(() => hv.createDomain(2, { memoryBytes: 1000 })).toThrow(/multiple of 4096/);
  });

  it('connects two in-process guests by event channel, with masking until unmask', async () => {
    const a = hv.createDomain(1, { memoryBytes: 1 << 20, grantFrames: 1 });
    const b = hv.createDomain(2, { memoryBytes: 1 << 20, grantFrames: 1 });
    const pa = await a.evtchn.allocUnbound(2);
    const pb = await b.evtchn.bindInterdomain(1, pa.localPort);
    expect(pb.remotePort).toBe(pa.localPort);
    // Xen raises the binder's new port.
    await firstValueFrom(pb.events$);
    pb.unmask();
    let seen = 0;
    pa.events$.subscribe(() => seen++);
    pb.notify();
    pb.notify();
    pb.notify();
    await new Promise((r) => setImmediate(r));
    expect(seen).toBe(1); // masked after the first delivery, the rest coalesce
    expect(hv.evtchn.info(1, pa.localPort)).toMatchObject({ pending: true, masked: true });
    pa.unmask();
    await new Promise((r) => setImmediate(r));
    expect(seen).toBe(2);
    pa.unmask();
    await new Promise((r) => setImmediate(r));
    expect(seen).toBe(2);
    // Unbinding one end leaves the other unbound and reserved for the same domain.
    await pb.unbind();
    expect(hv.evtchn.info(1, pa.localPort)).toMatchObject({ state: 'unbound', remoteDomid: 2 });
    pa.notify(); // to nobody: dropped
    const pb2 = await b.evtchn.bindInterdomain(1, pa.localPort);
    pb2.notify();
    await new Promise((r) => setImmediate(r));
    expect(seen).toBe(3);
    await expect(b.evtchn.bindInterdomain(1, pa.localPort)).rejects.toThrow(/EINVAL.*already connected/);
  });

  it('closes a destroyed domain\'s ports: its peers become unbound, its port objects complete', async () => {
    const a = hv.createDomain(1, { memoryBytes: 1 << 20, grantFrames: 1 });
    const b = hv.createDomain(2, { memoryBytes: 1 << 20, grantFrames: 1 });
    const pa = await a.evtchn.allocUnbound(2);
    const pb = await b.evtchn.bindInterdomain(1, pa.localPort);
    let completed = false;
    pa.events$.subscribe({ complete: () => (completed = true) });
    hv.destroyDomain(1);
    expect(completed).toBe(true);
    expect(hv.evtchn.info(2, pb.localPort)).toMatchObject({ state: 'unbound', remoteDomid: 1 });
    pb.notify(); // peer is dead: dropped, not an error
    pa.notify(); // the dead domain's own port object: a no-op
    await expect(a.evtchn.allocUnbound(2)).rejects.toThrow(/ESRCH/);
  });

  it('removes its shared-memory folder on close', async () => {
    hv.createDomain(1, { memoryBytes: 1 << 20, grantFrames: 1 });
    await hv.close();
    expect(fs.existsSync(hv.shmDir)).toBe(false);
  });
});
