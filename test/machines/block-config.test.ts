import { DEFAULT_BLOCK_BACKEND_SETTINGS, parseBlockConfig } from '../../src/machines/block/config';

const XVDA = 51712;
const base = { dev: 'xvda', 'device-type': 'disk', params: '/images/disk.img', mode: 'w' };

function errorOf(options: Record<string, string>, devid = XVDA, settings = DEFAULT_BLOCK_BACKEND_SETTINGS) {
  const parsed = parseBlockConfig(options, devid, settings);
  if (parsed.ok) throw new Error('expected an error');
  return parsed.error;
}

describe('parseBlockConfig (the toolstack keys of a vbd)', () => {
  it('reads a writable disk', () => {
    expect(parseBlockConfig(base, XVDA)).toEqual({
      ok: true,
      value: {
        vdev: { devid: XVDA, kind: 'xvd', disk: 0, partition: 0 },
        deviceType: 'disk',
        path: '/images/disk.img',
        readOnly: false,
        discardEnable: true,
        directIoSafe: false,
        settings: DEFAULT_BLOCK_BACKEND_SETTINGS,
      },
    });
  });

  it.each([
    ['r', true],
    ['w', false],
    ['w!', false],
    ['ro', true],
  ])('mode %s gives readOnly=%s', (mode, readOnly) => {
    const parsed = parseBlockConfig({ ...base, mode }, XVDA);
    expect(parsed.ok && parsed.value.readOnly).toBe(readOnly);
  });

  it('treats a missing mode as writable, as QEMU does', () => {
    const { mode: _mode, ...noMode } = base;
    const parsed = parseBlockConfig(noMode, XVDA);
    expect(parsed.ok && parsed.value.readOnly).toBe(false);
  });

  it('makes a CD-ROM read-only whatever the mode', () => {
    const parsed = parseBlockConfig({ ...base, 'device-type': 'cdrom', dev: 'hdc' }, (22 << 8));
    expect(parsed.ok && parsed.value.readOnly).toBe(true);
    expect(parsed.ok && parsed.value.deviceType).toBe('cdrom');
  });

  it.each([
    ['aio:/images/a.img', '/images/a.img'],
    ['raw:/images/a.img', '/images/a.img'],
    ['file:/images/a:b.img', '/images/a:b.img'],
    ['phy:/dev/vg/lv', '/dev/vg/lv'],
    ['/images/with:colon', '/images/with:colon'],
  ])('params %s serves %s', (params, path) => {
    const parsed = parseBlockConfig({ ...base, params }, XVDA);
    expect(parsed.ok && parsed.value.path).toBe(path);
  });

  it('reads discard-enable and direct-io-safe', () => {
    const parsed = parseBlockConfig({ ...base, 'discard-enable': '0', 'direct-io-safe': '1' }, XVDA);
    expect(parsed.ok && [parsed.value.discardEnable, parsed.value.directIoSafe]).toEqual([false, true]);
  });

  it.each([
    [{ ...base, dev: undefined }, 'dev', 'backend key dev is missing'],
    [{ ...base, dev: 'xvdz9z' }, 'dev', "dev 'xvdz9z' is not a virtual disk specifier"],
    [{ ...base, dev: 'xvdb' }, 'dev', "backend key dev 'xvdb' is device 51728, not 51712"],
    [{ ...base, 'device-type': undefined }, 'device-type', 'backend key device-type is missing'],
    [{ ...base, 'device-type': 'floppy' }, 'device-type', "backend key device-type must be disk or cdrom: 'floppy'"],
    [{ ...base, params: undefined }, 'params', 'backend key params is missing'],
    [{ ...base, params: 'qed:/images/a.qed' }, 'params', "image format 'qed' is not served"],
    [{ ...base, params: 'qcow2:rbd:pool/img' }, 'params', 'format qcow2 is served from a file or block device only'],
    [{ ...base, params: 'images/a.img' }, 'params', 'is not an absolute path'],
    [{ ...base, 'discard-enable': 'yes' }, 'discard-enable', 'backend key discard-enable is not an unsigned decimal'],
  ])('reports %j as an error on %s', (options, key, message) => {
    const clean = Object.fromEntries(Object.entries(options).filter(([, v]) => v !== undefined)) as Record<string, string>;
    const error = errorOf(clean);
    expect(error.key).toBe(key);
    expect(error.message).toContain(message);
  });

  it('refuses settings outside what the protocol allows', () => {
    expect(errorOf(base, XVDA, { ...DEFAULT_BLOCK_BACKEND_SETTINGS, maxRingPageOrder: 9 }).key).toBe('max-ring-page-order');
  });
});
