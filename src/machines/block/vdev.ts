// Virtual disk specifiers (docs/man/xen-vbd-interface.7, libxl__device_disk_dev_number):
// xvdX[N], hdX[N], sdX[N], dN[pM] and raw numbers, to the xenstore device id and back.
import { fail, ok, quote, type Parsed } from '../parsed';

export type VdevKind = 'xvd' | 'hd' | 'sd';

export interface Vdev {
  /** The number used as the device's xenstore directory name and `virtual-device`. */
  readonly devid: number;
  /** Nominal disk type; dN[pM] is a Xen virtual disk (xvd). */
  readonly kind: VdevKind;
  readonly disk: number;
  /** 0 is the whole disk. */
  readonly partition: number;
}

const XVD_EXTENDED = 1 << 28;
const XVD_MAX_DISK = (1 << 20) - 1;
const XVD_MAX_PARTITION = 255;
const LIMITS: Record<VdevKind, { maxDisk: number; maxPartition: number }> = {
  xvd: { maxDisk: XVD_MAX_DISK, maxPartition: XVD_MAX_PARTITION },
  hd: { maxDisk: 3, maxPartition: 63 },
  sd: { maxDisk: 15, maxPartition: 15 },
};

/** The xenstore encoding of (kind, disk, partition); null when out of that kind's range. */
export function encodeVdev(kind: VdevKind, disk: number, partition: number): number | null {
  const limit = LIMITS[kind];
  if (!Number.isInteger(disk) || !Number.isInteger(partition)) return null;
  if (disk < 0 || partition < 0 || disk > limit.maxDisk || partition > limit.maxPartition) return null;
  switch (kind) {
    case 'xvd':
      if (disk <= 15 && partition <= 15) return (202 << 8) | (disk << 4) | partition;
      return XVD_EXTENDED + disk * 256 + partition;
    case 'hd':
      return ((disk < 2 ? 3 : 22) << 8) | ((disk & 1) << 6) | partition;
    case 'sd':
      return (8 << 8) | (disk << 4) | partition;
  }
}

/** Reads a xenstore device number back; null for reserved or deprecated encodings. */
export function decodeDevid(devid: number): Vdev | null {
  if (!Number.isInteger(devid) || devid < 0 || devid > 0xffff_ffff) return null;
  if (devid >= XVD_EXTENDED) {
    if (devid >= 2 * XVD_EXTENDED) return null; // 2 << 28 onwards: reserved
    const rest = devid - XVD_EXTENDED;
    return { devid, kind: 'xvd', disk: Math.floor(rest / 256), partition: rest % 256 };
  }
  const major = devid >> 8;
  const minor = devid & 0xff;
  switch (major) {
    case 202:
      return { devid, kind: 'xvd', disk: minor >> 4, partition: minor & 15 };
    case 8:
      return { devid, kind: 'sd', disk: minor >> 4, partition: minor & 15 };
    case 3:
    case 22:
      if (minor >= 128) return null; // deprecated Linux-specific IDE numbers
      return { devid, kind: 'hd', disk: (major === 3 ? 0 : 2) + (minor >> 6), partition: minor & 63 };
    default:
      return null;
  }
}

/** Bijective base 26: a=0 ... z=25, aa=26 (the guest's disk letters). null if beyond max. */
function lettersToDisk(letters: string, max: number): number | null {
  let index = -1;
  for (const c of letters) {
    index = (index + 1) * 26 + (c.charCodeAt(0) - 97);
    if (index > max) return null;
  }
  return index;
}

export function diskLetters(disk: number): string {
  let name = '';
  let n = disk;
  for (;;) {
    name = String.fromCharCode(97 + (n % 26)) + name;
    if (n < 26) return name;
    n = Math.floor(n / 26) - 1;
  }
}

const NAMED = /^(xvd|hd|sd)([a-z]+)(0|[1-9][0-9]*)?$/;
const DP = /^d(0|[1-9][0-9]*)(?:p(0|[1-9][0-9]*))?$/;
const HEX = /^0[xX][0-9a-fA-F]+$/;
const OCTAL = /^0[0-7]*$/;
const DECIMAL = /^[1-9][0-9]*$/;

function parseNumber(text: string): number | null {
  if (text.length > 12) return null;
  if (HEX.test(text)) return parseInt(text.slice(2), 16);
  if (OCTAL.test(text)) return parseInt(text, 8);
  if (DECIMAL.test(text)) return Number(text);
  return null;
}

/**
 * Parses a virtual disk specifier as the toolstack writes it (backend key `dev`):
 * "xvda", "xvdb2", "xvdtq37", "hdc2", "sdb3", "d536p37", "d0", or a number (decimal, 0x hex,
 * 0 octal; libxl's strtoul base 0) in one of the encodings above.
 */
export function parseVdev(text: string, key = 'dev'): Parsed<Vdev> {
  const invalid = (why: string) => fail<Vdev>(key, `${key} ${quote(text)} is not a virtual disk specifier: ${why}`);
  const named = NAMED.exec(text);
  const dp = named ? null : DP.exec(text);
  let kind: VdevKind;
  let disk: number | null;
  let partition: number;
  if (named) {
    kind = named[1] as VdevKind;
    disk = lettersToDisk(named[2]!, LIMITS[kind].maxDisk);
    partition = named[3] === undefined ? 0 : Number(named[3]);
  } else if (dp) {
    kind = 'xvd';
    disk = dp[1]!.length > 7 ? null : Number(dp[1]);
    partition = dp[2] === undefined ? 0 : dp[2].length > 3 ? Infinity : Number(dp[2]);
  } else {
    const n = parseNumber(text);
    if (n === null || n > 0x7fff_ffff) return invalid('expected xvd*, hd*, sd*, dN[pM] or a device number');
    const decoded = decodeDevid(n);
    return decoded ? ok(decoded) : invalid('the number is a reserved or deprecated encoding');
  }
  const limit = LIMITS[kind];
  if (disk === null || disk > limit.maxDisk) return invalid(`disk number above ${limit.maxDisk}`);
  if (partition > limit.maxPartition) return invalid(`partition above ${limit.maxPartition}`);
  const devid = encodeVdev(kind, disk, partition);
  return devid === null ? invalid('out of range') : ok({ devid, kind, disk, partition });
}

/** The canonical name, e.g. "xvdb2"; partition 0 (whole disk) has no suffix. */
export function formatVdev(vdev: Vdev): string {
  return `${vdev.kind}${diskLetters(vdev.disk)}${vdev.partition === 0 ? '' : vdev.partition}`;
}
