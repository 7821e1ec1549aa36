// The block device (QEMU hw/block/xen-block.c) on top of the generic xenbus device: how its
// options and its frontend's transport keys are read. The effects layer provides the I/O.
import type { Parsed, XenstoreRecord } from '../parsed';
import { createXenbusDeviceMachine, type XenbusDeviceContext, type XenbusDevicePolicy } from '../xenbus/device-machine';
import type { XenbusDeviceEvent } from '../xenbus/device-events';
import type { DeviceIdentity } from '../xenbus/identity';
import { parseBlockConfig, type BlockBackendSettings, type BlockDeviceConfig } from './config';
import { parseConnectParams, sameConnectParams, type ConnectParams } from './connect-params';
import { resizeKeys, type ImageInfo } from './realize-keys';

/** What the block realize reports: the opened image's facts (the keys derive from them). */
export interface BlockRealized {
  readonly image: ImageInfo;
}

export const blockDevicePolicy: XenbusDevicePolicy<BlockBackendSettings, BlockDeviceConfig, BlockRealized, ConnectParams> = {
  id: 'vbd',
  parseConfig(options: XenstoreRecord, identity: DeviceIdentity, settings: BlockBackendSettings): Parsed<BlockDeviceConfig> {
    return parseBlockConfig(options, identity.devid, settings);
  },
  parseConnection(frontendKeys: XenstoreRecord, config: BlockDeviceConfig): Parsed<ConnectParams> {
    return parseConnectParams(frontendKeys, { maxRingPageOrder: config.settings.maxRingPageOrder });
  },
  sameConnection: sameConnectParams,
};

export const blockDeviceMachine = createXenbusDeviceMachine(blockDevicePolicy);

export type BlockDeviceMachine = typeof blockDeviceMachine;
export type BlockDeviceEvent = XenbusDeviceEvent<BlockRealized>;
export type BlockDeviceContext = XenbusDeviceContext<BlockDeviceConfig, BlockRealized, ConnectParams>;

/** The event announcing an online resize: new size published, state rewritten (blkback, QEMU). */
export function resizeEvent(realized: BlockRealized, sizeBytes: number): BlockDeviceEvent {
  return { type: 'device.update', keys: resizeKeys(sizeBytes), realized: { image: { ...realized.image, sizeBytes } } };
}
