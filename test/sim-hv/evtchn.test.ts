import { firstValueFrom, take, toArray } from 'rxjs';
import { connectSimHypervisor, type SimHypervisorConnection } from '../../src/io/sim';
import type { SimDomain } from '../../src/sim/domain';
import { eventually, startHost, type TestHost } from './support/harness';

describe('simulated event channels (daemon side, over hv.sock)', () => {
  let host: TestHost;
  let guest: SimDomain;
  let conn: SimHypervisorConnection;

  beforeEach(async () => {
    host = await startHost();
    guest = host.hv.createDomain(1, { memoryBytes: 1 << 20, grantFrames: 1 });
    conn = await connectSimHypervisor(host.socketPath, { log: { warn: (m) => host.logs.push(`client ${m}`) } });
  });

  afterEach(async () => {
    await conn.close();
    await host.close();
  });

  it('binds to a guest port and carries notifications both ways', async () => {
    const gp = await guest.evtchn.allocUnbound(0);
    const bp = await conn.evtchn.bindInterdomain(1, gp.localPort);
    expect(bp.remoteDomid).toBe(1);
    expect(bp.remotePort).toBe(gp.localPort);
    await firstValueFrom(bp.events$); // raised by the bind
    bp.unmask();
    const guestGot = firstValueFrom(gp.events$);
    bp.notify();
    await guestGot;
    gp.unmask();
    const backendGot = firstValueFrom(bp.events$);
    gp.notify();
    await backendGot;
  });

  it('coalesces notifications while the port is masked and redelivers on unmask', async () => {
    const gp = await guest.evtchn.allocUnbound(0);
    const bp = await conn.evtchn.bindInterdomain(1, gp.localPort);
    let n = 0;
    bp.events$.subscribe(() => n++);
    await eventually(() => n === 1, 'the bind event');
    gp.notify();
    gp.notify();
    await eventually(() => host.hv.evtchn.info(0, bp.localPort)!.pending, 'pending bit');
    expect(n).toBe(1);
    bp.unmask();
    await eventually(() => n === 2, 'redelivery after unmask');
    bp.unmask();
    await new Promise((r) => setTimeout(r, 20));
    expect(n).toBe(2);
  });

  it('gives a frontend port to a backend via allocUnbound too', async () => {
    const bp = await conn.evtchn.allocUnbound(1);
    const gp = await guest.evtchn.bindInterdomain(0, bp.localPort);
    const got = firstValueFrom(bp.events$);
    gp.notify();
    await got;
  });

  it('refuses bad binds with Xen errors', async () => {
    host.hv.createDomain(5, { memoryBytes: 1 << 20, grantFrames: 1 });
    const gp = await guest.evtchn.allocUnbound(5);
    await expect(conn.evtchn.bindInterdomain(1, gp.localPort)).rejects.toThrow(/EINVAL.*reserved for d5, not d0/);
    await expect(conn.evtchn.bindInterdomain(1, 999)).rejects.toThrow(/EINVAL.*not allocated/);
    await expect(conn.evtchn.bindInterdomain(1, 0)).rejects.toThrow(/EINVAL/);
    await expect(conn.evtchn.bindInterdomain(9, 1)).rejects.toThrow(/ESRCH/);
    await expect(conn.evtchn.allocUnbound(9)).rejects.toThrow(/ESRCH/);
    expect(host.logs.filter((l) => l.startsWith('warn')).length).toBeGreaterThanOrEqual(5);
  });

  it('lets a restarted backend bind again to a running guest\'s port', async () => {
    const gp = await guest.evtchn.allocUnbound(0);
    const bp = await conn.evtchn.bindInterdomain(1, gp.localPort);
    await conn.close(); // the daemon goes away
    await eventually(() => host.hv.evtchn.info(1, gp.localPort)?.state === 'unbound', 'guest port unbound');
    expect(host.hv.evtchn.info(1, gp.localPort)!.remoteDomid).toBe(0);
    expect(host.hv.evtchn.info(0, bp.localPort)).toBeUndefined();
    gp.notify(); // the guest notifies nobody: dropped
    conn = await connectSimHypervisor(host.socketPath, { log: { warn: () => {} } });
    const bp2 = await conn.evtchn.bindInterdomain(1, gp.localPort);
    await firstValueFrom(bp2.events$);
    bp2.unmask();
    const got = firstValueFrom(gp.events$);
    bp2.notify();
    await got;
  });

  it('completes events$ on unbind and drops later notifications', async () => {
    const gp = await guest.evtchn.allocUnbound(0);
    const bp = await conn.evtchn.bindInterdomain(1, gp.localPort);
    const all = firstValueFrom(bp.events$.pipe(take(5), toArray()));
    await bp.unbind();
    await bp.unbind();
    expect((await all).length).toBeLessThanOrEqual(1);
    bp.notify();
    expect(host.hv.evtchn.info(1, gp.localPort)!.state).toBe('unbound');
  });

  it('completes events$ when the host goes away and fails later requests', async () => {
    const gp = await guest.evtchn.allocUnbound(0);
    const bp = await conn.evtchn.bindInterdomain(1, gp.localPort);
    let completed = false;
    bp.events$.subscribe({ complete: () => (completed = true) });
    await host.hv.close();
    await eventually(() => completed, 'events$ completion');
    bp.notify();
    await expect(conn.evtchn.allocUnbound(1)).rejects.toThrow(/ECONNRESET/);
  });
});
