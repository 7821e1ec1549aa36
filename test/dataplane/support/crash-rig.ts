// A guest running a workload in this process while its dataplane runs (and dies) in a child.
import type { StandaloneConfig } from '../../../src/effects/dataplane/standalone';
import { openRawImage } from '../../../src/io/storage/raw';
import type { BlkifProtocol } from '../../../src/machines/block/connect-params';
import { GuestBlockQueue } from '../../../src/sim/guest';

import { DEVID, diskInfo, type Rig } from './rig';

export interface GuestSetup {
  order?: number;
  protocol?: BlkifProtocol;
  persistent?: boolean;
  dataPath?: StandaloneConfig['features']['dataPath'];
  maxRequests?: number;
  /** Another image than the rig's (a loop device). */
  imagePath?: string;
}

export async function guestQueue(rig: Rig, s: GuestSetup = {}): Promise<{ queue: GuestBlockQueue; config: StandaloneConfig }> {
  const queue = await GuestBlockQueue.create(rig.guest, {
    backendDomid: 0,
    ringPageOrder: s.order ?? 0,
    protocol: s.protocol ?? 'x86_64-abi',
    persistent: s.persistent ?? false,
    indirectSegments: 256,
    maxRequests: s.maxRequests,
  });
  const config: StandaloneConfig = {
    hvSocket: rig.socketPath,
    imagePath: s.imagePath ?? rig.imagePath,
    stateDir: rig.stateDir,
    frontendDomid: rig.guest.domid,
    devid: DEVID,
    backendType: 'vbd',
    params: queue.params,
    readOnly: false,
    direct: true,
    features: { barrier: true, discard: true, persistent: true, maxIndirectSegments: 256, dataPath: s.dataPath ?? 'auto' },
    order: 'ring',
  };
  // What the backend would publish: the same facts the child derives from the image.
  const image = await openRawImage(config.imagePath);
  queue.start(diskInfo(image));
  await image.close();
  return { queue, config };
}

export { DataplaneChild, type Child } from './child';
