// What a frontend reads from the backend (blkfront talk_to_blkback, blkfront_connect,
// blkfront_gather_backend_features): the ring limit before connecting, the disk once Connected.
import { fail, ok, parseOptionalFlag, parseOptionalUnsigned, parseUnsigned, type Parsed, type XenstoreRecord } from '../parsed';
import { RING_PAGE_ORDER_LIMIT } from './connect-params';
import { infoFlags, type VdiskFlags } from './info';

const BE = 'backend key';

export interface BackendDiskInfo {
  /** Size in 512-byte units (blkif `sectors`). */
  readonly sectors: number;
  readonly info: VdiskFlags;
  readonly sectorSize: number;
  readonly physicalSectorSize: number;
  readonly flushCache: boolean;
  readonly barrier: boolean;
  readonly discard: { readonly granularity: number; readonly alignment: number; readonly secure: boolean } | null;
  readonly persistent: boolean;
  /** 0: no indirect requests. */
  readonly maxIndirectSegments: number;
}

function isPowerOfTwo(n: number): boolean {
  return n > 0 && (n & (n - 1)) === 0;
}

/** max-ring-page-order as blkfront reads it: absent or unreadable is 0 (one page). */
export function backendMaxRingPageOrder(keys: XenstoreRecord): number {
  const order = parseOptionalUnsigned(keys, 'max-ring-page-order', 0, RING_PAGE_ORDER_LIMIT, BE);
  return order.ok ? order.value : 0;
}

/** The backend's device properties; sectors, info and sector-size are required (blkfront_connect). */
export function parseBackendDiskInfo(keys: XenstoreRecord): Parsed<BackendDiskInfo> {
  const sectors = parseUnsigned(keys, 'sectors', Number.MAX_SAFE_INTEGER, BE);
  if (!sectors.ok) return sectors;
  const info = parseUnsigned(keys, 'info', undefined, BE);
  if (!info.ok) return info;
  const sectorSize = parseUnsigned(keys, 'sector-size', undefined, BE);
  if (!sectorSize.ok) return sectorSize;
  if (sectorSize.value < 512 || !isPowerOfTwo(sectorSize.value)) {
    return fail('sector-size', `${BE} sector-size must be a power of two >= 512, got ${sectorSize.value}`);
  }
  const physical = parseOptionalUnsigned(keys, 'physical-sector-size', sectorSize.value, undefined, BE);
  if (!physical.ok) return physical;
  if (physical.value % sectorSize.value !== 0 || physical.value === 0) {
    return fail('physical-sector-size', `${BE} physical-sector-size ${physical.value} is not a multiple of sector-size`);
  }
  const flushCache = parseOptionalFlag(keys, 'feature-flush-cache', false, BE);
  if (!flushCache.ok) return flushCache;
  const barrier = parseOptionalFlag(keys, 'feature-barrier', false, BE);
  if (!barrier.ok) return barrier;
  const discardFlag = parseOptionalFlag(keys, 'feature-discard', false, BE);
  if (!discardFlag.ok) return discardFlag;
  let discard: BackendDiskInfo['discard'] = null;
  if (discardFlag.value) {
    // blkif.h: frontends assume granularity = sector size and alignment 0 when absent.
    const granularity = parseOptionalUnsigned(keys, 'discard-granularity', sectorSize.value, undefined, BE);
    if (!granularity.ok) return granularity;
    const alignment = parseOptionalUnsigned(keys, 'discard-alignment', 0, undefined, BE);
    if (!alignment.ok) return alignment;
    const secure = parseOptionalFlag(keys, 'discard-secure', false, BE);
    if (!secure.ok) return secure;
    discard = { granularity: granularity.value, alignment: alignment.value, secure: secure.value };
  }
  const persistent = parseOptionalFlag(keys, 'feature-persistent', false, BE);
  if (!persistent.ok) return persistent;
  const indirect = parseOptionalUnsigned(keys, 'feature-max-indirect-segments', 0, undefined, BE);
  if (!indirect.ok) return indirect;
  return ok({
    sectors: sectors.value,
    info: infoFlags(info.value),
    sectorSize: sectorSize.value,
    physicalSectorSize: physical.value,
    flushCache: flushCache.value,
    barrier: barrier.value,
    discard,
    persistent: persistent.value,
    maxIndirectSegments: indirect.value,
  });
}

/** The backend keys a frontend reads (what the simulated guest reads on a backend watch). */
export const BACKEND_INFO_KEYS: readonly string[] = [
  'max-ring-page-order',
  'sectors',
  'info',
  'sector-size',
  'physical-sector-size',
  'feature-flush-cache',
  'feature-barrier',
  'feature-discard',
  'discard-granularity',
  'discard-alignment',
  'discard-secure',
  'feature-persistent',
  'feature-max-indirect-segments',
];
