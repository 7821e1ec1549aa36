import { decodeDevid, diskLetters, encodeVdev, formatVdev, parseVdev } from '../../src/machines/block/vdev';

// Expected numbers from docs/man/xen-vbd-interface.7 and libxl__device_disk_dev_number.
describe('parseVdev', () => {
  it.each([
    ['xvda', 51712, 'xvd', 0, 0],
    ['xvdb', 51728, 'xvd', 1, 0],
    ['xvdb2', (202 << 8) | (1 << 4) | 2, 'xvd', 1, 2],
    ['xvdp15', (202 << 8) | (15 << 4) | 15, 'xvd', 15, 15],
    ['xvdq', (1 << 28) | (16 << 8), 'xvd', 16, 0],
    ['xvda16', (1 << 28) | 16, 'xvd', 0, 16],
    ['xvdtq37', (1 << 28) | (536 << 8) | 37, 'xvd', 536, 37],
    ['xvdaa', (1 << 28) | (26 << 8), 'xvd', 26, 0],
    ['d0', 51712, 'xvd', 0, 0],
    ['d0p0', 51712, 'xvd', 0, 0],
    ['d1p2', (202 << 8) | (1 << 4) | 2, 'xvd', 1, 2],
    ['d536p37', (1 << 28) | (536 << 8) | 37, 'xvd', 536, 37],
    ['d1048575p255', (1 << 28) | (1048575 << 8) | 255, 'xvd', 1048575, 255],
    ['hda', 3 << 8, 'hd', 0, 0],
    ['hdb1', (3 << 8) | (1 << 6) | 1, 'hd', 1, 1],
    ['hdc2', (22 << 8) | 2, 'hd', 2, 2],
    ['hdd63', (22 << 8) | (1 << 6) | 63, 'hd', 3, 63],
    ['sda', 8 << 8, 'sd', 0, 0],
    ['sdb3', (8 << 8) | (1 << 4) | 3, 'sd', 1, 3],
    ['sdp15', (8 << 8) | (15 << 4) | 15, 'sd', 15, 15],
  ])('%s -> %d (%s disk %d partition %d)', (text, devid, kind, disk, partition) => {
    expect(parseVdev(text)).toEqual({ ok: true, value: { devid, kind, disk, partition } });
  });

  it.each([
    ['51712', 51712, 'xvd', 0, 0],
    ['0xca00', 51712, 'xvd', 0, 0],
    ['0145000', 51712, 'xvd', 0, 0],
    ['768', 768, 'hd', 0, 0],
    ['2049', 2049, 'sd', 0, 1],
    ['268439589', (1 << 28) | (16 << 8) | 37, 'xvd', 16, 37],
  ])('reads the number %s as %d (%s disk %d partition %d)', (text, devid, kind, disk, partition) => {
    expect(parseVdev(text)).toEqual({ ok: true, value: { devid, kind, disk, partition } });
  });

  it.each([
    'xvd',
    'xvdA',
    'xvda01',
    'xvda256',
    'xvdq256',
    'hde',
    'hda64',
    'sdq',
    'sda16',
    'd1048576',
    'd0p256',
    'd01',
    'dp1',
    'd1p',
    'vda',
    '',
    'xvda-1',
    '536870912', // 2 << 28: reserved
    '4096', // major 16: not an encoding
    '1023', // major 3, minor 255: deprecated Linux IDE number
    '-51712',
    `xvd${'z'.repeat(60)}`,
  ])('rejects %j with an error naming the key', (text) => {
    const parsed = parseVdev(text);
    expect(parsed.ok).toBe(false);
    if (!parsed.ok) {
      expect(parsed.error.key).toBe('dev');
      expect(parsed.error.message).toMatch(/^dev '.*' is not a virtual disk specifier/);
    }
  });
});

describe('vdev encoding helpers', () => {
  it('writes disk letters in bijective base 26', () => {
    expect([0, 1, 25, 26, 27, 51, 52, 701, 702, 536].map(diskLetters)).toEqual([
      'a', 'b', 'z', 'aa', 'ab', 'az', 'ba', 'zz', 'aaa', 'tq',
    ]);
  });

  it('decodes every encodable vdev back to itself', () => {
    for (const kind of ['xvd', 'hd', 'sd'] as const) {
      for (const disk of [0, 1, 2, 3, 15, 16, 536, 1048575]) {
        for (const partition of [0, 1, 15, 16, 63, 255]) {
          const devid = encodeVdev(kind, disk, partition);
          if (devid === null) continue;
          expect(decodeDevid(devid)).toEqual({ devid, kind, disk, partition });
          const name = formatVdev({ devid, kind, disk, partition });
          expect(parseVdev(name)).toEqual({ ok: true, value: { devid, kind, disk, partition } });
        }
      }
    }
  });

  it('refuses out-of-range encodings', () => {
    expect(encodeVdev('hd', 4, 0)).toBeNull();
    expect(encodeVdev('sd', 0, 16)).toBeNull();
    expect(encodeVdev('xvd', 1 << 20, 0)).toBeNull();
    expect(decodeDevid(2 << 28)).toBeNull();
  });

  it('formats canonical names', () => {
    expect(formatVdev({ devid: 0, kind: 'xvd', disk: 536, partition: 37 })).toBe('xvdtq37');
    expect(formatVdev({ devid: 0, kind: 'hd', disk: 2, partition: 0 })).toBe('hdc');
  });
});
