// The toolstack's part in a disk's life, done the way libxl does it (libxl_device.c,
// libxl_disk.c): write the backend and frontend directories with their permissions in one
// transaction to plug; online=0 and state=Closing in one transaction to unplug, wait for the
// backend to reach Closed, then remove what is left.
import type { XenStore } from '../io/xs/client';
import { XsError } from '../io/xs/client';
import { type Vdev, deviceIdentity, formatVdev, parseVdev, XenbusState, type DeviceIdentity } from '../machines';
import { readKeys, removeIfPresent, waitUntil, writeKeys } from '../effects/xenstore';

export interface DiskSpec {
  readonly frontendDomid: number;
  /** xvda, hda, sdb, d0p1, or a number. */
  readonly vdev: string;
  /** Absolute path of the image (file or block device). */
  readonly image: string;
  readonly readOnly?: boolean;
  readonly cdrom?: boolean;
  readonly backendDomid?: number;
  readonly backendType?: string;
  readonly discard?: boolean;
}

export class ToolstackError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'ToolstackError';
  }
}

function vdevOf(text: string): Vdev {
  const vdev = parseVdev(text);
  if (!vdev.ok) throw new ToolstackError(vdev.error.message);
  return vdev.value;
}

export function diskIdentity(spec: Pick<DiskSpec, 'frontendDomid' | 'vdev' | 'backendDomid' | 'backendType'>): DeviceIdentity {
  return deviceIdentity({
    backendDomid: spec.backendDomid ?? 0,
    backendType: spec.backendType ?? 'vbd',
    frontendDomid: spec.frontendDomid,
    devid: vdevOf(spec.vdev).devid,
  });
}

/** Plugs a disk into a domain (libxl__device_disk_add); refuses a devid already in use. */
export async function attachDisk(xs: XenStore, spec: DiskSpec): Promise<DeviceIdentity> {
  const vdev = vdevOf(spec.vdev);
  const id = diskIdentity(spec);
  const be = id.backendDomid;
  const fe = id.frontendDomid;
  if ((await xs.tryRead(`/local/domain/${fe}/domid`)) === undefined && (await xs.tryRead(`/local/domain/${fe}`)) === undefined) {
    throw new ToolstackError(`domain ${fe} does not exist (no /local/domain/${fe} in xenstore)`);
  }
  await xs.transaction(async (tx) => {
    if ((await tx.tryRead(`${id.backendPath}/state`)) !== undefined || (await tx.tryRead(`${id.frontendPath}/state`)) !== undefined) {
      throw new ToolstackError(`domain ${fe} already has a disk ${spec.vdev} (device ${id.devid})`);
    }
    await tx.mkdir(id.backendPath);
    await tx.setPerms(id.backendPath, [{ domid: be, access: 'n' }, { domid: fe, access: 'r' }]);
    await tx.mkdir(id.frontendPath);
    await tx.setPerms(id.frontendPath, [{ domid: fe, access: 'n' }, { domid: be, access: 'r' }]);
    const deviceType = spec.cdrom ? 'cdrom' : 'disk';
    await writeKeys(tx, id.backendPath, {
      frontend: id.frontendPath,
      'frontend-id': String(fe),
      online: '1',
      state: String(XenbusState.Initialising),
      params: spec.image,
      mode: spec.readOnly || spec.cdrom ? 'r' : 'w',
      type: 'phy',
      'device-type': deviceType,
      dev: formatVdev(vdev),
      removable: spec.cdrom ? '1' : '0',
      bootable: '1',
      'discard-enable': spec.discard === false ? '0' : '1',
    });
    await writeKeys(tx, id.frontendPath, {
      backend: id.backendPath,
      'backend-id': String(be),
      state: String(XenbusState.Initialising),
      'virtual-device': String(vdev.devid),
      'device-type': deviceType,
    });
  });
  return id;
}

export interface DetachOptions {
  /** How long to wait for the backend to reach Closed before removing the nodes anyway. */
  readonly timeoutMs?: number;
}

export interface DetachResult {
  /** The backend reached Closed (or removed the device itself) before the timeout. */
  readonly clean: boolean;
}

/** Unplugs a disk (libxl__initiate_device_generic_remove, then libxl__device_destroy). */
export async function detachDisk(xs: XenStore, id: DeviceIdentity, opts: DetachOptions = {}): Promise<DetachResult> {
  const statePath = `${id.backendPath}/state`;
  if ((await xs.tryRead(statePath)) === undefined && (await xs.tryRead(`${id.frontendPath}/state`)) === undefined) {
    throw new ToolstackError(`no such disk: ${id.backendPath} does not exist`);
  }
  await xs.transaction(async (tx) => {
    const state = await tx.tryRead(statePath);
    if (state === undefined) return;
    if ((await tx.tryRead(`${id.backendPath}/online`)) !== '0') await tx.write(`${id.backendPath}/online`, '0');
    if (state !== String(XenbusState.Closed)) await tx.write(statePath, String(XenbusState.Closing));
  });
  const clean = await waitUntil(xs, statePath, async () => {
    const state = await xs.tryRead(statePath);
    return state === undefined || state === String(XenbusState.Closed);
  }, opts.timeoutMs ?? 10_000);
  await removeIfPresent(xs, id.frontendPath);
  await removeIfPresent(xs, id.backendPath);
  return { clean };
}

/** The disks of a domain as the toolstack sees them: devid -> backend state. */
export async function listDisks(xs: XenStore, backendDomid = 0, backendType = 'vbd'): Promise<{ frontendDomid: number; devid: number; state?: string; params?: string }[]> {
  const base = `/local/domain/${backendDomid}/backend/${backendType}`;
  const out: { frontendDomid: number; devid: number; state?: string; params?: string }[] = [];
  const domains = await xs.directory(base).catch((e: unknown) => {
    if (e instanceof XsError && e.errno === 'ENOENT') return [] as string[];
    throw e;
  });
  for (const fe of domains) {
    for (const devid of await xs.directory(`${base}/${fe}`).catch(() => [] as string[])) {
      const keys = await readKeys(xs, `${base}/${fe}/${devid}`, ['state', 'params']);
      out.push({ frontendDomid: Number(fe), devid: Number(devid), ...keys });
    }
  }
  return out;
}
