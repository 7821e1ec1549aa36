// QEMU's xenbus rules (hw/xen/xen-bus.c, hw/block/xen-block.c) as pure predicates. The device
// machine's guards call these; tests exercise them through the machine.
import { XenbusState } from './state';

/** Whether the frontend will react to a change of the backend state (xen_device_frontend_is_active). */
export function isFrontendActive(frontend: XenbusState | null): boolean {
  return (
    frontend === XenbusState.InitWait ||
    frontend === XenbusState.Initialised ||
    frontend === XenbusState.Connected ||
    frontend === XenbusState.Closing
  );
}

/** A frontend in these states has published its ring and wants the backend to connect. */
export function frontendWantsConnection(frontend: XenbusState | null): boolean {
  return frontend === XenbusState.Initialised || frontend === XenbusState.Connected;
}

/** The frontend went away or finished closing: disconnect and close the backend. */
export function frontendIsGone(frontend: XenbusState | null): boolean {
  return frontend === XenbusState.Closed || frontend === XenbusState.Unknown;
}

/**
 * A new frontend instance is initialising while the backend is Closed and still online:
 * cycle the backend back to InitWait so it can connect (guest driver reload, kexec).
 */
export function shouldReopen(backend: XenbusState, online: boolean, frontend: XenbusState | null): boolean {
  return backend === XenbusState.Closed && online && frontend === XenbusState.Initialising;
}

/** The toolstack (or an unplug) set Closing and no frontend will answer: go to Closed. */
export function shouldCloseUnattended(observedBackend: XenbusState, frontend: XenbusState | null): boolean {
  return observedBackend === XenbusState.Closing && !isFrontendActive(frontend);
}

/** Offline and in a resting state: the device is to be destroyed (backend and frontend nodes removed). */
export function shouldDestroy(online: boolean, observedBackend: XenbusState): boolean {
  return (
    !online &&
    (observedBackend === XenbusState.Closed ||
      observedBackend === XenbusState.Initialising ||
      observedBackend === XenbusState.InitWait ||
      observedBackend === XenbusState.Unknown)
  );
}
