// Everything a xenbus device machine can receive: xenstore observations (values already read and
// parsed by the effects layer), effect outcomes, and requests. All plain serializable objects.
import type { XenstoreRecord } from '../parsed';
import { observeOnline, observeXenbusState, type XenbusState } from './state';

/** The backend's `state` and `online` as read after a watch fired (or on resync). */
export interface BackendChanged {
  readonly type: 'backend.changed';
  readonly state: XenbusState;
  readonly online: boolean;
}

/**
 * The frontend's `state` as read after a watch fired, with the frontend keys the device needs
 * to connect (for a block device: connectKeyNames()), read at the same time.
 */
export interface FrontendChanged {
  readonly type: 'frontend.changed';
  readonly state: XenbusState;
  readonly keys: XenstoreRecord;
}

/** The event for a backend watch firing, from the raw `state` and `online` texts (absent: undefined). */
export function backendChanged(stateText: string | undefined, onlineText: string | undefined): BackendChanged {
  return { type: 'backend.changed', state: observeXenbusState(stateText), online: observeOnline(onlineText) };
}

/** The event for a frontend watch firing, from the raw `state` text and the keys read with it. */
export function frontendChanged(stateText: string | undefined, keys: XenstoreRecord): FrontendChanged {
  return { type: 'frontend.changed', state: observeXenbusState(stateText), keys };
}

export type XenbusDeviceEvent<TRealized> =
  | BackendChanged
  | FrontendChanged
  | { readonly type: 'realize.done'; readonly realized: TRealized }
  | { readonly type: 'realize.failed'; readonly message: string }
  | { readonly type: 'connection.ready' }
  | { readonly type: 'connection.failed'; readonly message: string }
  | {
      readonly type: 'device.update';
      /** Backend keys to (re)write, with `state` rewritten alongside (online resize). */
      readonly keys: XenstoreRecord;
      /** New facts about the device replacing the realized ones, if any. */
      readonly realized?: TRealized;
    }
  | { readonly type: 'update.done' }
  | { readonly type: 'update.failed'; readonly message: string }
  | { readonly type: 'device.unplug' }
  | { readonly type: 'unplug.done' }
  | { readonly type: 'unplug.failed'; readonly message: string }
  | { readonly type: 'destroy.done' }
  | { readonly type: 'destroy.failed'; readonly message: string }
  | { readonly type: 'xenstore.failed'; readonly operation: string; readonly message: string };

export type XenbusDeviceEventType = XenbusDeviceEvent<unknown>['type'];

/** Where the last error of a device came from. */
export type DeviceErrorSource = 'config' | 'realize' | 'connect' | 'dataplane' | 'xenstore' | 'unplug' | 'update' | 'destroy';

export interface DeviceError {
  readonly source: DeviceErrorSource;
  readonly message: string;
}
