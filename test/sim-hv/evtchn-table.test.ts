import { EventChannelTable, EvtchnError, type PortOwner } from '../../src/sim/hv/evtchn-table';

class Owner implements PortOwner {
  readonly got: [number, number][] = [];
  constructor(readonly name: string) {}
  deliver(domid: number, port: number): void {
    this.got.push([domid, port]);
  }
}

describe('event channel table (Xen rules, /dev/xen/evtchn delivery)', () => {
  let t: EventChannelTable;
  const fe = new Owner('frontend');
  const be = new Owner('backend');
  beforeEach(() => {
    t = new EventChannelTable(16);
    t.addDomain(0);
    t.addDomain(1);
    fe.got.length = 0;
    be.got.length = 0;
  });

  const code = (f: () => unknown) => {
    try {
      f();
    } catch (e) {
      return (e as EvtchnError).code;
    }
    return 'no error';
  };

  it('allocates the lowest free port from 1', () => {
    expect(t.allocUnbound(1, fe, 0)).toBe(1);
    expect(t.allocUnbound(1, fe, 0)).toBe(2);
    t.close(1, 1, fe);
    expect(t.allocUnbound(1, fe, 0)).toBe(1);
  });

  it('runs out of ports with ENOSPC', () => {
    for (let i = 1; i < 16; i++) t.allocUnbound(1, fe, 0);
    expect(code(() => t.allocUnbound(1, fe, 0))).toBe('ENOSPC');
  });

  it('binds only an unbound port reserved for the binder', () => {
    const p = t.allocUnbound(1, fe, 0);
    expect(code(() => t.bindInterdomain(0, be, 1, 0))).toBe('EINVAL');
    expect(code(() => t.bindInterdomain(0, be, 1, 16))).toBe('EINVAL');
    expect(code(() => t.bindInterdomain(0, be, 1, 1.5))).toBe('EINVAL');
    expect(code(() => t.bindInterdomain(0, be, 2, p))).toBe('ESRCH');
    expect(code(() => t.bindInterdomain(2, be, 1, p))).toBe('ESRCH');
    const q = t.allocUnbound(1, fe, 1);
    expect(code(() => t.bindInterdomain(0, be, 1, q))).toBe('EINVAL');
    const lp = t.bindInterdomain(0, be, 1, p);
    expect(t.info(0, lp)).toMatchObject({ state: 'interdomain', remoteDomid: 1, remotePort: p, owner: 'backend' });
    expect(t.info(1, p)).toMatchObject({ state: 'interdomain', remoteDomid: 0, remotePort: lp });
    expect(be.got).toEqual([[0, lp]]); // the bind raises the new local port
    expect(code(() => t.bindInterdomain(0, be, 1, p))).toBe('EINVAL');
  });

  it('delivers once, then keeps the port masked and pending until unmask', () => {
    const p = t.allocUnbound(1, fe, 0);
    const lp = t.bindInterdomain(0, be, 1, p);
    t.send(0, lp, be);
    t.send(0, lp, be);
    expect(fe.got).toEqual([[1, p]]);
    expect(t.info(1, p)).toMatchObject({ masked: true, pending: true });
    t.unmask(1, p, fe);
    expect(fe.got).toEqual([
      [1, p],
      [1, p],
    ]);
    expect(t.info(1, p)).toMatchObject({ masked: true, pending: false });
    t.unmask(1, p, fe);
    expect(t.info(1, p)).toMatchObject({ masked: false, pending: false });
    t.send(0, lp, be);
    expect(fe.got).toHaveLength(3);
  });

  it('lets only the owner send, unmask or close a port', () => {
    const p = t.allocUnbound(1, fe, 0);
    expect(code(() => t.send(1, p, be))).toBe('EINVAL');
    expect(code(() => t.unmask(1, p, be))).toBe('EINVAL');
    expect(code(() => t.close(1, p, be))).toBe('EINVAL');
    expect(code(() => t.send(1, 9, fe))).toBe('EINVAL');
    expect(code(() => t.send(1, p, fe))).toBe('no error'); // unbound: silently dropped
  });

  it('turns the peer of a closed port back into an unbound port reserved for the same domain', () => {
    const p = t.allocUnbound(1, fe, 0);
    const lp = t.bindInterdomain(0, be, 1, p);
    expect(t.closeOwnedBy(0, be)).toBe(1);
    expect(t.info(0, lp)).toBeUndefined();
    expect(t.info(1, p)).toMatchObject({ state: 'unbound', remoteDomid: 0, remotePort: 0 });
    t.send(1, p, fe); // dropped
    const be2 = new Owner('backend2');
    const lp2 = t.bindInterdomain(0, be2, 1, p);
    t.send(1, p, fe);
    expect(be2.got).toEqual([
      [0, lp2],
    ]); // still masked by the bind's own event
    t.unmask(0, lp2, be2);
    expect(be2.got).toHaveLength(2);
  });

  it('closes every port of a removed domain', () => {
    const p = t.allocUnbound(1, fe, 0);
    const lp = t.bindInterdomain(0, be, 1, p);
    t.removeDomain(1);
    expect(t.hasDomain(1)).toBe(false);
    expect(t.info(0, lp)).toMatchObject({ state: 'unbound', remoteDomid: 1 });
    expect(code(() => t.send(0, lp, be))).toBe('no error');
    expect(code(() => t.allocUnbound(1, fe, 0))).toBe('ESRCH');
  });
});
