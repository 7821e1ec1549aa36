// `xenblkd bench storage`: each storage driver measured through the dataplane (a simulated guest
// in this process, the dataplane in a child process as in production) next to the storage's own
// reference tool on the same image or export, in the same run. Figures are printed, never asserted.
import { execFileSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import type { ChildCommand } from '../dataplane-child';
import { layOut, measure, Session, WORKLOADS, type Measured } from '../dataplane';
import { Hypervisor } from '../../sim/hv/hypervisor';
import { openRawImage } from '../../io/storage/raw';
import { openBenchTarget } from './open-target';
import { fioFile, fioNbd, fioReference, qemuImgBench, rbdBench, type ReferenceFigure, type RefJob } from './references';
import { EXPORT_NAME, startCeph, startQemuNbd, startSupervisedQsd, type Server } from './servers';
import { checkTools, type BenchDriver, BENCH_DRIVERS } from './tools';
import { formatTable, machineLine } from './table';

export { BENCH_DRIVERS, MissingToolError, type BenchDriver } from './tools';

export interface StorageBenchOptions {
  drivers?: readonly BenchDriver[];
  /** Measured time per figure, ours and the reference's. Default 2. */
  seconds?: number;
  /** Default 256 MiB. */
  imageBytes?: number;
  /** A tmpfs folder for the images and sockets. Default /dev/shm. */
  tmpfsDir?: string;
  /** Progress lines (the table is returned and printed by the caller). */
  progress?: (line: string) => void;
  child?: ChildCommand;
}

export interface StorageRow {
  readonly job: string;
  readonly driver: BenchDriver;
  readonly queueDepth: number;
  readonly ours: Pick<Measured, 'iops' | 'mbPerSec' | 'p50us' | 'p99us' | 'dataplaneCpuPct'>;
  readonly reference: ReferenceFigure;
  /** ours / reference, MB/s. */
  readonly ratio: number;
}

export interface StorageBenchResult {
  readonly date: string;
  readonly machine: string;
  /** The 1, 5 and 15 minute load averages when the run started (the reference tools share the CPUs too). */
  readonly loadAverage: number[];
  readonly seconds: number;
  readonly imageBytes: number;
  readonly rows: StorageRow[];
  /** Drivers that could not be measured, with why (one line each). */
  readonly failures: { driver: BenchDriver; message: string }[];
}

export const TARGET_RATIO = 0.8;

interface Job extends RefJob {
  readonly name: string;
  readonly spec: (typeof WORKLOADS)[number]['spec'];
}

/** 4 KiB random at QD 32, 64 KiB sequential at QD 16 (the figures). */
const JOBS: Job[] = WORKLOADS.map((w) => ({ name: w.name, rw: w.fio, bs: w.bs, iodepth: w.bs === 4096 ? 32 : 16, seconds: 0, spec: w.spec }));

/** The bench's child: the standalone dataplane that opens any target spec. */
export function storageChildCommand(): ChildCommand {
  return { file: path.join(__dirname, 'child-main.js'), execArgv: [], env: process.env };
}

/** How one driver's image is served: its target spec and the references on it. */
interface Prepared {
  readonly target: string;
  /** The reference figure(s) for a job; ours measured just before (for count-based tools). */
  reference(job: RefJob, ours: Measured): Promise<ReferenceFigure[]>;
  /** References taken before the server starts (qemu-img bench on a qcow2 file it would lock). */
  readonly before?: Map<string, ReferenceFigure>;
  readonly servers: Server[];
}

export async function runStorageBench(opts: StorageBenchOptions = {}): Promise<StorageBenchResult> {
  const drivers = opts.drivers ?? BENCH_DRIVERS;
  checkTools(drivers);
  const seconds = opts.seconds ?? 2;
  const imageBytes = opts.imageBytes ?? 256 << 20;
  const progress = opts.progress ?? (() => {});
  const cmd = opts.child ?? storageChildCommand();
  const jobs = JOBS.map((j) => ({ ...j, seconds }));
  const dir = fs.mkdtempSync(path.join(opts.tmpfsDir ?? '/dev/shm', 'xenblkd-storage-bench-'));
  const hv = new Hypervisor({ hostId: `storage-bench-${process.pid}-${path.basename(dir)}`, log: { info: () => {}, warn: (m) => progress(`hv: ${m}`) } });
  const socketPath = path.join(dir, 'hv.sock');
  const result: StorageBenchResult = { date: new Date().toISOString(), machine: machineLine(), loadAverage: os.loadavg().map((l) => Number(l.toFixed(2))), seconds, imageBytes, rows: [], failures: [] };
  try {
    await hv.listen(socketPath);
    const guest = hv.createDomain(1, { memoryBytes: 256 << 20 });
    const session = new Session(hv, guest, socketPath, dir, cmd, (t) => openBenchTarget(t, { direct: true }));
    for (const driver of drivers) {
      const scratch = fs.mkdtempSync(path.join(dir, `${driver}-`));
      let prepared: Prepared | null = null;
      try {
        progress(`${driver}: preparing a ${imageBytes >> 20} MiB image`);
        prepared = await prepare(driver, scratch, imageBytes, jobs, progress);
        for (const job of jobs) {
          const ours = await session.with(prepared.target, { dataPath: 'auto', persistent: false, order: 'ring' }, (queue, child) => measure(queue, child, job.spec, job.iodepth, seconds * 1000));
          const refs = [...(prepared.before?.has(job.name) ? [prepared.before.get(job.name)!] : []), ...(await prepared.reference(job, ours))];
          for (const reference of refs) {
            const row: StorageRow = { job: job.name, driver, queueDepth: job.iodepth, ours, reference, ratio: ours.mbPerSec / reference.mbPerSec };
            result.rows.push(row);
            progress(`${driver} ${job.name}: ours ${ours.mbPerSec.toFixed(1)} MB/s, ${reference.tool} ${reference.mbPerSec.toFixed(1)} MB/s (${row.ratio.toFixed(2)}x)`);
          }
        }
      } catch (e) {
        const message = (e as Error).message.split('\n')[0];
        result.failures.push({ driver, message });
        progress(`${driver}: not measured: ${message}`);
      } finally {
        for (const s of prepared?.servers ?? []) {
          await s.stop().catch((e: Error) => {
            result.failures.push({ driver, message: e.message.split('\n')[0] });
            progress(`${driver}: ${e.message}`);
          });
        }
        fs.rmSync(scratch, { recursive: true, force: true });
      }
    }
    return result;
  } finally {
    await hv.close();
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

async function prepare(driver: BenchDriver, dir: string, imageBytes: number, jobs: readonly Job[], progress: (l: string) => void): Promise<Prepared> {
  const raw = path.join(dir, 'image.raw');
  layOut(raw, imageBytes);
  switch (driver) {
    case 'file': {
      const probe = await openRawImage(raw, { direct: true });
      const direct = probe.direct;
      await probe.close();
      return { target: raw, servers: [], reference: async (job) => [await fioReference('fio libaio', fioFile(raw, direct), job)] };
    }
    case 'nbd': {
      const server = await startQemuNbd(raw, path.join(dir, 'nbd.sock'));
      return {
        target: `nbd:unix:${server.address}:exportname=${EXPORT_NAME}`,
        servers: [server],
        reference: async (job) => [await fioReference('fio nbd', fioNbd(server.address, EXPORT_NAME), job)],
      };
    }
    case 'qcow2': {
      const qcow2 = path.join(dir, 'image.qcow2');
      execFileSync('qemu-img', ['convert', '-f', 'raw', '-O', 'qcow2', raw, qcow2], { stdio: ['ignore', 'ignore', 'pipe'] });
      fs.rmSync(raw);
      // qemu-img bench on the file itself first: the storage daemon will hold QEMU's image lock.
      const before = new Map<string, ReferenceFigure>();
      for (const job of jobs) {
        if (job.rw !== 'read' && job.rw !== 'write') continue;
        const probe = await qemuImgBench('qemu-img bench file', qcow2, 'qcow2', { ...job, seconds: 0.3 }, 2000);
        before.set(job.name, await qemuImgBench('qemu-img bench file', qcow2, 'qcow2', job, probe.iops));
      }
      progress('qcow2: qemu-img bench on the file done, starting qemu-storage-daemon');
      // Started by the qsd driver's supervisor, as the daemon does; the dataplane then opens its
      // NBD export, which is all openQsdImage adds.
      const server = await startSupervisedQsd(qcow2, 'qcow2', path.join(dir, 'qsd'), progress);
      return {
        target: `nbd:unix:${server.address}:exportname=${server.exportName}`,
        servers: [server, { address: qcow2, stop: async () => checkQcow2(qcow2) }],
        before,
        reference: async (job) => [await fioReference('fio nbd', fioNbd(server.address, server.exportName), job)],
      };
    }
    case 'rbd': {
      progress('rbd: starting a single-node Ceph (memstore)');
      const ceph = await startCeph(path.join(dir, 'ceph'));
      try {
        execFileSync('rbd', ['import', '--no-progress', raw, `${ceph.pool}/bench`], { env: ceph.env, stdio: ['ignore', 'ignore', 'pipe'] });
      } catch (e) {
        await ceph.stop();
        throw new Error(`rbd import: ${String((e as { stderr?: Buffer }).stderr ?? (e as Error).message).trim().split('\n').slice(-1)[0]}`);
      }
      fs.rmSync(raw);
      return {
        target: `rbd:${ceph.pool}/bench:conf=${ceph.address}`,
        servers: [ceph],
        reference: async (job, ours) => [await rbdBench(`${ceph.pool}/bench`, job, ours.mbPerSec, ceph.env)],
      };
    }
  }
}

/** What was written through the storage daemon left a consistent qcow2 (after it stopped). */
function checkQcow2(file: string): void {
  try {
    execFileSync('qemu-img', ['check', '-q', file], { stdio: ['ignore', 'ignore', 'pipe'] });
  } catch (e) {
    throw new Error(`qemu-img check ${file}: ${String((e as { stderr?: Buffer }).stderr ?? '').trim() || 'not clean'}`);
  }
}

export { formatTable, TARGET_RATIO as targetRatio };
