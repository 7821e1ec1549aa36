import { splitRelayed } from './lib/relayed';

describe('relayed logs on the serial console', () => {
  it('keeps the whole copy dom0 printed at the end over lagging live lines', () => {
    const serial = [
      '[   1.00] (XEN) something',
      '[   2.00] domu1| XENTEST BOOT domu',
      '[   2.50] probe| WATCHING x',
      '[   3.00] XENTEST FILE domu1 BEGIN /var/log/xen/console/guest-domu1.log',
      '[   3.01] domu1|=XENTEST BOOT domu',
      '[   3.02] domu1|=  indented | text',
      '[   3.03] domu1|=last line',
      '[   3.04] XENTEST FILE domu1 END',
    ].join('\n');
    const logs = splitRelayed(serial);
    expect(logs.get('domu1')).toEqual(['XENTEST BOOT domu', '  indented | text', 'last line']);
    expect(logs.get('probe')).toEqual(['WATCHING x']);
    expect(logs.has('(XEN)')).toBe(false);
  });

  it('keeps an empty whole copy empty', () => {
    const logs = splitRelayed('a| live line\nXENTEST FILE a BEGIN /x\nXENTEST FILE a END\n');
    expect(logs.get('a')).toEqual([]);
  });
});
