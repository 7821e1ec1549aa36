// What the dashboard shows, kept up to date from the engine: every device's statechart position,
// its recent transitions with the event that caused each, its I/O rates, and recoveries.
import { Subject } from 'rxjs';
import type { AnyStateMachine } from 'xstate';
import { activeStateIds, machineGraph, toSvg } from '../viz';
import { devicePhase } from '../machines';
import type { EngineTransition } from '../daemon/engine';

export interface IoCounters {
  readonly rdReq: number;
  readonly wrReq: number;
  readonly rdSect: number;
  readonly wrSect: number;
  readonly errors: number;
}

export interface DeviceView {
  readonly key: string;
  readonly machine: string;
  readonly value: unknown;
  readonly stateIds: string[];
  readonly summary: Record<string, unknown>;
}

export interface TransitionView {
  readonly device: string;
  /** The device as it is after the transition (absent for the bus). */
  readonly view?: DeviceView;
  readonly machine: string;
  readonly version: number;
  readonly at: number;
  readonly event: string;
  readonly detail: string;
  readonly from: string;
  readonly to: string;
  /** The device's lifecycle phase after the transition ("attached.connected"); the bus's state. */
  readonly phase: string;
  readonly stateIds: string[];
}

export interface RateSample {
  readonly device: string;
  readonly at: number;
  readonly iops: number;
  readonly readMBps: number;
  readonly writeMBps: number;
  readonly errors: number;
}

export interface RecoveryView {
  readonly at: number;
  readonly device: string;
  readonly detail: string;
}

/** Whether the event store takes writes, and the new devices waiting for it. */
export interface StoreView {
  readonly writable: boolean;
  readonly reason?: string;
  readonly code?: string;
  readonly message?: string;
  readonly since?: number;
  readonly failedWrites: number;
  readonly waiting: string[];
}

export type DashboardEvent =
  | { kind: 'store'; data: StoreView }
  | { kind: 'transition'; data: TransitionView }
  | { kind: 'rates'; data: RateSample[] }
  | { kind: 'recovery'; data: RecoveryView }
  | { kind: 'devices'; data: DeviceView[] };

/** What the model reads from the running daemon. */
export interface DashboardSource {
  devices(): { key: string; machine: string; snapshot: { value: unknown; context: unknown } }[];
  /** One device, found without listing them all (called at every transition). */
  device?(key: string): { key: string; machine: string; snapshot: { value: unknown; context: unknown } } | undefined;
  counters(key: string): IoCounters | undefined;
  /** The event store's health (absent: always writable). */
  store?(): StoreView;
}

const LOG_PER_DEVICE = 100;

const XENBUS_STATES = ['Unknown', 'Initialising', 'InitWait', 'Initialised', 'Connected', 'Closing', 'Closed', 'Reconfiguring', 'Reconfigured'];

/**
 * The event's fields other than its type, for one table cell: what xenstore showed ("state=4
 * Connected online=1 ring-ref=8 ...") for the watch observations, the fields of effect outcomes.
 */
export function eventDetail(event: Record<string, unknown>): string {
  const parts: string[] = [];
  const add = (k: string, v: unknown) => {
    if (k === 'state' && typeof v === 'number') parts.push(`state=${v} ${XENBUS_STATES[v] ?? ''}`.trimEnd());
    else if (typeof v === 'boolean') parts.push(`${k}=${v ? 1 : 0}`);
    else if (v === null || v === undefined) parts.push(`${k}=-`);
    else if (typeof v === 'object') parts.push(`${k}=${JSON.stringify(v)}`);
    else parts.push(`${k}=${String(v)}`);
  };
  for (const [k, v] of Object.entries(event)) {
    if (k === 'type') continue;
    if (k === 'keys' && v && typeof v === 'object') {
      const entries = Object.entries(v as Record<string, unknown>);
      entries.slice(0, 8).forEach(([kk, vv]) => add(kk, vv));
      if (entries.length > 8) parts.push(`+${entries.length - 8} keys`);
    } else {
      add(k, v);
    }
  }
  const text = parts.join(' ');
  return text.length > 200 ? `${text.slice(0, 197)}...` : text;
}

function flatValue(value: unknown): string {
  return typeof value === 'string' ? value : JSON.stringify(value);
}

export class DashboardModel {
  readonly events$ = new Subject<DashboardEvent>();
  private svgs: Record<string, string> | undefined;
  private readonly log = new Map<string, TransitionView[]>();
  private readonly recoveries: RecoveryView[] = [];
  private readonly lastCounters = new Map<string, { at: number; c: IoCounters }>();
  private readonly rates = new Map<string, RateSample[]>();
  /** The device keys the pages were told about (or, with no page open, noted for later). */
  private readonly announcedKeys = new Set<string>();
  private lastStore = '';

  constructor(
    private readonly source: DashboardSource,
    private readonly machines: Record<string, AnyStateMachine>,
    private readonly clock: () => number = Date.now,
  ) {}

  /** Laid out on first use: the layout costs seconds of CPU, a daemon's start must not pay it. */
  get machineSvgs(): Record<string, string> {
    this.svgs ??= Object.fromEntries(Object.entries(this.machines).map(([name, m]) => [name, toSvg(machineGraph(m))]));
    return this.svgs;
  }

  devices(): DeviceView[] {
    return this.source.devices().map(({ key, machine, snapshot }) => viewOf(key, machine, snapshot));
  }

  onTransition(t: EngineTransition): void {
    const device = t.device ?? t.machine;
    const current = t.device === undefined ? undefined : this.findDevice(t.device);
    const view: TransitionView = {
      device,
      view: current && viewOf(current.key, current.machine, current.snapshot),
      machine: t.machine,
      version: t.version,
      at: t.at,
      event: t.event.type,
      detail: eventDetail(t.event),
      from: flatValue(t.from),
      to: flatValue(t.to),
      phase: t.machine === 'vbd' ? devicePhase(t.to as never) : flatValue(t.to),
      stateIds: activeStateIds(t.machine, t.to),
    };
    const list = this.log.get(device) ?? [];
    list.push(view);
    if (list.length > LOG_PER_DEVICE) list.splice(0, list.length - LOG_PER_DEVICE);
    this.log.set(device, list);
    // A device's first transition: the pages learn of it (the bus adds devices asynchronously).
    if (t.device !== undefined && !this.announcedKeys.has(t.device)) this.devicesChanged(t.device);
    this.events$.next({ kind: 'transition', data: view });
  }

  onRecovery(device: string, detail: string): void {
    const r = { at: this.clock(), device, detail };
    this.recoveries.push(r);
    if (this.recoveries.length > 200) this.recoveries.shift();
    this.events$.next({ kind: 'recovery', data: r });
  }

  /** Samples every device's counters into rates; call once a second. Also notices removed devices. */
  sample(): RateSample[] {
    const now = this.clock();
    const out: RateSample[] = [];
    const devices = this.source.devices();
    if (devices.length !== this.announcedKeys.size || devices.some((d) => !this.announcedKeys.has(d.key))) this.devicesChanged();
    const present = new Set(devices.map((d) => d.key));
    for (const key of this.lastCounters.keys()) if (!present.has(key)) this.lastCounters.delete(key);
    for (const { key } of devices) {
      const c = this.source.counters(key);
      if (!c) continue;
      const last = this.lastCounters.get(key);
      this.lastCounters.set(key, { at: now, c });
      if (!last || now <= last.at) continue;
      const s = (now - last.at) / 1000;
      const sample: RateSample = {
        device: key,
        at: now,
        iops: Math.max(0, c.rdReq + c.wrReq - last.c.rdReq - last.c.wrReq) / s,
        readMBps: (Math.max(0, c.rdSect - last.c.rdSect) * 512) / s / 1e6,
        writeMBps: (Math.max(0, c.wrSect - last.c.wrSect) * 512) / s / 1e6,
        errors: c.errors,
      };
      const list = this.rates.get(key) ?? [];
      list.push(sample);
      if (list.length > 120) list.shift();
      this.rates.set(key, list);
      out.push(sample);
    }
    if (out.length) this.events$.next({ kind: 'rates', data: out });
    this.sampleStore();
    return out;
  }

  /** Tells the pages when the store's health or its waiting devices changed (not the failure count alone). */
  private sampleStore(): void {
    const view = this.source.store?.();
    if (!view) return;
    const text = JSON.stringify({ ...view, failedWrites: 0 });
    if (text === this.lastStore) return;
    this.lastStore = text;
    this.events$.next({ kind: 'store', data: view });
  }

  /**
   * Tells the pages the device list changed. With no page listening only the key is noted: a
   * thousand devices connecting must not list them all a thousand times (a page that connects
   * later gets the whole state).
   */
  devicesChanged(key?: string): void {
    if (!this.events$.observed) {
      if (key !== undefined) this.announcedKeys.add(key);
      return;
    }
    const devices = this.devices();
    this.announcedKeys.clear();
    for (const d of devices) this.announcedKeys.add(d.key);
    this.events$.next({ kind: 'devices', data: devices });
  }

  private findDevice(key: string) {
    return this.source.device ? this.source.device(key) : this.source.devices().find((d) => d.key === key);
  }

  state() {
    return {
      machines: this.machineSvgs,
      devices: this.devices(),
      transitions: Object.fromEntries(this.log),
      rates: Object.fromEntries(this.rates),
      recoveries: this.recoveries,
      store: this.source.store?.(),
    };
  }
}

function viewOf(key: string, machine: string, snapshot: { value: unknown; context: unknown }): DeviceView {
  return {
    key,
    machine,
    value: snapshot.value,
    stateIds: activeStateIds(machine, snapshot.value),
    summary: { ...summarize(snapshot.context), phase: machine === 'vbd' ? devicePhase(snapshot.value as never) : undefined },
  };
}

function summarize(context: unknown): Record<string, unknown> {
  if (!context || typeof context !== 'object') return {};
  const c = context as Record<string, unknown>;
  const out: Record<string, unknown> = {};
  for (const k of ['backendState', 'frontendState', 'online', 'lastError']) if (k in c) out[k] = c[k];
  const connection = c.connection as { ringPageOrder?: number; protocol?: string; eventChannel?: number } | null | undefined;
  if (connection) out.connection = { ringPageOrder: connection.ringPageOrder, protocol: connection.protocol, eventChannel: connection.eventChannel };
  const config = c.config as { path?: string; readOnly?: boolean } | null | undefined;
  if (config) out.image = config.path;
  return out;
}
