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
  readonly machine: string;
  readonly version: number;
  readonly at: number;
  readonly event: string;
  readonly detail: string;
  readonly from: string;
  readonly to: string;
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

export type DashboardEvent =
  | { kind: 'transition'; data: TransitionView }
  | { kind: 'rates'; data: RateSample[] }
  | { kind: 'recovery'; data: RecoveryView }
  | { kind: 'devices'; data: DeviceView[] };

/** What the model reads from the running daemon. */
export interface DashboardSource {
  devices(): { key: string; machine: string; snapshot: { value: unknown; context: unknown } }[];
  counters(key: string): IoCounters | undefined;
}

const LOG_PER_DEVICE = 100;

/** The event's fields other than its type, shortened for one table cell. */
export function eventDetail(event: Record<string, unknown>): string {
  const { type: _type, ...rest } = event;
  if ('keys' in rest && rest.keys && typeof rest.keys === 'object') {
    const keys = rest.keys as Record<string, string>;
    rest.keys = Object.keys(keys).length > 6 ? `${Object.keys(keys).length} keys` : keys;
  }
  const text = JSON.stringify(rest);
  return text === '{}' ? '' : text.length > 160 ? `${text.slice(0, 157)}...` : text;
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
    return this.source.devices().map(({ key, machine, snapshot }) => ({
      key,
      machine,
      value: snapshot.value,
      stateIds: activeStateIds(machine, snapshot.value),
      summary: { ...summarize(snapshot.context), phase: machine === 'vbd' ? devicePhase(snapshot.value as never) : undefined },
    }));
  }

  onTransition(t: EngineTransition): void {
    const device = t.device ?? t.machine;
    const view: TransitionView = {
      device,
      machine: t.machine,
      version: t.version,
      at: t.at,
      event: t.event.type,
      detail: eventDetail(t.event),
      from: flatValue(t.from),
      to: flatValue(t.to),
      stateIds: activeStateIds(t.machine, t.to),
    };
    const list = this.log.get(device) ?? [];
    list.push(view);
    if (list.length > LOG_PER_DEVICE) list.splice(0, list.length - LOG_PER_DEVICE);
    this.log.set(device, list);
    this.events$.next({ kind: 'transition', data: view });
  }

  onRecovery(device: string, detail: string): void {
    const r = { at: this.clock(), device, detail };
    this.recoveries.push(r);
    if (this.recoveries.length > 200) this.recoveries.shift();
    this.events$.next({ kind: 'recovery', data: r });
  }

  /** Samples every device's counters into rates; call once a second. */
  sample(): RateSample[] {
    const now = this.clock();
    const out: RateSample[] = [];
    for (const { key } of this.source.devices()) {
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
    return out;
  }

  devicesChanged(): void {
    this.events$.next({ kind: 'devices', data: this.devices() });
  }

  state() {
    return {
      machines: this.machineSvgs,
      devices: this.devices(),
      transitions: Object.fromEntries(this.log),
      rates: Object.fromEntries(this.rates),
      recoveries: this.recoveries,
    };
  }
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
