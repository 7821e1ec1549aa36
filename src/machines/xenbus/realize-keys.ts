// The keys every xenbus backend writes when it realizes a device (xen_device_realize), apart
// from `state`, which the device machine writes as InitWait afterwards.
import type { DeviceIdentity } from './identity';

export interface XenbusRealizeKeys {
  /** Written into the backend directory. */
  readonly backend: Readonly<Record<string, string>>;
  /**
   * Written into the frontend directory only when it does not exist yet (a toolstack such as
   * libxl creates it itself; then it is left alone).
   */
  readonly frontendIfMissing: Readonly<Record<string, string>>;
}

export function xenbusRealizeKeys(identity: DeviceIdentity): XenbusRealizeKeys {
  return {
    backend: {
      frontend: identity.frontendPath,
      'frontend-id': String(identity.frontendDomid),
      'hotplug-status': 'connected',
      online: '1',
    },
    frontendIfMissing: {
      backend: identity.backendPath,
      'backend-id': String(identity.backendDomid),
      state: '1',
    },
  };
}

/** Backend keys that belong to the xenbus device itself, not device options (xen_bus_backend_create). */
export const XENBUS_DEVICE_KEYS: readonly string[] = ['state', 'online', 'frontend', 'frontend-id', 'hotplug-status'];

/** The toolstack's device options: the backend directory minus the generic xenbus keys. */
export function deviceOptions(backendDir: Readonly<Record<string, string>>): Record<string, string> {
  const options: Record<string, string> = {};
  for (const [key, value] of Object.entries(backendDir)) {
    if (!XENBUS_DEVICE_KEYS.includes(key)) options[key] = value;
  }
  return options;
}
