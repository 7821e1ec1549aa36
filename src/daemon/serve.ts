// `xenblkd run` as a whole: the daemon plus what an operator sees of it (dashboard, /metrics,
// control socket, systemd readiness).
import * as path from 'node:path';
import { liveMemory } from './live-memory';
import { blockDeviceMachine, busMachine, describeDevice, frontendMachine, type DeviceIdentity } from '../machines';
import { DashboardModel, type StoreView } from '../dashboard/model';
import { DashboardServer } from '../dashboard/server';
import { type ControlHandler, ControlServer } from './control';
import { type Daemon, DaemonError, type DaemonOptions, startDaemon } from './daemon';
import { DaemonMetrics } from './metrics';
import { sdNotify } from './sd-notify';
import type { EngineTransition } from './engine';
import { RecordingSwitch } from '../replay/tap';
import { handleRecordRequest, openDaemonRecorder } from '../replay/control';
import type { DataplaneStats } from '../effects/dataplane-port';

/** Errors of a state folder that refuses a new file: the daemon serves on without its control socket. */
const FOLDER_REFUSES = new Set(['EROFS', 'ENOSPC', 'EDQUOT', 'EACCES', 'EPERM', 'EIO']);
const CONTROL_RETRY_MS = 5000;

export interface ServeOptions extends DaemonOptions {
  /** Dashboard and /metrics; undefined: not served. */
  readonly http?: { host: string; port: number };
  /** Record a session into this file from the start (src/replay); the `record` op turns it on and off. */
  readonly record?: string;
}

export interface Serving {
  readonly daemon: Daemon;
  readonly dashboardUrl?: string;
  readonly model: DashboardModel;
  stop(): Promise<void>;
}

export interface DeviceListing {
  key: string;
  phase: string;
  backendState: number;
  frontendState: number | null;
  online: boolean;
  image?: string;
  /** The storage has not answered since (ms since the epoch): a lost NBD server, for one. */
  storageStalledSince?: number;
  lastError?: string;
  /** The dataplane's counters while it serves the device. */
  stats?: DeviceCounters;
}

export interface DeviceCounters {
  rdReq: number;
  wrReq: number;
  fReq: number;
  dsReq: number;
  rdSect: number;
  wrSect: number;
  errors: number;
  /** Publication journal faults (DataplaneStats.journalFailures). */
  journalFailures: number;
  inFlight: number;
}

function counters(s: DataplaneStats | undefined): DeviceCounters | undefined {
  return s && { rdReq: s.rdReq, wrReq: s.wrReq, fReq: s.fReq, dsReq: s.dsReq, rdSect: s.rdSect, wrSect: s.wrSect, errors: s.errors, journalFailures: s.journalFailures, inFlight: s.inFlight };
}

/** The phase `xenblkd ls` shows for a new device waiting for the event store. */
export const WAITING_PHASE = 'waiting-for-store';

function storeView(daemon: Daemon | undefined): StoreView {
  const health = daemon?.store.health;
  const fault = health?.fault;
  return {
    writable: !fault,
    reason: fault?.reason,
    code: fault?.code,
    message: fault?.message,
    since: fault?.since,
    failedWrites: health?.failedWrites ?? 0,
    waiting: daemon ? daemon.engine.waitingDevices().map((w) => w.key) : [],
  };
}

export async function serve(opts: ServeOptions): Promise<Serving> {
  let daemon!: Daemon;
  const snapshotOf = (key: string) => daemon.engine.deviceActor(key)?.getSnapshot() as { value: unknown; context: { identity: DeviceIdentity; config?: { path?: string } | null } & Record<string, unknown> } | undefined;
  /** Since when the device's storage has not answered (ms since the epoch), or undefined. */
  const stalledSince = (key: string): number | undefined => {
    const snap = snapshotOf(key);
    return (snap && daemon.images.openedImage(snap.context.identity.backendPath)?.stalledSince) ?? undefined;
  };
  const statsOf = (key: string) => {
    const snap = snapshotOf(key);
    return snap ? daemon.effects.dataplaneOf(snap.context.identity.backendPath)?.stats : undefined;
  };
  const model = new DashboardModel(
    {
      devices: () =>
        daemon
          ? [...daemon.engine.deviceActors()].map(([key, a]) => ({ key, machine: 'vbd', snapshot: a.getSnapshot() as { value: unknown; context: unknown } }))
          : [],
      device: (key) => {
        const a = daemon?.engine.deviceActor(key);
        return a && { key, machine: 'vbd', snapshot: a.getSnapshot() as { value: unknown; context: unknown } };
      },
      counters: (key) => statsOf(key),
      store: () => storeView(daemon),
    },
    { vbd: blockDeviceMachine, bus: busMachine, blkfront: frontendMachine },
  );
  const metrics = new DaemonMetrics({
    devices: () =>
      daemon
        ? [...daemon.engine.deviceActors()].map(([key, a]) => {
            const snap = a.getSnapshot() as { value: unknown; context: never };
            const d = describeDevice(snap as never) as { phase: string; backendState: number; frontendState: number | null };
            const since = stalledSince(key);
            return { key, backendState: d.backendState, frontendState: d.frontendState, connected: d.phase === 'attached.connected', stats: statsOf(key), storageStalledSeconds: since === undefined ? 0 : (Date.now() - since) / 1000 };
          })
        : [],
    storeBytes: async () => (daemon ? daemon.store.sizeBytes() : 0),
    store: () => {
      const v = storeView(daemon);
      return { writable: v.writable, failedWrites: v.failedWrites, waitingDevices: v.waiting.length };
    },
  });
  const onTransition = (t: EngineTransition) => {
    opts.onTransition?.(t);
    metrics.onTransition(t);
    model.onTransition(t);
    if (t.machine === 'bus') model.devicesChanged();
  };
  const recording = new RecordingSwitch('daemon');
  if (opts.record !== undefined) recording.attach(openDaemonRecorder(opts.record, opts.logger));
  // The dashboard listens first: a port in use is the operator's mistake, found before any device is touched.
  let dashboard: DashboardServer | undefined;
  let dashboardUrl: string | undefined;
  if (opts.http) {
    dashboard = new DashboardServer({ model, logger: opts.logger, metrics: () => metrics.render() });
    try {
      dashboardUrl = await dashboard.listen(opts.http.host, opts.http.port);
    } catch (err) {
      await dashboard.close().catch(() => undefined);
      const code = (err as NodeJS.ErrnoException).code;
      const why = code === 'EADDRINUSE' ? 'the port is in use' : code === 'EADDRNOTAVAIL' ? 'no such local address' : code === 'EACCES' ? 'permission denied' : (err as Error).message;
      throw new DaemonError(`cannot serve the dashboard on ${opts.http.host}:${opts.http.port}: ${why}`);
    }
  }
  try {
    daemon = await startDaemon({
      ...opts,
      recording,
      onTransition,
      onRecovered: (key) => {
        opts.onRecovered?.(key);
        metrics.onRecovered(key);
        model.onRecovery(key, 'recovered from the event store');
      },
    });
  } catch (err) {
    recording.detach()?.close();
    await dashboard?.close().catch(() => undefined);
    throw err;
  }
  const listing = (): DeviceListing[] =>
    [...daemon.engine.deviceActors()].map(([key, a]): DeviceListing => {
      const snap = a.getSnapshot() as { value: unknown; context: { config?: { path?: string } | null } };
      const d = describeDevice(snap as never) as { phase: string; backendState: number; frontendState: number | null; online: boolean; lastError: { source: string; message: string } | null };
      return {
        key,
        phase: d.phase,
        backendState: d.backendState,
        frontendState: d.frontendState,
        online: d.online,
        image: snap.context.config?.path,
        storageStalledSince: stalledSince(key),
        lastError: d.lastError ? `${d.lastError.source}: ${d.lastError.message}` : undefined,
        stats: counters(statsOf(key)),
      };
    }).concat(
      // New devices whose first event waits for the store: not started, shown as waiting.
      daemon.engine.waitingDevices().map((w): DeviceListing => ({
        key: w.key,
        phase: WAITING_PHASE,
        backendState: 0,
        frontendState: null,
        online: false,
        lastError: w.fault ? `event store: ${w.fault.message}` : undefined,
      })),
    );
  const socketPath = path.join(opts.stateDir, 'control.sock');
  const onControl: ControlHandler = async (req) => {
    switch (req.op) {
      case 'devices':
        return listing();
      case 'store':
        return storeView(daemon);
      case 'ping':
        return { pid: process.pid, dashboard: dashboardUrl };
      case 'memory':
        return liveMemory();
      case 'record':
        return handleRecordRequest(req, recording, daemon.engine, opts.logger);
      default:
        throw new Error(`unknown op '${req.op}'`);
    }
  };
  let control: ControlServer | null = null;
  let controlRetry: NodeJS.Timeout | undefined;
  try {
    control = await ControlServer.listen(socketPath, onControl, opts.logger);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code ?? (err as Error).message;
    if (!FOLDER_REFUSES.has(code)) {
      await dashboard?.close().catch(() => undefined);
      await daemon.stop().catch(() => undefined);
      throw new DaemonError(`cannot listen on the control socket ${socketPath}: ${code}`);
    }
    // The state folder refuses a new socket (read-only, full): the devices are served all the
    // same; only the local commands cannot reach this daemon until the folder takes it.
    opts.logger.error(`cannot listen on the control socket ${socketPath} (${code}): serving without it (xenblkd ls and record cannot reach this daemon); retrying every ${CONTROL_RETRY_MS / 1000} s`);
    controlRetry = setInterval(() => {
      ControlServer.listen(socketPath, onControl, opts.logger).then(
        (c) => {
          control = c;
          clearInterval(controlRetry);
          opts.logger.info(`listening on the control socket ${socketPath} again`);
        },
        // Still refused: said once above, not at every try.
        () => undefined,
      );
    }, CONTROL_RETRY_MS);
  }
  const devices = daemon.engine.deviceActors().size;
  sdNotify(`READY=1\nSTATUS=serving ${devices} device(s)${dashboardUrl ? `; dashboard ${dashboardUrl}` : ''}`);
  return {
    daemon,
    dashboardUrl,
    model,
    async stop() {
      sdNotify('STOPPING=1\nSTATUS=stopping: quiescing dataplanes');
      await dashboard?.close();
      clearInterval(controlRetry);
      await control?.close();
      await daemon.stop();
      recording.detach()?.close();
    },
  };
}
