import { parseBackendDiskInfo, backendMaxRingPageOrder, BACKEND_INFO_KEYS } from '../../src/machines/block/backend-info';
import { DEFAULT_BLOCK_BACKEND_SETTINGS, parseBlockConfig, type BlockDeviceConfig } from '../../src/machines/block/config';
import { VDISK_CDROM, VDISK_READONLY, VDISK_REMOVABLE, infoBits, infoFlags } from '../../src/machines/block/info';
import {
  backendKeysForRealize,
  frontendKeysForRealize,
  resizeKeys,
  sectorsOf,
  type ImageInfo,
} from '../../src/machines/block/realize-keys';

function config(options: Record<string, string> = {}, devid = 51712): BlockDeviceConfig {
  const parsed = parseBlockConfig({ dev: 'xvda', 'device-type': 'disk', params: '/i.img', mode: 'w', ...options }, devid);
  if (!parsed.ok) throw new Error(parsed.error.message);
  return parsed.value;
}

const image: ImageInfo = {
  sizeBytes: 1 << 30,
  sectorSize: 512,
  physicalSectorSize: 4096,
  readOnly: false,
  discardSupport: { granularity: 4096, alignment: 0, secure: false },
};

describe('info bits', () => {
  it('encodes VDISK_* as blkif.h defines them', () => {
    expect([VDISK_CDROM, VDISK_REMOVABLE, VDISK_READONLY]).toEqual([1, 2, 4]);
    expect(infoBits({ cdrom: true, removable: false, readOnly: true })).toBe(5);
    expect(infoFlags(6)).toEqual({ cdrom: false, removable: true, readOnly: true });
  });
});

describe('backendKeysForRealize', () => {
  it('advertises a writable disk with discard', () => {
    expect(backendKeysForRealize(image, config())).toEqual({
      'feature-flush-cache': '1',
      'feature-barrier': '1',
      'feature-persistent': '1',
      'feature-max-indirect-segments': '256',
      'max-ring-page-order': '4',
      info: '0',
      'sector-size': '512',
      'physical-sector-size': '4096',
      sectors: String((1 << 30) / 512),
      'feature-discard': '1',
      'discard-granularity': '4096',
      'discard-alignment': '0',
      'discard-secure': '0',
    });
  });

  it('counts sectors in 512-byte units even with 4 KiB logical sectors (blkif.h)', () => {
    const keys = backendKeysForRealize({ ...image, sectorSize: 4096, sizeBytes: 8 * 4096 }, config());
    expect(keys['sector-size']).toBe('4096');
    expect(keys['sectors']).toBe('64');
  });

  it('offers no discard when the toolstack disables it, the image cannot, or the disk is read-only', () => {
    expect(backendKeysForRealize(image, config({ 'discard-enable': '0' }))['feature-discard']).toBe('0');
    expect(backendKeysForRealize({ ...image, discardSupport: null }, config())['feature-discard']).toBe('0');
    const ro = backendKeysForRealize(image, config({ mode: 'r' }));
    expect(ro['feature-discard']).toBe('0');
    expect(ro).not.toHaveProperty('discard-granularity');
  });

  it('marks read-only from the mode, the image, or a CD-ROM', () => {
    expect(backendKeysForRealize(image, config({ mode: 'r' }))['info']).toBe(String(VDISK_READONLY));
    expect(backendKeysForRealize({ ...image, readOnly: true }, config())['info']).toBe(String(VDISK_READONLY));
    const cd = config({ 'device-type': 'cdrom', dev: 'hdc' }, 22 << 8);
    expect(backendKeysForRealize(image, cd)['info']).toBe(String(VDISK_READONLY | VDISK_CDROM));
  });

  it('follows the settings', () => {
    const settings = { maxRingPageOrder: 2, featureBarrier: false, featurePersistent: false, maxIndirectSegments: 0 };
    const parsed = parseBlockConfig({ dev: 'xvda', 'device-type': 'disk', params: '/i.img' }, 51712, settings);
    if (!parsed.ok) throw new Error(parsed.error.message);
    const keys = backendKeysForRealize(image, parsed.value);
    expect(keys).toMatchObject({ 'max-ring-page-order': '2', 'feature-barrier': '0', 'feature-persistent': '0' });
    expect(keys).not.toHaveProperty('feature-max-indirect-segments');
  });

  it('is what a frontend reads back', () => {
    const keys = backendKeysForRealize(image, config());
    expect(Object.keys(keys).every((k) => BACKEND_INFO_KEYS.includes(k))).toBe(true);
    expect(backendMaxRingPageOrder(keys)).toBe(DEFAULT_BLOCK_BACKEND_SETTINGS.maxRingPageOrder);
    expect(parseBackendDiskInfo(keys)).toEqual({
      ok: true,
      value: {
        sectors: (1 << 30) / 512,
        info: { cdrom: false, removable: false, readOnly: false },
        sectorSize: 512,
        physicalSectorSize: 4096,
        flushCache: true,
        barrier: true,
        discard: { granularity: 4096, alignment: 0, secure: false },
        persistent: true,
        maxIndirectSegments: 256,
      },
    });
  });
});

describe('frontendKeysForRealize and resizeKeys', () => {
  it('writes virtual-device as the device number and device-type', () => {
    expect(frontendKeysForRealize(config().vdev, 'disk')).toEqual({ 'virtual-device': '51712', 'device-type': 'disk' });
  });

  it('publishes the new size in 512-byte sectors', () => {
    expect(resizeKeys(3 * 512 + 100)).toEqual({ sectors: '3' });
    expect(sectorsOf(2 ** 40)).toBe(2 ** 31);
  });
});

describe('parseBackendDiskInfo (blkfront_connect)', () => {
  it.each([
    [{ info: '0', 'sector-size': '512' }, 'sectors', 'backend key sectors is missing'],
    [{ sectors: '8', 'sector-size': '512' }, 'info', 'backend key info is missing'],
    [{ sectors: '8', info: '0' }, 'sector-size', 'backend key sector-size is missing'],
    [{ sectors: '8', info: '0', 'sector-size': '1000' }, 'sector-size', 'power of two'],
    [{ sectors: '8', info: '0', 'sector-size': '4096', 'physical-sector-size': '512' }, 'physical-sector-size', 'multiple'],
    [{ sectors: '99999999999999999999', info: '0', 'sector-size': '512' }, 'sectors', 'out of range'],
  ])('reports %j as an error on %s', (keys, key, message) => {
    const parsed = parseBackendDiskInfo(keys);
    expect(parsed.ok).toBe(false);
    if (!parsed.ok) {
      expect(parsed.error.key).toBe(key);
      expect(parsed.error.message).toContain(message);
    }
  });

  it('defaults optional keys as blkif.h says', () => {
    const parsed = parseBackendDiskInfo({ sectors: '8', info: '4', 'sector-size': '512', 'feature-discard': '1' });
    expect(parsed).toEqual({
      ok: true,
      value: {
        sectors: 8,
        info: { cdrom: false, removable: false, readOnly: true },
        sectorSize: 512,
        physicalSectorSize: 512,
        flushCache: false,
        barrier: false,
        discard: { granularity: 512, alignment: 0, secure: false },
        persistent: false,
        maxIndirectSegments: 0,
      },
    });
  });

  it('reads an unreadable max-ring-page-order as one page, as blkfront', () => {
    expect(backendMaxRingPageOrder({})).toBe(0);
    expect(backendMaxRingPageOrder({ 'max-ring-page-order': 'x' })).toBe(0);
    expect(backendMaxRingPageOrder({ 'max-ring-page-order': '3' })).toBe(3);
  });
});
