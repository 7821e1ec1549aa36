// A simulated host (guests with verifying block queues, in this process) and the real daemon as a
// child process whose state folder the test prepares first (a tmpfs, a bind mount): what an
// operator's dom0 sees when the state folder fails.
import { spawn } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import type { XenStore } from '../../src/io/xs/client';
import { silentLogger } from '../../src/log';
import { controlRequest } from '../../src/daemon/control';
import { DaemonProcess } from '../../src/demo/daemon-process';
import { SimHost } from '../../src/sim/host';
import { blockQueueFactory, isBlockGuestQueue } from '../../src/sim/frontend/block-queue-adapter';
import type { GuestBlockQueue } from '../../src/sim/guest/block-queue';
import { DiskModel } from '../../src/sim/guest/disk-model';
import { runWorkload, type WorkloadReport } from '../../src/sim/guest/workload';
import type { WorkloadSpecInput } from '../../src/sim/guest/workload-spec';
import { attachDisk } from '../../src/toolstack/disk';

const IMAGE_BYTES = 16 << 20;
export const CLI = path.join(__dirname, '../../dist/cli/main.js');

export const VERIFYING: WorkloadSpecInput = {
  pattern: 'random',
  mix: { read: 5, write: 4, flush: 1 },
  sizes: [4096, 16384, 65536],
  queueDepth: 32,
  verify: true,
  stallTimeoutMs: 20_000,
  // Until aborted (bounded all the same), reporting often enough to watch it move.
  ops: 0,
  durationMs: 120_000,
  progressEveryMs: 100,
};

export interface Disk {
  readonly key: string;
  readonly domid: number;
  readonly devid: number;
  readonly backendPath: string;
  readonly frontendPath: string;
  queue?: GuestBlockQueue;
  readonly model: DiskModel;
  /** Requests answered so far by the running workload. */
  ops: number;
  /** Block queues the guest has had (a new one after each reconnect of its frontend). */
  queues: number;
}

export interface StoreWorld {
  readonly dir: string;
  readonly stateDir: string;
  readonly host: SimHost;
  readonly toolstack: XenStore;
  readonly daemon: DaemonProcess;
  readonly disks: Disk[];
  attach(domid: number, vdev?: string): Promise<Disk>;
  /** A verifying workload until signal aborts; disk.ops counts its answered requests. */
  workload(disk: Disk, signal: AbortSignal): Promise<WorkloadReport>;
  ls(): Promise<{ status: number | null; stdout: string; stderr: string }>;
  metrics(): Promise<string>;
  /** The daemon's JSON log lines so far (every run). */
  log(): { msg: string; level: number; pid: number }[];
  close(): Promise<void>;
}

export async function storeWorld(opts: { guests: number; prepare?: (stateDir: string) => void }): Promise<StoreWorld> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'xenblkd-faults-'));
  const stateDir = path.join(dir, 'state');
  fs.mkdirSync(stateDir);
  opts.prepare?.(stateDir);
  const xenstoreSocket = path.join(dir, 'xenstored.sock');
  const logFile = path.join(dir, 'daemon.log');
  const disks: Disk[] = [];
  const host = await SimHost.start({
    stateDir: path.join(dir, 'sim'),
    xenstoreSocket,
    guests: opts.guests,
    memoryBytes: 64 << 20,
    queueFactory: blockQueueFactory({ indirectSegments: 32 }),
    logger: silentLogger,
    onDisk: (domid, devid, queue) => {
      const disk = disks.find((d) => d.domid === domid && d.devid === devid);
      if (!disk) return;
      disk.queue = queue && isBlockGuestQueue(queue) ? queue.blockQueue : undefined;
      if (disk.queue) disk.queues += 1;
    },
  });
  const daemon = new DaemonProcess({ xenstoreSocket, hvSocket: host.hvSocket, stateDir, logFile, http: '127.0.0.1:0' });
  const toolstack = await host.toolstack();
  const world: StoreWorld = {
    dir,
    stateDir,
    host,
    toolstack,
    daemon,
    disks,
    async attach(domid, vdev = 'xvda') {
      const image = path.join(dir, `guest${domid}-${vdev}.img`);
      fs.writeFileSync(image, '');
      fs.truncateSync(image, IMAGE_BYTES);
      const id = await attachDisk(toolstack, { frontendDomid: domid, vdev, image });
      const disk: Disk = { key: `${domid}/${id.devid}`, domid, devid: id.devid, backendPath: id.backendPath, frontendPath: id.frontendPath, model: new DiskModel(0, IMAGE_BYTES / 512), ops: 0, queues: 0 };
      disks.push(disk);
      return disk;
    },
    workload(disk, signal) {
      if (!disk.queue) throw new Error(`disk ${disk.key} is not connected`);
      return runWorkload(disk.queue, { ...VERIFYING, seed: disk.domid * 31 + Math.floor(disk.model.serial) }, { signal, model: disk.model, onProgress: (r) => (disk.ops = r.ops) });
    },
    ls() {
      return new Promise((resolve) => {
        const child = spawn(process.execPath, [CLI, 'ls', '--state-dir', stateDir], { stdio: ['ignore', 'pipe', 'pipe'] });
        let stdout = '';
        let stderr = '';
        child.stdout!.on('data', (b: Buffer) => (stdout += b.toString()));
        child.stderr!.on('data', (b: Buffer) => (stderr += b.toString()));
        child.on('close', (status) => resolve({ status, stdout, stderr }));
      });
    },
    async metrics() {
      const r = (await controlRequest(path.join(stateDir, 'control.sock'), { op: 'ping' })) as { dashboard?: string };
      return (await fetch(new URL('metrics', r.dashboard))).text();
    },
    log() {
      const text = fs.existsSync(logFile) ? fs.readFileSync(logFile, 'utf8') : '';
      return text
        .split('\n')
        .filter((l) => l.startsWith('{'))
        .map((l) => JSON.parse(l) as { msg: string; level: number; pid: number });
    },
    async close() {
      await daemon.stop().catch(() => undefined);
      await host.close().catch(() => undefined);
    },
  };
  try {
    await daemon.start();
  } catch (err) {
    await world.close();
    throw err;
  }
  return world;
}

export { until } from '../e2e/support/daemon-world';

/** The value of one sample of the Prometheus text exposition, or undefined. */
export function sample(text: string, name: string): number | undefined {
  const line = text.split('\n').find((l) => l.startsWith(`${name} `));
  return line === undefined ? undefined : Number(line.slice(line.lastIndexOf(' ') + 1));
}
