// `xenblkd demo`: the simulated Xen host with guests running verifying workloads, the daemon in a
// child process that gets SIGKILLed and restarted mid-I/O, a live progress view, and a summary.
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { silentLogger, type Logger } from '../log';
import { SimHost } from '../sim/host';
import { blockQueueFactory, isBlockGuestQueue } from '../sim/frontend/block-queue-adapter';
import type { GuestBlockQueue } from '../sim/guest/block-queue';
import { runWorkload, type WorkloadReport } from '../sim/guest/workload';
import type { WorkloadSpecInput } from '../sim/guest/workload-spec';
import { attachDisk } from '../toolstack/disk';
import { DaemonProcess } from './daemon-process';
import { demoStorage, type DemoStorage, type DemoStorageKind } from './storage';

export interface DemoOptions {
  readonly guests: number;
  readonly seconds: number;
  /** SIGKILL and restart the daemon every this many seconds; undefined: once, mid-run; 0: never. */
  readonly killEvery?: number;
  readonly imageMiB: number;
  /** Where the disks live (default: raw files). */
  readonly storage?: DemoStorageKind;
  /** Keep serving (and the dashboard up) after the workloads end, until SIGINT/SIGTERM. */
  readonly stay: boolean;
  readonly http: string;
  readonly dir?: string;
  readonly keep: boolean;
  readonly out: (line: string) => void;
  /** Redraw progress in place (a terminal). */
  readonly live: boolean;
  readonly workload?: WorkloadSpecInput;
  readonly logger?: Logger;
  readonly untilStopped?: () => Promise<unknown>;
  /** Ends the run early (Ctrl-C): the workloads stop, the summary covers what ran. */
  readonly signal?: AbortSignal;
  /** Gets the summary as soon as the workloads end (before --stay keeps the dashboard up). */
  readonly onSummary?: (summary: DemoSummary) => void;
}

export interface DemoDeviceSummary {
  readonly device: string;
  readonly image: string;
  readonly requests: number;
  readonly bytes: number;
  readonly errors: number;
  readonly mismatches: number;
  readonly lost: number;
  readonly duplicated: number;
  readonly recoveries: number;
  readonly longestStallMs: number;
  /** Per daemon kill: from the kill, and from the new process's start, to the first new completion. */
  readonly recoveryPausesMs: readonly { fromKill: number; fromStart: number }[];
  readonly iops: number;
  readonly mbPerSec: number;
}

export interface DemoSummary {
  readonly ok: boolean;
  readonly seconds: number;
  readonly kills: number;
  readonly dashboard: string;
  readonly devices: readonly DemoDeviceSummary[];
}

interface DeviceRun {
  readonly key: string;
  readonly image: string;
  queue?: GuestBlockQueue;
  run?: Promise<WorkloadReport>;
  report?: WorkloadReport;
  readonly abort: AbortController;
  readonly pauses: { fromKill: number; fromStart: number }[];
  /** The counters at the previous progress line, for the current rates. */
  seen?: { at: number; ops: number; bytes: number };
}

export const DEMO_WORKLOAD: WorkloadSpecInput = {
  pattern: 'random',
  mix: { read: 5, write: 4, flush: 0.5, barrier: 0.2, discard: 0.3 },
  sizes: [512, 4096, 4096, 16384, 65536, 262144, 1048576],
  queueDepth: 32,
  offsetInPage: true,
  verify: true,
  stallTimeoutMs: 30_000,
  progressEveryMs: 500,
};

export async function runDemo(opts: DemoOptions): Promise<DemoSummary> {
  const dir = opts.dir ?? fs.mkdtempSync(path.join(os.tmpdir(), 'xenblkd-demo-'));
  fs.mkdirSync(dir, { recursive: true });
  const out = opts.out;
  const logger = opts.logger ?? silentLogger;
  const runs = new Map<string, DeviceRun>();
  const xenstoreSocket = path.join(dir, 'xenstored.sock');
  const host = await SimHost.start({
    stateDir: path.join(dir, 'sim'),
    xenstoreSocket,
    guests: opts.guests,
    memoryBytes: 256 << 20,
    queueFactory: blockQueueFactory({ indirectSegments: 256 }),
    logger,
    onDisk: (domid, devid, queue) => {
      const run = runs.get(`${domid}/${devid}`);
      if (!run || !isBlockGuestQueue(queue) || run.run) return;
      run.queue = queue.blockQueue;
      run.run = runWorkload(queue.blockQueue, { ...DEMO_WORKLOAD, ...opts.workload, durationMs: opts.seconds * 1000, ops: 0, seed: domid * 7919 + devid }, {
        signal: run.abort.signal,
        onProgress: (r) => {
          run.report = r;
        },
      }).then((r) => (run.report = r));
    },
  });
  const daemon = new DaemonProcess({
    xenstoreSocket,
    hvSocket: host.hvSocket,
    stateDir: path.join(dir, 'daemon'),
    logFile: path.join(dir, 'daemon.log'),
    http: opts.http,
  });
  let kills = 0;
  let ticker: NodeJS.Timeout | undefined;
  let storage: DemoStorage | undefined;
  try {
    out(`xenblkd demo: simulated Xen host with ${opts.guests} guest(s) in ${dir}`);
    storage = await demoStorage(opts.storage ?? 'file', dir, opts.imageMiB);
    out(`disks: ${storage.description}`);
    await daemon.start();
    const dashboard = `http://${opts.http}/`;
    out(`daemon running (pid ${daemon.pid}); dashboard: ${dashboard}`);
    const toolstack = await host.toolstack();
    for (let domid = 1; domid <= opts.guests; domid++) {
      const image = await storage.create(domid);
      const id = await attachDisk(toolstack, { frontendDomid: domid, vdev: 'xvda', image });
      runs.set(`${domid}/${id.devid}`, { key: `${domid}/${id.devid}`, image, abort: new AbortController(), pauses: [] });
    }
    await waitFor(() => [...runs.values()].every((r) => r.run !== undefined), 20_000, 'the guests did not connect their disks');
    out(`${runs.size} disk(s) connected; running verifying workloads for ${opts.seconds}s`);

    const t0 = Date.now();
    const killEvery = opts.killEvery ?? opts.seconds / 2;
    let nextKill = killEvery > 0 ? t0 + killEvery * 1000 : Infinity;
    let lines = 0;
    let restarting = false;
    const draw = (final = false) => {
      const rows = [...runs.values()].map((r) => progressLine(r, host, final));
      const status = `t=${((Date.now() - t0) / 1000).toFixed(0)}s/${opts.seconds}s  daemon ${restarting ? 'restarting' : `pid ${daemon.pid ?? '-'}`}  kills ${kills}`;
      if (opts.live) {
        if (lines) process.stdout.write(`\x1b[${lines}A`);
        for (const l of [status, ...rows]) process.stdout.write(`\x1b[2K${l}\n`);
        lines = rows.length + 1;
      } else if (final || Math.floor((Date.now() - t0) / 5000) !== Math.floor((Date.now() - t0 - 1000) / 5000)) {
        out(status);
        rows.forEach((l) => out(l));
      }
    };
    ticker = setInterval(() => draw(), 1000);
    while (Date.now() - t0 < opts.seconds * 1000 && !opts.signal?.aborted) {
      if (Date.now() >= nextKill) {
        kills += 1;
        restarting = true;
        await killAndRestart(daemon, runs, (l) => {
          if (opts.live && lines) {
            process.stdout.write(`\x1b[${lines}A\x1b[J`);
            lines = 0;
          }
          out(l);
        });
        restarting = false;
        nextKill = Date.now() + killEvery * 1000;
      }
      await sleep(100);
    }
    for (const r of runs.values()) r.abort.abort();
    await Promise.all([...runs.values()].map((r) => r.run));
    clearInterval(ticker);
    draw(true);
    const summary: DemoSummary = {
      ok: [...runs.values()].every((r) => r.report && r.report.errors === 0 && r.report.mismatches === 0 && r.report.lost === 0 && r.report.duplicated === 0),
      seconds: opts.seconds,
      kills,
      dashboard,
      devices: [...runs.values()].map((r) => summarize(r)),
    };
    if (opts.signal?.aborted) out('stopped early: the summary covers what ran');
    opts.onSummary?.(summary);
    if (opts.stay && !opts.signal?.aborted) {
      out(`workloads done; the daemon and the dashboard stay up at ${dashboard} (Ctrl-C to stop)`);
      await (opts.untilStopped?.() ?? new Promise(() => undefined));
    }
    return summary;
  } finally {
    if (ticker) clearInterval(ticker);
    for (const r of runs.values()) r.abort.abort();
    await daemon.stop().catch(() => undefined);
    await host.close().catch(() => undefined);
    await storage?.close().catch((e: Error) => out(`stopping the demo's storage failed: ${e.message}`));
    if (!opts.keep && !opts.dir) fs.rmSync(dir, { recursive: true, force: true });
  }
}

async function killAndRestart(daemon: DaemonProcess, runs: Map<string, DeviceRun>, out: (l: string) => void): Promise<void> {
  const killedAt = performance.now();
  const oldPid = daemon.pid;
  await daemon.kill();
  out(`>>> SIGKILL daemon (pid ${oldPid}) in mid-I/O; the guests keep running; restarting it`);
  // Responses the dead daemon published just before the kill may still be on their way to the
  // guests: let them land, so that they do not pass for the new daemon's first completions.
  await sleep(50);
  const before = new Map([...runs].map(([k, r]) => [k, r.queue?.responses ?? 0]));
  const restart = daemon.start();
  const spawnedAt = daemon.startedAt;
  const waits = [...runs.values()].map(async (r) => {
    const base = before.get(r.key) ?? 0;
    const deadline = Date.now() + 30_000;
    while ((r.queue?.responses ?? 0) <= base && Date.now() < deadline) await new Promise((res) => setImmediate(res));
    const now = performance.now();
    if ((r.queue?.responses ?? 0) > base) r.pauses.push({ fromKill: now - killedAt, fromStart: now - spawnedAt });
  });
  await restart;
  out(`>>> daemon restarted (pid ${daemon.pid}); it recovered its devices from the event store`);
  await Promise.all(waits);
  const pauses = [...runs.values()].map((r) => `${r.key} ${r.pauses.at(-1)?.fromKill.toFixed(0) ?? '?'} ms`).join(', ');
  out(`>>> I/O resumed; pause from kill to the first new completion: ${pauses}`);
}

function progressLine(r: DeviceRun, host: SimHost, final: boolean): string {
  const [domid, devid] = r.key.split('/').map(Number);
  const fe = host.guests.get(domid)?.frontend(devid)?.getSnapshot().value;
  const phase = typeof fe === 'string' ? fe : JSON.stringify(fe).replace(/[{}"]/g, '').replace(/:/g, '.');
  const rep = r.report;
  if (!rep) return `  ${r.key.padEnd(9)} ${String(phase).padEnd(18)} waiting`;
  // Rates since the previous line, so that a stall shows at once (the report's are run averages).
  const now = performance.now();
  const bytes = rep.bytesRead + rep.bytesWritten;
  const prev = r.seen;
  r.seen = { at: now, ops: rep.ops, bytes };
  // The last line gives the run's averages.
  const s = prev && now > prev.at && !final ? (now - prev.at) / 1000 : 0;
  const iops = s ? (rep.ops - prev!.ops) / s : rep.iops;
  const mbs = s ? (bytes - prev!.bytes) / s / 1e6 : rep.mbPerSec;
  return (
    `  ${r.key.padEnd(9)} ${String(phase).padEnd(18)} ${iops.toFixed(0).padStart(6)} IOPS ${mbs.toFixed(1).padStart(7)} MB/s` +
    `  ops ${rep.ops}  errors ${rep.errors}  mismatches ${rep.mismatches}  lost ${rep.lost}`
  );
}

function summarize(r: DeviceRun): DemoDeviceSummary {
  const rep = r.report;
  return {
    device: r.key,
    image: r.image,
    requests: rep?.ops ?? 0,
    bytes: (rep?.bytesRead ?? 0) + (rep?.bytesWritten ?? 0),
    errors: rep?.errors ?? 0,
    mismatches: rep?.mismatches ?? 0,
    lost: rep?.lost ?? 0,
    duplicated: rep?.duplicated ?? 0,
    recoveries: r.pauses.length,
    longestStallMs: Math.round(rep?.longestStallMs ?? 0),
    recoveryPausesMs: r.pauses.map((p) => ({ fromKill: Math.round(p.fromKill), fromStart: Math.round(p.fromStart) })),
    iops: Math.round(rep?.iops ?? 0),
    mbPerSec: Number((rep?.mbPerSec ?? 0).toFixed(1)),
  };
}

async function waitFor(check: () => boolean, timeoutMs: number, what: string): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!check()) {
    if (Date.now() > deadline) throw new Error(what);
    await sleep(20);
  }
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

export function formatSummary(s: DemoSummary): string {
  const head = 'device     requests        bytes  errors  mismatches  lost  dup  recoveries  pause(ms, from kill/start)  longest stall';
  const rows = s.devices.map(
    (d) =>
      `${d.device.padEnd(9)} ${String(d.requests).padStart(9)} ${fmtBytes(d.bytes).padStart(12)} ${String(d.errors).padStart(7)} ${String(d.mismatches).padStart(11)} ${String(d.lost).padStart(5)} ${String(d.duplicated).padStart(4)} ${String(d.recoveries).padStart(11)}  ${(d.recoveryPausesMs.map((p) => `${p.fromKill}/${p.fromStart}`).join(' ') || '-').padEnd(26)} ${d.longestStallMs} ms`,
  );
  return [head, ...rows, s.ok ? `OK: every read verified, no error, no lost or duplicated response across ${s.kills} daemon kill(s)` : 'FAILED: see the counters above'].join('\n');
}

function fmtBytes(n: number): string {
  return n >= 1 << 30 ? `${(n / (1 << 30)).toFixed(2)} GiB` : `${(n / (1 << 20)).toFixed(1)} MiB`;
}
