// The block device's configuration: the toolstack's backend keys (params, mode, device-type,
// dev, discard-enable, direct-io-safe) plus the daemon's settings, parsed once at creation.
import { fail, ok, parseOptionalFlag, quote, type Parsed, type XenstoreRecord } from '../parsed';
import { formatTarget, parseTarget } from '../../io/storage/target';
import { parseVdev, type Vdev } from './vdev';

export type BlockDeviceType = 'disk' | 'cdrom';

/** What this daemon offers; part of every device's input so that a replay sees the same values. */
export interface BlockBackendSettings {
  /** max-ring-page-order advertised and accepted (QEMU's default is 4). */
  readonly maxRingPageOrder: number;
  /** Advertise feature-barrier (BLKIF_OP_WRITE_BARRIER is served). */
  readonly featureBarrier: boolean;
  /** Advertise feature-persistent (the frontend may reuse grants). */
  readonly featurePersistent: boolean;
  /** feature-max-indirect-segments to advertise; 0 does not advertise indirect requests. */
  readonly maxIndirectSegments: number;
}

export const DEFAULT_BLOCK_BACKEND_SETTINGS: BlockBackendSettings = {
  maxRingPageOrder: 4,
  featureBarrier: true,
  featurePersistent: true,
  maxIndirectSegments: 256,
};

export interface BlockDeviceConfig {
  readonly vdev: Vdev;
  readonly deviceType: BlockDeviceType;
  /**
   * Where the disk lives: a file or block device path, or a target (rbd:..., nbd:..., qcow2:...)
   * in its canonical spelling (src/io/storage/target.ts).
   */
  readonly path: string;
  /** The toolstack asked for read-only access (mode not "w..."), or the device is a CD-ROM. */
  readonly readOnly: boolean;
  /** Offer discard when the image supports it (discard-enable, default 1 per blkif.h). */
  readonly discardEnable: boolean;
  /** The toolstack says O_DIRECT is safe on this storage (direct-io-safe). */
  readonly directIoSafe: boolean;
  readonly settings: BlockBackendSettings;
}

function parseParams(text: string | undefined): Parsed<string> {
  if (text === undefined || text === '') return fail('params', 'backend key params is missing');
  const target = parseTarget(text);
  if (!target.ok) return fail('params', `backend key params: ${target.message}`);
  return ok(formatTarget(target.value));
}

function checkSettings(settings: BlockBackendSettings): Parsed<BlockBackendSettings> {
  const { maxRingPageOrder, maxIndirectSegments } = settings;
  if (!Number.isInteger(maxRingPageOrder) || maxRingPageOrder < 0 || maxRingPageOrder > 8) {
    return fail('max-ring-page-order', `setting max-ring-page-order must be an integer in 0..8, got ${maxRingPageOrder}`);
  }
  if (!Number.isInteger(maxIndirectSegments) || maxIndirectSegments < 0 || maxIndirectSegments > 4096) {
    return fail('feature-max-indirect-segments', `setting max indirect segments must be in 0..4096, got ${maxIndirectSegments}`);
  }
  return ok(settings);
}

/**
 * Parses the toolstack's backend keys for device `devid`. Errors name the key: `dev` must be
 * present and encode the same number as the device directory (the backend path uses it).
 */
export function parseBlockConfig(
  options: XenstoreRecord,
  devid: number,
  settings: BlockBackendSettings = DEFAULT_BLOCK_BACKEND_SETTINGS,
): Parsed<BlockDeviceConfig> {
  const checked = checkSettings(settings);
  if (!checked.ok) return checked;
  const devText = options['dev'];
  if (devText === undefined) return fail('dev', 'backend key dev is missing');
  const vdev = parseVdev(devText);
  if (!vdev.ok) return vdev;
  if (vdev.value.devid !== devid) {
    return fail('dev', `backend key dev ${quote(devText)} is device ${vdev.value.devid}, not ${devid}`);
  }
  const type = options['device-type'];
  if (type === undefined) return fail('device-type', 'backend key device-type is missing');
  if (type !== 'disk' && type !== 'cdrom') {
    return fail('device-type', `backend key device-type must be disk or cdrom: ${quote(type)}`);
  }
  const path = parseParams(options['params']);
  if (!path.ok) return path;
  const mode = options['mode'];
  const discard = parseOptionalFlag(options, 'discard-enable', true, 'backend key');
  if (!discard.ok) return discard;
  const direct = parseOptionalFlag(options, 'direct-io-safe', false, 'backend key');
  if (!direct.ok) return direct;
  return ok({
    vdev: vdev.value,
    deviceType: type,
    path: path.value,
    // QEMU: read-only unless mode starts with 'w'; a missing mode is writable. CD-ROMs are read-only.
    readOnly: type === 'cdrom' || (mode !== undefined && !mode.startsWith('w')),
    discardEnable: discard.value,
    directIoSafe: direct.value,
    settings,
  });
}
