// What the dataplane enforces for a device, from what the backend advertised and what the image
// can do. Pure.
import type { BlkifDeviceLimits } from '../../blkif/request';
import { BLKIF_MAX_SEGMENTS_PER_REQUEST, MAX_INDIRECT_SEGMENTS_WIRE } from '../../blkif/constants';
import type { BlockImage } from '../../io/storage/port';
import type { DataPathMode, DataplaneFeatures } from '../dataplane-port';

export const DEFAULT_DATAPLANE_FEATURES: DataplaneFeatures = {
  barrier: true,
  discard: true,
  maxIndirectSegments: 256,
  persistent: true,
  dataPath: 'auto',
};

export type ImageFacts = Pick<BlockImage, 'sizeBytes' | 'sectorSize' | 'readOnly' | 'discardSupport'>;

export function resolveFeatures(partial: Partial<DataplaneFeatures> | undefined): DataplaneFeatures {
  const f = { ...DEFAULT_DATAPLANE_FEATURES, ...partial };
  const max = f.maxIndirectSegments;
  if (!Number.isInteger(max) || max < 0 || max > MAX_INDIRECT_SEGMENTS_WIRE) {
    throw new RangeError(`maxIndirectSegments ${max} outside 0..${MAX_INDIRECT_SEGMENTS_WIRE}`);
  }
  // Fewer than a direct request carries would only shrink what the frontend may send.
  return { ...f, maxIndirectSegments: max > 0 && max < BLKIF_MAX_SEGMENTS_PER_REQUEST ? BLKIF_MAX_SEGMENTS_PER_REQUEST : max };
}

export function deviceLimits(image: ImageFacts, readOnly: boolean, f: DataplaneFeatures): BlkifDeviceLimits {
  const ro = readOnly || image.readOnly;
  const discard = f.discard && !ro && image.discardSupport !== null;
  return {
    sectors: Math.floor(image.sizeBytes / 512),
    sectorSize: image.sectorSize,
    readOnly: ro,
    flush: true,
    barrier: f.barrier,
    discard,
    discardSecure: discard && image.discardSupport!.secure,
    maxIndirectSegments: f.maxIndirectSegments,
  };
}

/**
 * The data path a ring uses. Persistent grants need both ends to advertise them. 'auto' is the
 * order measured fastest here (src/bench/dataplane.ts): persistent grants (no grant operation
 * per request on either side), then grant copy; per-batch mapping is the slowest (a hypervisor
 * round trip per batch) and is never chosen by itself.
 */
export function chooseDataPath(mode: DataPathMode, backendPersistent: boolean, frontendPersistent: boolean): 'copy' | 'map' | 'persistent' {
  const both = backendPersistent && frontendPersistent;
  switch (mode) {
    case 'copy':
      return 'copy';
    case 'map':
      return 'map';
    case 'persistent':
      return both ? 'persistent' : 'copy';
    case 'auto':
      return both ? 'persistent' : 'copy';
  }
}
