// The installed libxengnttab/libxenevtchn on a machine without /dev/xen: they load, every
// function the bindings use is there, and use fails in one clear line.
import * as fs from 'node:fs';
import { allocDma } from '../../src/io/dma';
import { XenDeviceError, openRealXen } from '../../src/io/real';
import { evtchnLib, gnttabLib } from '../../src/io/real/libs';

describe('real Xen ports without Xen', () => {
  it('runs where /dev/xen is absent (this suite describes that machine)', () => {
    expect(fs.existsSync('/dev/xen/gntdev')).toBe(false);
    expect(fs.existsSync('/dev/xen/evtchn')).toBe(false);
  });

  it('finds every function it binds in the installed libraries', () => {
    expect(Object.keys(gnttabLib())).toHaveLength(6);
    expect(Object.keys(evtchnLib())).toHaveLength(9);
  });

  it('opens nothing until used', () => {
    expect(() => openRealXen()).not.toThrow();
  });

  it('says there is no Xen, in one line, when the grant table is used', async () => {
    const { gnttab } = openRealXen();
    await expect(gnttab.map(1, [8], false)).rejects.toThrow(/^cannot open \/dev\/xen\/gntdev: no Xen here \(ENOENT\)$/);
    const dma = allocDma(4096);
    let err: unknown;
    try {
      gnttab.copy([{ toGuest: false, domid: 1, ref: 8, guestOffset: 0, len: 512, local: dma, localOffset: 0 }], 1, new Int16Array(1));
    } catch (e) {
      err = e;
    }
    dma.free();
    expect(err).toBeInstanceOf(XenDeviceError);
    expect((err as XenDeviceError).code).toBe('ENOENT');
    expect((err as XenDeviceError).call).toBe('xengnttab_open');
    await gnttab.close();
  });

  it('says there is no Xen, in one line, when event channels are used', async () => {
    const { evtchn } = openRealXen();
    await expect(evtchn.bindInterdomain(1, 5)).rejects.toThrow(/^cannot open \/dev\/xen\/evtchn: no Xen here \(ENOENT\)$/);
    await expect(evtchn.allocUnbound(1)).rejects.toMatchObject({ code: 'ENOENT', call: 'xenevtchn_open' });
    await evtchn.close();
  });

  it('names the package when a library is missing', async () => {
    const { gnttab, evtchn } = openRealXen({
      gnttab: { library: '/nonexistent/libxengnttab.so.1' },
      evtchn: { library: '/nonexistent/libxenevtchn.so.1' },
    });
    await expect(gnttab.map(1, [8], false)).rejects.toThrow(/^cannot load \/nonexistent\/libxengnttab\.so\.1: .*\(install libxengnttab1\)$/);
    await expect(evtchn.allocUnbound(1)).rejects.toThrow(/\(install libxenevtchn1\)$/);
  });
});
