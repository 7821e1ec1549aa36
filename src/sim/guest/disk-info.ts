// What a backend serving an image would publish for it (its realize keys, as the frontend reads
// them): for guests whose backend runs without xenstore (tests, benchmarks, the soak).
import type { BlockImage } from '../../io/storage/port';
import type { BackendDiskInfo } from '../../machines/block/backend-info';

export interface AdvertisedFeatures {
  readOnly?: boolean;
  barrier?: boolean;
  discard?: boolean;
  persistent?: boolean;
  maxIndirectSegments?: number;
}

export function diskInfoFor(image: Pick<BlockImage, 'sizeBytes' | 'sectorSize' | 'physicalSectorSize' | 'readOnly' | 'discardSupport'>, f: AdvertisedFeatures = {}): BackendDiskInfo {
  const readOnly = (f.readOnly ?? false) || image.readOnly;
  const d = image.discardSupport;
  const discard = (f.discard ?? true) && d !== null && !readOnly;
  return {
    sectors: Math.floor(image.sizeBytes / 512),
    info: { cdrom: false, removable: false, readOnly },
    sectorSize: image.sectorSize,
    physicalSectorSize: image.physicalSectorSize,
    flushCache: true,
    barrier: f.barrier ?? true,
    discard: discard ? { granularity: d.granularity, alignment: d.alignment, secure: d.secure } : null,
    persistent: f.persistent ?? true,
    maxIndirectSegments: f.maxIndirectSegments ?? 256,
  };
}
