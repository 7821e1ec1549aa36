// What the block backend publishes at realize (xen_block_realize, blkback probe/connect) and on
// an online resize (xen_block_resize_cb, xen_vbd_resize).
import type { BlockImage } from '../../io/storage/port';
import type { BlockDeviceConfig } from './config';
import { infoBits } from './info';
import type { Vdev } from './vdev';

/** The facts about an opened image that the keys depend on (a subset of the BlockImage port). */
export type ImageInfo = Pick<BlockImage, 'sizeBytes' | 'sectorSize' | 'physicalSectorSize' | 'readOnly' | 'discardSupport'> & {
  /** The largest transfer the storage takes in one request (absent: no limit; older sessions). */
  readonly maxTransferBytes?: number;
};

/** A blkif segment is at most one 4 KiB page. */
const SEGMENT_BYTES = 4096;
/** What a direct request carries (BLKIF_MAX_SEGMENTS_PER_REQUEST): never advertised below. */
const DIRECT_SEGMENTS = 11;

/**
 * feature-max-indirect-segments: the setting, bounded by what the storage takes in one request
 * (an indirect request is at most that many pages), never below a direct request's 11.
 */
export function indirectSegmentsOffered(image: Pick<ImageInfo, 'maxTransferBytes'>, config: BlockDeviceConfig): number {
  const wanted = config.settings.maxIndirectSegments;
  if (wanted === 0 || image.maxTransferBytes === undefined) return wanted;
  return Math.min(wanted, Math.max(DIRECT_SEGMENTS, Math.floor(image.maxTransferBytes / SEGMENT_BYTES)));
}

/** blkif `sectors` is always in 512-byte units, whatever sector-size says. */
export const BLKIF_SECTOR_SIZE = 512;

export function sectorsOf(sizeBytes: number): number {
  return Math.floor(sizeBytes / BLKIF_SECTOR_SIZE);
}

/** The effective read-only flag: asked for by the toolstack, forced by a CD-ROM or by the image. */
export function isReadOnly(image: Pick<ImageInfo, 'readOnly'>, config: BlockDeviceConfig): boolean {
  return config.readOnly || image.readOnly;
}

export function discardOffered(image: Pick<ImageInfo, 'discardSupport' | 'readOnly'>, config: BlockDeviceConfig): boolean {
  return config.discardEnable && image.discardSupport !== null && !isReadOnly(image, config);
}

/** Backend keys written at realize, before the backend goes InitWait. */
export function backendKeysForRealize(image: ImageInfo, config: BlockDeviceConfig): Record<string, string> {
  const { settings } = config;
  const readOnly = isReadOnly(image, config);
  const keys: Record<string, string> = {
    'feature-flush-cache': '1',
    'feature-barrier': settings.featureBarrier ? '1' : '0',
    'feature-persistent': settings.featurePersistent ? '1' : '0',
    'max-ring-page-order': String(settings.maxRingPageOrder),
    info: String(infoBits({ cdrom: config.deviceType === 'cdrom', removable: false, readOnly })),
    'sector-size': String(image.sectorSize),
    'physical-sector-size': String(image.physicalSectorSize),
    sectors: String(sectorsOf(image.sizeBytes)),
  };
  if (settings.maxIndirectSegments > 0) {
    keys['feature-max-indirect-segments'] = String(indirectSegmentsOffered(image, config));
  }
  const discard = image.discardSupport;
  if (discard !== null && discardOffered(image, config)) {
    keys['feature-discard'] = '1';
    keys['discard-granularity'] = String(discard.granularity);
    keys['discard-alignment'] = String(discard.alignment);
    keys['discard-secure'] = discard.secure ? '1' : '0';
  } else {
    keys['feature-discard'] = '0';
  }
  return keys;
}

/** Frontend keys written at realize (xen_block_realize). */
export function frontendKeysForRealize(vdev: Vdev, deviceType: BlockDeviceConfig['deviceType']): Record<string, string> {
  return { 'virtual-device': String(vdev.devid), 'device-type': deviceType };
}

/**
 * Keys rewritten on an online resize. The writer also rewrites `state` with its current value
 * in the same transaction, so that the frontend's watch fires and it re-reads `sectors`.
 */
export function resizeKeys(sizeBytes: number): Record<string, string> {
  return { sectors: String(sectorsOf(sizeBytes)) };
}
