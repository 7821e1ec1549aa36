// Benchmark of the event-sourced engine: devices brought from toolstack creation to Connected
// per second (1, 100, 1000), recovery after SIGKILL with every device connected, persisted events
// per second next to raw LevelDB batches, and resident memory per idle connected device. The
// daemon runs as a child process against the simulated host, as in production.
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { ClassicLevel } from 'classic-level';
import { controlRequest } from '../daemon/control';
import { DaemonProcess } from '../demo/daemon-process';
import type { XenStore } from '../io/xs/client';
import { silentLogger } from '../log';
import { idleQueueFactory } from '../sim/frontend/idle-queue';
import { SimHost } from '../sim/host';
import { LevelEventStore } from '../store/level-store';
import { attachDisk } from '../toolstack/disk';
import { formatVdev } from '../machines';

export interface EngineBenchOptions {
  readonly counts?: readonly number[];
  readonly devicesPerGuest?: number;
  readonly print?: (line: string) => void;
}

export interface EngineBenchResult {
  readonly connect: { devices: number; seconds: number; perSecond: number }[];
  readonly recovery: { devices: number; fromSpawnMs: number; insideProcessMs: number };
  readonly store: { eventsPerSecond: number; rawBatchPerSecond: number };
  readonly memory: { devices: number; kibPerDevice: number; heapKibPerDevice: number; idleRssMiB: number; loadedRssMiB: number };
}

/** The daemon's memory after a full collection, in KiB (its control socket's memory op). */
async function liveKiB(stateDir: string): Promise<{ rss: number; heap: number }> {
  const m = (await controlRequest(path.join(stateDir, 'control.sock'), { op: 'memory' }, 30_000)) as { rss: number; heapUsed: number; external: number };
  // external is left out: it counts mapped guest and DMA memory whole, resident or not.
  return { rss: m.rss / 1024, heap: m.heapUsed / 1024 };
}

async function connectedCount(xs: XenStore): Promise<number> {
  let n = 0;
  const base = '/local/domain/0/backend/vbd';
  for (const fe of await xs.directory(base).catch(() => [] as string[])) {
    for (const id of await xs.directory(`${base}/${fe}`).catch(() => [] as string[])) {
      if ((await xs.tryRead(`${base}/${fe}/${id}/state`)) === '4') n++;
    }
  }
  return n;
}

async function waitConnected(xs: XenStore, devices: number, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while ((await connectedCount(xs)) < devices) {
    if (Date.now() > deadline) throw new Error(`only ${await connectedCount(xs)} of ${devices} devices connected after ${timeoutMs} ms`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

/** One world: a simulated host with enough guests, a daemon, `devices` disks plugged at once. */
async function connectRun(devices: number, perGuest: number, keep: (w: { host: SimHost; daemon: DaemonProcess; dir: string }) => Promise<void> = async () => undefined) {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'xenblkd-bench-engine-'));
  const guests = Math.ceil(devices / perGuest);
  const xenstoreSocket = path.join(dir, 'xs.sock');
  const host = await SimHost.start({ stateDir: path.join(dir, 'sim'), xenstoreSocket, guests, memoryBytes: 8 << 20, queueFactory: idleQueueFactory, logger: silentLogger });
  const daemon = new DaemonProcess({ xenstoreSocket, hvSocket: host.hvSocket, stateDir: path.join(dir, 'daemon'), logFile: path.join(dir, 'daemon.log'), readyTimeoutMs: 120_000 });
  const image = path.join(dir, 'disk.img');
  fs.writeFileSync(image, '');
  fs.truncateSync(image, 1 << 20);
  let ok = false;
  try {
    await daemon.start();
    const xs = await host.toolstack();
    const t0 = performance.now();
    // One after the other, as libxl plugs disks; the daemon works on them meanwhile.
    for (let i = 0; i < devices; i++) {
      const domid = 1 + Math.floor(i / perGuest);
      await attachDisk(xs, { frontendDomid: domid, vdev: formatVdev({ kind: 'xvd', disk: i % perGuest, partition: 0, devid: 0 }), image, readOnly: true });
    }
    await waitConnected(xs, devices, 120_000);
    const seconds = (performance.now() - t0) / 1000;
    await keep({ host, daemon, dir });
    ok = true;
    return { devices, seconds, perSecond: devices / seconds };
  } finally {
    await daemon.stop().catch(() => undefined);
    await host.close().catch(() => undefined);
    // A failed run keeps its folder: the error names the daemon's log in it.
    if (ok) fs.rmSync(dir, { recursive: true, force: true });
  }
}

async function storeRates(): Promise<{ eventsPerSecond: number; rawBatchPerSecond: number }> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'xenblkd-bench-store-'));
  const events = 50_000;
  const streams = 500;
  const data = { type: 'frontend.changed', data: { state: 4, keys: { 'ring-ref': '8', 'event-channel': '9', protocol: 'x86_64-abi' } } };
  try {
    const store = await LevelEventStore.open(path.join(dir, 'events'));
    let t = performance.now();
    const pending: Promise<number>[] = [];
    for (let i = 0; i < events; i++) pending.push(store.append(`device/vbd/${i % streams}/51712`, [data], 'any'));
    await Promise.all(pending);
    const eventsPerSecond = events / ((performance.now() - t) / 1000);
    await store.close();
    const raw = new ClassicLevel<string, string>(path.join(dir, 'raw'));
    const value = JSON.stringify({ f: 1, ...data, at: Date.now() });
    t = performance.now();
    for (let i = 0; i < events; i += 500) {
      await raw.batch(Array.from({ length: 500 }, (_, j) => ({ type: 'put' as const, key: `e!${(i + j) % streams}!${String(i + j).padStart(10, '0')}`, value })));
    }
    const rawBatchPerSecond = events / ((performance.now() - t) / 1000);
    await raw.close();
    return { eventsPerSecond, rawBatchPerSecond };
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

export async function runEngineBench(opts: EngineBenchOptions = {}): Promise<EngineBenchResult> {
  const print = opts.print ?? ((l: string) => process.stdout.write(l + '\n'));
  const perGuest = opts.devicesPerGuest ?? 10;
  const counts = opts.counts ?? [1, 100, 1000];
  const connect: EngineBenchResult['connect'] = [];
  let recovery: EngineBenchResult['recovery'] = { devices: 0, fromSpawnMs: NaN, insideProcessMs: NaN };
  let memory: EngineBenchResult['memory'] = { devices: 0, kibPerDevice: NaN, heapKibPerDevice: NaN, idleRssMiB: NaN, loadedRssMiB: NaN };
  let loadedLive = { rss: NaN, heap: NaN };
  print('engine benchmark: toolstack creation -> Connected, recovery after SIGKILL, event store, memory');
  for (const n of counts) {
    const last = n === Math.max(...counts);
    const r = await connectRun(n, perGuest, async ({ host, daemon, dir }) => {
      if (!last) return;
      // Memory: the loaded daemon, then a fresh one after a restart with nothing attached would
      // not be comparable; compare with the same process's RSS before the devices came.
      const loaded = await liveKiB(path.join(dir, 'daemon'));
      // Recovery: SIGKILL, restart, time until the control socket answers (recovery is done
      // before serve() returns) and until the first ring is mapped again.
      await daemon.kill();
      const spawn = performance.now();
      await daemon.start();
      const fromSpawnMs = performance.now() - spawn;
      const log = fs.readFileSync(path.join(dir, 'daemon.log'), 'utf8').split('\n').filter(Boolean).map((l) => { try { return JSON.parse(l) as Record<string, unknown>; } catch { return {}; } });
      const serving = log.filter((l) => l.msg && String(l.msg).startsWith('serving')).at(-1);
      recovery = { devices: n, fromSpawnMs, insideProcessMs: Number(serving?.recoveryMs ?? NaN) };
      await waitConnected(await host.toolstack(), n, 60_000);
      loadedLive = loaded;
      memory = { devices: n, kibPerDevice: NaN, heapKibPerDevice: NaN, idleRssMiB: NaN, loadedRssMiB: loaded.rss / 1024 };
    });
    connect.push(r);
    print(`  ${String(n).padStart(5)} device(s) connected in ${r.seconds.toFixed(2)} s: ${r.perSecond.toFixed(0)} devices/s`);
  }
  // Idle RSS: a daemon with no device, same build, same machine.
  {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'xenblkd-bench-idle-'));
    const xenstoreSocket = path.join(dir, 'xs.sock');
    const host = await SimHost.start({ stateDir: path.join(dir, 'sim'), xenstoreSocket, guests: 0, queueFactory: idleQueueFactory, logger: silentLogger });
    const daemon = new DaemonProcess({ xenstoreSocket, hvSocket: host.hvSocket, stateDir: path.join(dir, 'daemon'), logFile: path.join(dir, 'daemon.log'), extraArgs: ['--log-level', 'warn'] });
    await daemon.start();
    await new Promise((r) => setTimeout(r, 500));
    const idle = await liveKiB(path.join(dir, 'daemon'));
    await daemon.stop();
    await host.close();
    fs.rmSync(dir, { recursive: true, force: true });
    memory = {
      ...memory,
      idleRssMiB: idle.rss / 1024,
      kibPerDevice: (loadedLive.rss - idle.rss) / memory.devices,
      heapKibPerDevice: (loadedLive.heap - idle.heap) / memory.devices,
    };
  }
  print(`  recovery of ${recovery.devices} connected devices after SIGKILL: ${recovery.fromSpawnMs.toFixed(0)} ms from spawn to serving (${recovery.insideProcessMs.toFixed(0)} ms inside the process after its modules loaded)`);
  print(
    `  memory after a full GC: ${memory.idleRssMiB.toFixed(1)} MiB resident idle, ${memory.loadedRssMiB.toFixed(1)} MiB with ${memory.devices} devices: ` +
      `${memory.kibPerDevice.toFixed(1)} KiB resident, ${memory.heapKibPerDevice.toFixed(1)} KiB of JS heap per idle connected device`,
  );
  const store = await storeRates();
  print(`  event store: ${store.eventsPerSecond.toFixed(0)} persisted events/s (appends to 500 streams, group commit); raw LevelDB batches of 500: ${store.rawBatchPerSecond.toFixed(0)} puts/s`);
  return { connect, recovery, store, memory };
}

if (require.main === module) {
  const counts = process.argv.slice(2).map(Number).filter((n) => n > 0);
  runEngineBench(counts.length ? { counts } : {}).catch((err) => {
    process.stderr.write(`engine bench failed: ${(err as Error).message}\n`);
    process.exitCode = 1;
  });
}
