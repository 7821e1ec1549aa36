// A flat view of a device machine's snapshot for dashboards and `xenblkd ls`.
import type { StateValue } from 'xstate';
import type { DeviceError } from './device-events';
import type { XenbusDeviceContext } from './device-machine';
import type { XenbusState } from './state';

/** The lifecycle state as a dotted path: "initWait", "attached.connected", "destroyed", ... */
export function devicePhase(value: StateValue): string {
  if (typeof value === 'string') return value;
  const active = (value as Record<string, StateValue>)['active'];
  if (active === undefined || typeof active === 'string') return String(active ?? '');
  const lifecycle = (active as Record<string, StateValue>)['lifecycle'];
  return flatten(lifecycle);
}

function flatten(value: StateValue | undefined): string {
  if (value === undefined) return '';
  if (typeof value === 'string') return value;
  const [key, child] = Object.entries(value)[0] ?? [];
  return key === undefined ? '' : `${key}.${flatten(child)}`.replace(/\.$/, '');
}

export interface DeviceSummary<TConnection> {
  readonly phase: string;
  readonly backendState: XenbusState;
  readonly frontendState: XenbusState | null;
  readonly online: boolean;
  readonly connection: TConnection | null;
  readonly lastError: DeviceError | null;
}

export function describeDevice<TConfig, TRealized, TConnection>(snapshot: {
  value: StateValue;
  context: XenbusDeviceContext<TConfig, TRealized, TConnection>;
}): DeviceSummary<TConnection> {
  const { context } = snapshot;
  return {
    phase: devicePhase(snapshot.value),
    backendState: context.backendState,
    frontendState: context.frontendState,
    online: context.online,
    connection: context.connection,
    lastError: context.lastError,
  };
}
