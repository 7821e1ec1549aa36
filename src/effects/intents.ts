// What an effect asks of the world, as plain data: the xenstore writes, removals, ring mappings
// and event-channel bindings a machine's named actor makes. Each is computed by a pure function
// of the actor's input (or of the outcome it reports), so the live effect (which performs them)
// and the replay effect (which only lists them) cannot disagree. Session recordings store them.
import {
  type BackendDiskInfo,
  type BlockDeviceConfig,
  type ConnectParams,
  type DeviceIdentity,
  type DeviceRef,
  type ImageInfo,
  type XenbusState,
  type XenstoreRecord,
  backendKeysForRealize,
  frontendKeysForRealize,
  frontendRingKeys,
  xenbusRealizeKeys,
} from '../machines';

export type Intent =
  /** The node holds `value` afterwards. With `unlessExists`: only when that node does not exist. */
  | { readonly op: 'write'; readonly path: string; readonly value: string; readonly unlessExists?: string }
  /** Writes the node's current value back (fires its watches); nothing when it does not exist. */
  | { readonly op: 'rewrite'; readonly path: string }
  /** Removes the node and everything below it; a missing node is fine. */
  | { readonly op: 'rm'; readonly path: string }
  | { readonly op: 'map-ring'; readonly domid: number; readonly refs: readonly number[] }
  | { readonly op: 'unmap-ring'; readonly domid: number; readonly refs: readonly number[] }
  | { readonly op: 'bind'; readonly domid: number; readonly port: number }
  | { readonly op: 'unbind'; readonly domid: number; readonly port: number }
  /** The bus asks for a device actor (spawnDevice) or its retirement (retireDevice). */
  | { readonly op: 'spawn'; readonly device: string }
  | { readonly op: 'retire'; readonly device: string }
  /** A frontend's block queue runs on (or was resized to) a disk of this size. */
  | { readonly op: 'disk'; readonly sectors: number; readonly sectorSize: number };

export type IntentOp = Intent['op'];
export const INTENT_OPS: readonly IntentOp[] = ['write', 'rewrite', 'rm', 'map-ring', 'unmap-ring', 'bind', 'unbind', 'spawn', 'retire', 'disk'];

/** Where effects report their intents (a session recorder); `recording` false: nothing to report. */
export interface IntentSink {
  readonly recording: boolean;
  /** machine: 'bus' | 'vbd' | 'blkfront'; device: the device key (none for the bus). */
  intents(machine: string, device: string | undefined, intents: readonly Intent[]): void;
}

export function writesOf(dir: string, keys: XenstoreRecord, unlessExists?: string): Intent[] {
  return Object.entries(keys).map(([k, value]) =>
    unlessExists === undefined ? { op: 'write', path: `${dir}/${k}`, value } : { op: 'write', path: `${dir}/${k}`, value, unlessExists },
  );
}

// Block device (src/machines/block): one function per named actor.

/** realize, once the image is open: backend keys, the frontend directory if missing, frontend keys (one transaction). */
export function realizeIntents(identity: DeviceIdentity, config: BlockDeviceConfig, image: ImageInfo): Intent[] {
  const generic = xenbusRealizeKeys(identity);
  return [
    ...writesOf(identity.backendPath, { ...generic.backend, ...backendKeysForRealize(image, config) }),
    ...writesOf(identity.frontendPath, generic.frontendIfMissing, `${identity.frontendPath}/state`),
    ...writesOf(identity.frontendPath, frontendKeysForRealize(config.vdev, config.deviceType)),
  ];
}

/** writeBackendState. */
export function backendStateIntents(identity: DeviceIdentity, state: XenbusState): Intent[] {
  return [{ op: 'write', path: `${identity.backendPath}/state`, value: String(state) }];
}

/** connection, when invoked: map the frontend's ring, bind its event channel. */
export function connectIntents(identity: DeviceIdentity, params: ConnectParams): Intent[] {
  return [
    { op: 'map-ring', domid: identity.frontendDomid, refs: [...params.ringRefs] },
    { op: 'bind', domid: identity.frontendDomid, port: params.eventChannel },
  ];
}

/** connection, when stopped: the disconnect. */
export function disconnectIntents(identity: DeviceIdentity, params: ConnectParams): Intent[] {
  return [
    { op: 'unbind', domid: identity.frontendDomid, port: params.eventChannel },
    { op: 'unmap-ring', domid: identity.frontendDomid, refs: [...params.ringRefs] },
  ];
}

/** reportFailure. */
export function failureIntents(identity: DeviceIdentity, message: string): Intent[] {
  return writesOf(identity.backendPath, { 'hotplug-status': 'error', 'hotplug-error': message });
}

/** publishUpdate (one transaction): the keys, then `state` rewritten so the frontend re-reads them. */
export function updateIntents(identity: DeviceIdentity, keys: XenstoreRecord): Intent[] {
  return [...writesOf(identity.backendPath, keys), { op: 'rewrite', path: `${identity.backendPath}/state` }];
}

/** unplug (one transaction). */
export function unplugIntents(identity: DeviceIdentity): Intent[] {
  return writesOf(identity.backendPath, { online: '0', state: '5' });
}

/** destroy: the frontend directory, then the backend's. */
export function destroyIntents(identity: DeviceIdentity): Intent[] {
  return [
    { op: 'rm', path: identity.frontendPath },
    { op: 'rm', path: identity.backendPath },
  ];
}

// Bus (src/machines/bus).

export function spawnIntents(ref: DeviceRef): Intent[] {
  return [{ op: 'spawn', device: ref.key }];
}

export function retireIntents(ref: DeviceRef): Intent[] {
  return [{ op: 'retire', device: ref.key }];
}

// Frontend (src/machines/frontend).

/** writeFrontendState. */
export function frontendStateIntents(identity: DeviceIdentity, state: XenbusState): Intent[] {
  return [{ op: 'write', path: `${identity.frontendPath}/state`, value: String(state) }];
}

/** disk, when it starts and on every resize it is told of. */
export function diskIntents(disk: Pick<BackendDiskInfo, 'sectors' | 'sectorSize'>): Intent[] {
  return [{ op: 'disk', sectors: disk.sectors, sectorSize: disk.sectorSize }];
}

/** ring, once granted: the transport keys (one transaction). */
export function ringIntents(identity: DeviceIdentity, ring: ConnectParams): Intent[] {
  return writesOf(identity.frontendPath, frontendRingKeys(ring));
}
