// What a block device reports about itself: size and sector sizes by ioctl, discard limits from
// sysfs (/sys/dev/block/MAJ:MIN/queue, or the parent disk's queue for a partition).
import * as fs from 'node:fs';
import * as path from 'node:path';
import { BLKGETSIZE64, BLKPBSZGET, BLKSSZGET, ioctlGetInt, ioctlGetU64 } from '../libc';

export interface BlockDeviceInfo {
  sizeBytes: number;
  logicalSectorSize: number;
  physicalSectorSize: number;
  /** Bytes; 0 when the device cannot discard. */
  discardGranularity: number;
  discardMaxBytes: number;
}

/** Major and minor numbers of a dev_t as glibc's gnu_dev_major/minor split it. */
export function devMajorMinor(rdev: number): [number, number] {
  const r = BigInt(rdev);
  const major = Number(((r >> 8n) & 0xfffn) | ((r >> 32n) & ~0xfffn));
  const minor = Number((r & 0xffn) | ((r >> 12n) & ~0xffn));
  return [major, minor];
}

function readSysfsNumber(file: string): number {
  try {
    const n = Number(fs.readFileSync(file, 'utf8').trim());
    return Number.isFinite(n) && n >= 0 ? n : 0;
  } catch {
    return 0;
  }
}

function queueDir(rdev: number): string | null {
  const [major, minor] = devMajorMinor(rdev);
  try {
    const dev = fs.realpathSync(`/sys/dev/block/${major}:${minor}`);
    for (const dir of [dev, path.dirname(dev)]) {
      const q = path.join(dir, 'queue');
      if (fs.existsSync(q)) return q;
    }
  } catch {
    // no sysfs entry: report no discard
  }
  return null;
}

export function probeBlockDevice(fd: number, rdev: number): BlockDeviceInfo {
  const sizeBig = ioctlGetU64(fd, BLKGETSIZE64);
  if (sizeBig > BigInt(Number.MAX_SAFE_INTEGER)) throw new RangeError(`block device of ${sizeBig} bytes`);
  const logical = ioctlGetInt(fd, BLKSSZGET);
  const physical = ioctlGetInt(fd, BLKPBSZGET);
  const q = queueDir(rdev);
  return {
    sizeBytes: Number(sizeBig),
    logicalSectorSize: logical > 0 ? logical : 512,
    physicalSectorSize: physical > 0 ? physical : logical > 0 ? logical : 512,
    discardGranularity: q ? readSysfsNumber(path.join(q, 'discard_granularity')) : 0,
    discardMaxBytes: q ? readSysfsNumber(path.join(q, 'discard_max_bytes')) : 0,
  };
}
