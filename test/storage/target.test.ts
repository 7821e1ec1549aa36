import { formatTarget, parseTarget, type TargetSpec } from '../../src/io/storage/target';

function parsed(text: string, format?: string): TargetSpec {
  const r = parseTarget(text, format);
  if (!r.ok) throw new Error(`refused ${text}: ${r.message}`);
  return r.value;
}

function refusal(text: string, format?: string): string {
  const r = parseTarget(text, format);
  if (r.ok) throw new Error(`accepted ${text}`);
  return r.message;
}

describe('target specs (the spellings libxl and QEMU use)', () => {
  it.each([
    ['/images/a.img', { driver: 'raw', path: '/images/a.img' }],
    ['aio:/images/a.img', { driver: 'raw', path: '/images/a.img' }],
    ['phy:/dev/vg/lv', { driver: 'raw', path: '/dev/vg/lv' }],
    ['qcow2:/images/a.qcow2', { driver: 'qsd', format: 'qcow2', path: '/images/a.qcow2' }],
    ['vhd:/images/a.vhd', { driver: 'qsd', format: 'vpc', path: '/images/a.vhd' }],
    ['vmdk:/images/a.vmdk', { driver: 'qsd', format: 'vmdk', path: '/images/a.vmdk' }],
    ['vhdx:/images/a.vhdx', { driver: 'qsd', format: 'vhdx', path: '/images/a.vhdx' }],
    ['nbd:unix:/run/a.sock', { driver: 'nbd', transport: 'unix', path: '/run/a.sock', exportName: '' }],
    ['nbd:unix:/run/a.sock:exportname=disk0', { driver: 'nbd', transport: 'unix', path: '/run/a.sock', exportName: 'disk0' }],
    ['nbd:127.0.0.1:10809:exportname=x', { driver: 'nbd', transport: 'tcp', host: '127.0.0.1', port: 10809, exportName: 'x' }],
    ['nbd://127.0.0.1:4000/disk%201', { driver: 'nbd', transport: 'tcp', host: '127.0.0.1', port: 4000, exportName: 'disk 1' }],
    ['nbd://localhost/d', { driver: 'nbd', transport: 'tcp', host: 'localhost', port: 10809, exportName: 'd' }],
    ['nbd+unix:///e?socket=/run/b.sock', { driver: 'nbd', transport: 'unix', path: '/run/b.sock', exportName: 'e' }],
    ['aio:nbd:unix:/run/a.sock', { driver: 'nbd', transport: 'unix', path: '/run/a.sock', exportName: '' }],
  ] as [string, TargetSpec][])('%s', (text, want) => {
    expect(parsed(text)).toEqual(want);
  });

  it('reads rbd targets as QEMU does: pool, namespace, image, snapshot, options, escapes', () => {
    expect(parsed('rbd:rbd/vm1')).toEqual({ driver: 'rbd', pool: 'rbd', namespace: null, image: 'vm1', snap: null, id: null, conf: null, options: {} });
    expect(parsed('aio:rbd:pool/ns/img@snap1:id=xen:conf=/etc/ceph/c.conf:rbd_cache=false')).toEqual({
      driver: 'rbd', pool: 'pool', namespace: 'ns', image: 'img', snap: 'snap1', id: 'xen', conf: '/etc/ceph/c.conf', options: { rbd_cache: 'false' },
    });
    expect(parsed('rbd:p/i:mon_host=127.0.0.1\\:3300')).toMatchObject({ options: { mon_host: '127.0.0.1:3300' } });
  });

  it('round-trips every accepted target through its canonical text', () => {
    for (const t of ['rbd:p/n/i@s:id=a:conf=/c:rbd_cache=false', 'rbd:p/i:mon_host=127.0.0.1\\:3300', 'nbd:unix:/r/a.sock:exportname=e', 'nbd:127.0.0.1:9:exportname=x', 'nbd:[::1]:9', 'qcow2:/a', 'vpc:/b', '/c']) {
      const spec = parsed(t);
      expect(parsed(formatTarget(spec))).toEqual(spec);
    }
  });

  it.each([
    ['', 'empty'],
    ['images/a.img', 'not an absolute path'],
    ['qed:/a.qed', "image format 'qed' is not served"],
    ['qcow2:nbd:unix:/s', 'served from a file or block device only'],
    ['rbd:onlypool', 'not POOL/IMAGE'],
    ['rbd:a/b/c/d', 'not POOL/IMAGE'],
    ['rbd:p/i:noequals', 'not KEY=VALUE'],
    ['rbd:p/i:admin_socket=/tmp/x', 'not one xenblkd passes to Ceph'],
    ['rbd:p/i:conf=relative', 'not an absolute path'],
    ['rbd:p/i m', 'character Ceph does not allow'],
    ['nbd:unix:relative.sock', 'not an absolute path'],
    ['nbd:host', 'not unix:PATH or HOST:PORT'],
    ['nbd:127.0.0.1:99999', 'not unix:PATH or HOST:PORT'],
    ['nbd+unix:///e', 'no socket= parameter'],
    ['nbds://h/e', 'not served'],
    ['/a\0b', 'NUL'],
    [`/${'x'.repeat(5000)}`, 'longer than'],
  ])('refuses %j with one line (%s)', (text, why) => {
    const message = refusal(text);
    expect(message).toContain(why);
    expect(message).not.toContain('\n');
    expect(message.length).toBeLessThan(200);
  });

  it('checks a separate format name against the prefix', () => {
    expect(parsed('/a.qcow2', 'qcow2')).toEqual({ driver: 'qsd', format: 'qcow2', path: '/a.qcow2' });
    expect(refusal('qcow2:/a', 'vmdk')).toContain('disagrees');
    expect(parsed('aio:/a', 'raw')).toEqual({ driver: 'raw', path: '/a' });
  });
});
