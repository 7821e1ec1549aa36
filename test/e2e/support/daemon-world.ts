// A simulated Xen host in this process (guests with Linux-blkfront-like block queues) and the
// real daemon, `xenblkd run --sim`, as a child process: what an operator sees on a dom0.
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import type { XenStore } from '../../../src/io/xs/client';
import { silentLogger } from '../../../src/log';
import { controlRequest } from '../../../src/daemon/control';
import { DaemonProcess } from '../../../src/demo/daemon-process';
import { SimHost } from '../../../src/sim/host';
import { blockQueueFactory, isBlockGuestQueue } from '../../../src/sim/frontend/block-queue-adapter';
import type { GuestBlockQueue } from '../../../src/sim/guest/block-queue';
import { DiskModel } from '../../../src/sim/guest/disk-model';
import { runWorkload, type WorkloadReport } from '../../../src/sim/guest/workload';
import type { WorkloadSpecInput } from '../../../src/sim/guest/workload-spec';
import { attachDisk } from '../../../src/toolstack/disk';

const IMAGE_BYTES = 32 << 20;
export const CLI = path.join(__dirname, '../../../dist/cli/main.js');

export interface Disk {
  readonly key: string;
  readonly domid: number;
  readonly devid: number;
  readonly image: string;
  /** The guest's current block queue (a new one after a driver reload). */
  queue?: GuestBlockQueue;
  queues: number;
  /** What the guest wrote, kept across workload runs so that later runs check earlier writes. */
  readonly model: DiskModel;
}

export interface DaemonWorld {
  readonly dir: string;
  readonly stateDir: string;
  readonly xenstoreSocket: string;
  readonly host: SimHost;
  readonly toolstack: XenStore;
  readonly daemon: DaemonProcess;
  readonly disks: Disk[];
  /** The dashboard's URL as the running daemon reports it. */
  dashboardUrl(): Promise<string>;
  /** Runs a verifying workload on a disk's current queue. */
  workload(disk: Disk, spec: WorkloadSpecInput, signal?: AbortSignal): Promise<WorkloadReport>;
  close(): Promise<void>;
}

export const SMALL_WORKLOAD: WorkloadSpecInput = {
  pattern: 'random',
  mix: { read: 5, write: 4, flush: 1 },
  sizes: [4096, 16384, 65536],
  queueDepth: 8,
  verify: true,
  stallTimeoutMs: 20_000,
};

export interface DaemonWorldOptions {
  guests?: number;
  http?: boolean | string;
  daemonEnv?: NodeJS.ProcessEnv;
  extraArgs?: string[];
  /** Each guest's disk target (params), made in the world's folder; default a raw file. */
  target?: (domid: number, dir: string, bytes: number) => string | Promise<string>;
}

export async function daemonWorld(opts: DaemonWorldOptions = {}): Promise<DaemonWorld> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'xenblkd-e2e-'));
  const xenstoreSocket = path.join(dir, 'xenstored.sock');
  const disks: Disk[] = [];
  const host = await SimHost.start({
    stateDir: path.join(dir, 'sim'),
    xenstoreSocket,
    guests: opts.guests ?? 1,
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
  const stateDir = path.join(dir, 'daemon');
  const daemon = new DaemonProcess({
    xenstoreSocket,
    hvSocket: host.hvSocket,
    stateDir,
    logFile: path.join(dir, 'daemon.log'),
    http: opts.http === false ? undefined : typeof opts.http === 'string' ? opts.http : '127.0.0.1:0',
    extraArgs: opts.extraArgs,
    env: opts.daemonEnv,
  });
  const toolstack = await host.toolstack();
  const world: DaemonWorld = {
    dir,
    stateDir,
    xenstoreSocket,
    host,
    toolstack,
    daemon,
    disks,
    async dashboardUrl() {
      const r = (await controlRequest(path.join(stateDir, 'control.sock'), { op: 'ping' })) as { dashboard?: string };
      if (!r.dashboard) throw new Error('the daemon serves no dashboard');
      return r.dashboard;
    },
    workload(disk, spec, signal) {
      if (!disk.queue) throw new Error(`disk ${disk.key} is not connected`);
      return runWorkload(disk.queue, { ...spec, seed: disk.domid * 31 + disk.queues * 1009 + Math.floor(disk.model.serial) }, { signal, model: disk.model });
    },
    async close() {
      await daemon.stop().catch(() => undefined);
      await host.close().catch(() => undefined);
      fs.rmSync(dir, { recursive: true, force: true });
    },
  };
  try {
    await daemon.start();
    for (let domid = 1; domid <= (opts.guests ?? 1); domid++) {
      let image: string;
      if (opts.target) image = await opts.target(domid, dir, IMAGE_BYTES);
      else {
        image = path.join(dir, `guest${domid}.img`);
        fs.writeFileSync(image, '');
        fs.truncateSync(image, IMAGE_BYTES);
      }
      const id = await attachDisk(toolstack, { frontendDomid: domid, vdev: 'xvda', image });
      disks.push({ key: `${domid}/${id.devid}`, domid, devid: id.devid, image, queues: 0, model: new DiskModel(0, IMAGE_BYTES / 512) });
    }
    await until(() => disks.every((d) => d.queue !== undefined), 'the guests to connect their disks');
  } catch (err) {
    await world.close();
    throw err;
  }
  return world;
}

export async function until(check: () => boolean | Promise<boolean>, what: string, timeoutMs = 20_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await Promise.resolve().then(check).catch(() => false))) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 25));
  }
}
