// Where a xenbus device lives in xenstore, and how the bus names it.

/** Domain ids at or above this are reserved by Xen (DOMID_FIRST_RESERVED). */
export const DOMID_FIRST_RESERVED = 0x7ff0;

export interface DeviceIdentity {
  readonly backendDomid: number;
  readonly frontendDomid: number;
  readonly devid: number;
  /** The backend directory type: "vbd" (default), "qdisk", "vbd3". */
  readonly backendType: string;
  /** The frontend directory type: "vbd" for block devices. */
  readonly frontendType: string;
  readonly backendPath: string;
  readonly frontendPath: string;
}

export interface DeviceIdentityInit {
  backendDomid: number;
  frontendDomid: number;
  devid: number;
  backendType?: string;
  frontendType?: string;
}

export function backendPathOf(backendDomid: number, backendType: string, frontendDomid: number, devid: number): string {
  return `/local/domain/${backendDomid}/backend/${backendType}/${frontendDomid}/${devid}`;
}

export function frontendPathOf(frontendDomid: number, frontendType: string, devid: number): string {
  return `/local/domain/${frontendDomid}/device/${frontendType}/${devid}`;
}

export function deviceIdentity(init: DeviceIdentityInit): DeviceIdentity {
  const backendType = init.backendType ?? 'vbd';
  const frontendType = init.frontendType ?? 'vbd';
  return {
    backendDomid: init.backendDomid,
    frontendDomid: init.frontendDomid,
    devid: init.devid,
    backendType,
    frontendType,
    backendPath: backendPathOf(init.backendDomid, backendType, init.frontendDomid, init.devid),
    frontendPath: frontendPathOf(init.frontendDomid, frontendType, init.devid),
  };
}

/** The bus registry key of a device: "<frontend domid>/<devid>". */
export function deviceKey(frontendDomid: number, devid: number): string {
  return `${frontendDomid}/${devid}`;
}

const CANONICAL_UINT = /^(0|[1-9][0-9]{0,9})$/;

function canonicalUint(text: string | undefined, max: number): number | null {
  if (text === undefined || !CANONICAL_UINT.test(text)) return null;
  const n = Number(text);
  return n <= max ? n : null;
}

export interface BackendWatchPath {
  readonly frontendDomid: number;
  readonly devid: number;
  /** The path below the device directory ("" for the directory itself), e.g. "state". */
  readonly subpath: string;
}

/**
 * Splits a path fired by the bus watch on `/local/domain/<be>/backend/<type>` into the device
 * it concerns. null for the watched node itself, a frontend-domain directory, or names that are
 * not canonical decimal ids (QEMU ignores those devices too: their name does not parse).
 */
export function parseBackendWatchPath(path: string, backendDomid: number, backendType: string): BackendWatchPath | null {
  const base = `/local/domain/${backendDomid}/backend/${backendType}/`;
  if (!path.startsWith(base)) return null;
  const parts = path.slice(base.length).split('/');
  if (parts.length < 2) return null;
  const frontendDomid = canonicalUint(parts[0], DOMID_FIRST_RESERVED - 1);
  const devid = canonicalUint(parts[1], 0xffff_ffff);
  if (frontendDomid === null || devid === null) return null;
  return { frontendDomid, devid, subpath: parts.slice(2).join('/') };
}
