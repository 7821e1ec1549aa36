// The daemon side in another process: what survives and what is released when it dies.
import { firstValueFrom } from 'rxjs';
import { GNTST } from '../../src/io/ports';
import { GTF } from '../../src/io/sim/grant-rules';
import type { SimDomain } from '../../src/sim/domain';
import { ChildClient, eventually, startHost, type TestHost } from './support/harness';

describe('simulated host with clients in other processes', () => {
  let host: TestHost;
  let guest: SimDomain;
  const children: ChildClient[] = [];

  const child = async (domid = 0) => {
    const c = await ChildClient.start(host.socketPath, domid);
    children.push(c);
    return c;
  };

  beforeEach(async () => {
    host = await startHost();
    guest = host.hv.createDomain(1, { memoryBytes: 4 << 20, grantFrames: 1 });
  });

  afterEach(async () => {
    for (const c of children.splice(0)) {
      c.kill();
      await c.exited;
    }
    await host.close();
  });

  it('shares mapped pages with the other process and releases them when it is killed', async () => {
    const [f1, f2] = guest.allocPages(2);
    guest.page(f1).fill(0x61);
    const refs = [guest.grantAccess(f1, 0, false), guest.grantAccess(f2, 0, false)];
    const c = await child();
    const m = await c.ok('map', { domid: 1, refs, writable: true });
    expect(m.length).toBe(8192);
    expect((await c.ok('read', { mapping: m.mapping, offset: 4094, len: 4 })).hex).toBe('61610000');
    await c.ok('write', { mapping: m.mapping, offset: 4096 + 10, hex: 'c0ffee' });
    expect(Buffer.from(guest.page(f2).subarray(10, 13)).toString('hex')).toBe('c0ffee');
    expect(guest.grants.flags(refs[1]) & (GTF.reading | GTF.writing)).toBe(GTF.reading | GTF.writing);
    expect(guest.endAccess(refs[0])).toBe(false);

    c.kill();
    expect((await c.exited).signal).toBe('SIGKILL');
    await eventually(() => guest.pins.pinnedRefs === 0, 'mappings released');
    expect(guest.grants.flags(refs[1]) & (GTF.reading | GTF.writing)).toBe(0);
    expect(guest.endAccess(refs[0])).toBe(true);
    expect(guest.endAccess(refs[1])).toBe(true);
    // The guest's memory is untouched by the death.
    expect(guest.page(f2)[11]).toBe(0xff);
    expect(host.logs.some((l) => /closed; released 1 mappings and 0 ports/.test(l))).toBe(true);
  });

  it('unbinds a dead process\'s ports; the guest port stays reserved and a new process binds it', async () => {
    const gp = await guest.evtchn.allocUnbound(0);
    const first = await child();
    const b = await first.ok('bind', { domid: 1, port: gp.localPort });
    await first.waitEvents(1); // the event a bind raises
    await first.ok('unmask', { port: b.port });
    const got = firstValueFrom(gp.events$);
    await first.ok('notify', { port: b.port });
    await got;

    first.kill();
    await first.exited;
    await eventually(() => host.hv.evtchn.info(1, gp.localPort)?.state === 'unbound', 'guest port unbound');
    expect(host.hv.evtchn.info(1, gp.localPort)?.remoteDomid).toBe(0);
    expect(host.hv.evtchn.info(0, b.localPort as number)).toBeUndefined();
    gp.unmask();
    gp.notify(); // nobody listens: dropped silently

    const second = await child();
    const b2 = await second.ok('bind', { domid: 1, port: gp.localPort });
    await second.waitEvents(1);
    await second.ok('unmask', { port: b2.port });
    const n = second.events.length;
    gp.notify();
    await second.waitEvents(n + 1);
    expect(host.logs.some((l) => /closed; released 0 mappings and 1 ports/.test(l))).toBe(true);
  });

  it('enforces read-only maps: a write through one kills the writer, not the guest or the host', async () => {
    const [f] = guest.allocPages(1);
    guest.page(f).fill(0x33);
    const ref = guest.grantAccess(f, 0, true);
    const c = await child();
    const m = await c.ok('map', { domid: 1, refs: [ref], writable: false });
    expect((await c.ok('read', { mapping: m.mapping, offset: 0, len: 2 })).hex).toBe('3333');
    const w = await c.request('map', { domid: 1, refs: [ref], writable: true });
    expect(w).toMatchObject({ ok: false, code: 'GNTST_general_error' });
    void c.request('write', { mapping: m.mapping, offset: 0, hex: 'ff' });
    expect((await c.exited).signal).toBe('SIGSEGV');
    expect(guest.page(f)[0]).toBe(0x33);
    await eventually(() => guest.pins.pinnedRefs === 0, 'mapping released');
    expect(guest.endAccess(ref)).toBe(true);
  });

  it('copies with per-segment statuses from another process', async () => {
    const [f1, f2] = guest.allocPages(2);
    guest.page(f1).fill(0x5a);
    const rRead = guest.grantAccess(f1, 0, true);
    const rWrite = guest.grantAccess(f2, 0, false);
    const c = await child();
    const r = await c.ok('copy', {
      segments: [
        { toGuest: false, domid: 1, ref: rRead, guestOffset: 100, len: 8 },
        { toGuest: true, domid: 1, ref: rWrite, guestOffset: 4088, len: 8, hex: '0102030405060708' },
        { toGuest: true, domid: 1, ref: rRead, guestOffset: 0, len: 8, hex: 'ffffffffffffffff' },
        { toGuest: false, domid: 1, ref: 4000, guestOffset: 0, len: 8 },
      ],
    });
    expect(r.statuses).toEqual([GNTST.okay, GNTST.okay, GNTST.general_error, GNTST.bad_gntref]);
    expect(r.failed).toBe(2);
    expect((r.data as string[])[0]).toBe('5a'.repeat(8));
    expect(Buffer.from(guest.page(f2).subarray(4088)).toString('hex')).toBe('0102030405060708');
    expect(guest.page(f1)[0]).toBe(0x5a);
  });

  it('carries events between two other processes', async () => {
    const a = await child();
    const b = await child();
    const pa = await a.ok('alloc', { domid: 0 });
    const pb = await b.ok('bind', { domid: 0, port: pa.localPort, echo: true });
    await b.waitEvents(1); // b's bind event: b echoes it back to a
    await a.waitEvents(1);
    for (let i = 2; i <= 20; i++) {
      await a.ok('unmask', { port: pa.port });
      await a.ok('notify', { port: pa.port });
      await a.waitEvents(i);
    }
    expect(b.events.length).toBe(20);
    expect(host.hv.evtchn.info(0, pb.localPort as number)).toMatchObject({ state: 'interdomain', remotePort: pa.localPort });
  });

  it('refuses a client that claims a domain that does not exist', async () => {
    const c = new ChildClient(host.socketPath, 42);
    children.push(c);
    expect((await c.exited).code).toBe(1);
    expect(c.fatal).toBe('hello: ESRCH (domain 42 does not exist)');
    expect(host.logs.some((l) => /HELLO as d42, which does not exist/.test(l))).toBe(true);
  });
});
