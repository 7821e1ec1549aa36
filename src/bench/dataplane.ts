// Dataplane benchmark: the same image file on tmpfs and on disk, measured first with fio (psync
// and libaio: the physical reference), then from a simulated guest through the dataplane running
// in its own process, as in production. Also: grant copy vs map vs persistent grants, what
// publishing in ring order costs against completion order, and the pause a guest sees when the
// dataplane is killed and restarted. Figures are printed next to their references, never asserted.
import { execFile } from 'node:child_process';
import * as crypto from 'node:crypto';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { performance } from 'node:perf_hooks';
import type { DataPathMode } from '../effects/dataplane-port';
import type { StandaloneConfig } from '../effects/dataplane/standalone';
import type { BlockImage } from '../io/storage/port';
import { openRawImage } from '../io/storage/raw';
import type { SimDomain } from '../sim/domain';
import { diskInfoFor, GuestBlockQueue, runWorkload, type WorkloadReport, type WorkloadSpecInput } from '../sim/guest';
import { Hypervisor } from '../sim/hv/hypervisor';
import { DataplaneChild, defaultChildCommand, type ChildCommand } from './dataplane-child';
import { runFio, type FioResult } from './fio';

export type BenchLocation = 'tmpfs' | 'disk';

export interface DataplaneBenchOptions {
  /** Measured time per figure. Default 2000 ms. */
  durationMs?: number;
  /** Default 256 MiB. */
  imageBytes?: number;
  /** Default both. */
  locations?: BenchLocation[];
  /** Default /dev/shm and /var/tmp. */
  tmpfsDir?: string;
  diskDir?: string;
  /** Kill/restart cycles for the recovery pause. Default 5. */
  restarts?: number;
  /** Ring/completion pairs for the publication-order figure. Default 5. */
  orderingRounds?: number;
  /** Leave fio out (the test of this benchmark does). */
  skipFio?: boolean;
  print?: (line: string) => void;
  child?: ChildCommand;
}

export interface Measured {
  readonly iops: number;
  readonly mbPerSec: number;
  readonly p50us: number;
  readonly p99us: number;
  /** CPU time over elapsed time, in % of one CPU: the guest (this process, with the simulated host) and the dataplane process. */
  readonly guestCpuPct: number;
  readonly dataplaneCpuPct: number;
}

export interface BenchRow {
  readonly location: BenchLocation;
  readonly workload: string;
  readonly queueDepth: number;
  readonly fioPsync: FioResult | null;
  readonly fioLibaio: FioResult | null;
  readonly dataplane: Measured;
  /** dataplane / fio libaio at the same queue depth (MB/s). */
  readonly ratio: number | null;
}

export interface DataplaneBenchResult {
  readonly rows: BenchRow[];
  readonly dataPaths: { location: BenchLocation; workload: string; dataPath: string; measured: Measured }[];
  readonly ordering: { location: BenchLocation; workload: string; ring: Measured; completion: Measured; lossPct: number }[];
  readonly recovery: {
    killToFirstMs: number[];
    spawnToFirstMs: number[];
    readyToFirstMs: number[];
    /** Per restart, from the new process: node's own start, loading modules, ring setup (ms). */
    startup: { nodeMs: number; modulesMs: number; setupMs: number }[];
    /** `node -e 0` from spawn to exit, measured next to the restarts: the floor of any restart. */
    bareNodeMs: number[];
  };
  readonly direct: Record<BenchLocation, boolean>;
}

export interface Workload {
  readonly name: string;
  readonly fio: 'randread' | 'randwrite' | 'read' | 'write';
  readonly bs: number;
  readonly spec: WorkloadSpecInput;
}

export const WORKLOADS: Workload[] = [
  { name: '4k randread', fio: 'randread', bs: 4096, spec: { pattern: 'random', mix: { read: 1 }, sizes: [4096] } },
  { name: '4k randwrite', fio: 'randwrite', bs: 4096, spec: { pattern: 'random', mix: { write: 1 }, sizes: [4096] } },
  { name: '64k seqread', fio: 'read', bs: 65536, spec: { pattern: 'sequential', mix: { read: 1 }, sizes: [65536] } },
  { name: '64k seqwrite', fio: 'write', bs: 65536, spec: { pattern: 'sequential', mix: { write: 1 }, sizes: [65536] } },
];
const DEPTHS = [1, 32];

export async function runDataplaneBench(opts: DataplaneBenchOptions = {}): Promise<DataplaneBenchResult> {
  const durationMs = opts.durationMs ?? 2000;
  const imageBytes = opts.imageBytes ?? 256 << 20;
  const print = opts.print ?? ((l: string) => process.stdout.write(`${l}\n`));
  const cmd = opts.child ?? defaultChildCommand();
  const locations = opts.locations ?? ['tmpfs', 'disk'];
  const tag = `xenblkd-dpbench-${process.pid}`;
  const dirs: Record<BenchLocation, string> = {
    tmpfs: path.join(opts.tmpfsDir ?? '/dev/shm', tag),
    disk: path.join(opts.diskDir ?? '/var/tmp', tag),
  };
  const scratch = fs.mkdtempSync(path.join(os.tmpdir(), 'dpbench-'));
  const hv = new Hypervisor({ hostId: `${tag}-${path.basename(scratch)}`, log: { info: () => {}, warn: (m) => print(`hv: ${m}`) } });
  const socketPath = path.join(scratch, 'hv.sock');
  const result: DataplaneBenchResult = { rows: [], dataPaths: [], ordering: [], recovery: { killToFirstMs: [], spawnToFirstMs: [], readyToFirstMs: [], startup: [], bareNodeMs: [] }, direct: { tmpfs: false, disk: false } };
  try {
    await hv.listen(socketPath);
    const guest = hv.createDomain(1, { memoryBytes: 256 << 20 });
    const session = new Session(hv, guest, socketPath, scratch, cmd);
    print(`dataplane bench: ${durationMs} ms per figure, ${imageBytes >> 20} MiB image, guest in pid ${process.pid}, dataplane in a child process (${path.basename(cmd.file)})`);
    print(`load average ${os.loadavg().map((l) => l.toFixed(2)).join(' ')} on ${os.cpus().length} CPUs`);
    if (process.env.NODE_EXTRA_CA_CERTS) print('NODE_EXTRA_CA_CERTS is set here: the dataplane child is started without it (node would parse that CA bundle at every restart)');
    for (const loc of locations) {
      fs.mkdirSync(dirs[loc], { recursive: true });
      const image = path.join(dirs[loc], 'image.raw');
      layOut(image, imageBytes);
      const probe = await openRawImage(image);
      result.direct[loc] = probe.direct;
      await probe.close();
      print('');
      print(`${loc} (${dirs[loc]}), O_DIRECT ${result.direct[loc] ? 'on' : 'off'}`);
      print('  workload        QD   fio psync MB/s   fio libaio MB/s   dataplane MB/s   IOPS      p50 us  p99 us   ratio   CPU % guest/dataplane');
      const fioFigures = new Map<string, { psync: FioResult | null; libaio: FioResult | null }>();
      if (!opts.skipFio) {
        for (const w of WORKLOADS) {
          for (const qd of DEPTHS) {
            const base = { file: image, rw: w.fio, bs: w.bs, direct: result.direct[loc], runtimeMs: durationMs, sizeBytes: imageBytes };
            const psync = qd === 1 ? await runFio({ ...base, iodepth: 1, engine: 'psync' }) : null;
            const libaio = await runFio({ ...base, iodepth: qd, engine: 'libaio' });
            fioFigures.set(`${w.name}/${qd}`, { psync, libaio });
          }
        }
      }
      await session.with(image, { dataPath: 'auto', persistent: false, order: 'ring' }, async (queue, child) => {
        for (const w of WORKLOADS) {
          for (const qd of DEPTHS) {
            const m = await measure(queue, child, w.spec, qd, durationMs);
            const f = fioFigures.get(`${w.name}/${qd}`);
            const ratio = f?.libaio ? m.mbPerSec / f.libaio.mbPerSec : null;
            result.rows.push({ location: loc, workload: w.name, queueDepth: qd, fioPsync: f?.psync ?? null, fioLibaio: f?.libaio ?? null, dataplane: m, ratio });
            print(
              `  ${w.name.padEnd(14)} ${String(qd).padStart(3)}   ${num(f?.psync?.mbPerSec, 14)}   ${num(f?.libaio?.mbPerSec, 15)}   ${num(m.mbPerSec, 14)}   ${num(m.iops, 7)}  ${num(m.p50us, 6)}  ${num(m.p99us, 6)}   ${ratio === null ? '   -' : `${ratio.toFixed(2)}x`}   ${num(m.guestCpuPct, 5)} / ${num(m.dataplaneCpuPct, 3)}`,
            );
          }
        }
      });

      print(`  data path (QD 32)             MB/s      IOPS   CPU % guest/dataplane`);
      const paths: [DataPathMode, boolean][] = [['copy', false], ['map', false], ['persistent', true]];
      for (const w of [WORKLOADS[0], WORKLOADS[2]]) {
        for (const [dataPath, persistent] of paths) {
          await session.with(image, { dataPath, persistent, order: 'ring' }, async (queue, child) => {
            const m = await measure(queue, child, w.spec, 32, durationMs);
            result.dataPaths.push({ location: loc, workload: w.name, dataPath, measured: m });
            print(`  ${w.name.padEnd(14)} ${dataPath.padEnd(12)} ${num(m.mbPerSec, 9)} ${num(m.iops, 9)}   ${num(m.guestCpuPct, 5)} / ${num(m.dataplaneCpuPct, 3)}`);
          });
        }
      }

      const rounds = opts.orderingRounds ?? 5;
      print(`  publication order (QD 32, ${rounds} pairs of back-to-back runs)         ring MB/s   completion MB/s   lost to ring order`);
      for (const w of [WORKLOADS[0], WORKLOADS[1]]) {
        // The host's load moves more than the two figures differ: each round runs both orders
        // back to back (which goes first alternates) and the loss is the median of the pairs'.
        const rings: Measured[] = [];
        const completions: Measured[] = [];
        const losses: number[] = [];
        for (let round = 0; round < rounds; round++) {
          const run = (order: 'ring' | 'completion') =>
            session.with(image, { dataPath: 'auto', persistent: false, order }, (q, c) => measure(q, c, w.spec, 32, durationMs / 2));
          let ring: Measured;
          let completion: Measured;
          if (round % 2 === 0) {
            ring = await run('ring');
            completion = await run('completion');
          } else {
            completion = await run('completion');
            ring = await run('ring');
          }
          rings.push(ring);
          completions.push(completion);
          losses.push((1 - ring.mbPerSec / completion.mbPerSec) * 100);
        }
        const ring = median(rings);
        const completion = median(completions);
        const lossPct = [...losses].sort((a, b) => a - b)[Math.floor(losses.length / 2)];
        result.ordering.push({ location: loc, workload: w.name, ring, completion, lossPct });
        print(`  ${w.name.padEnd(56)} ${num(ring.mbPerSec, 9)}   ${num(completion.mbPerSec, 15)}   ${lossPct.toFixed(1).padStart(8)} %`);
      }

      if (loc === locations[0]) await recoveryPause(session, image, opts.restarts ?? 5, result, print);
      fs.rmSync(image, { force: true });
    }
    return result;
  } finally {
    await hv.close();
    for (const d of Object.values(dirs)) fs.rmSync(d, { recursive: true, force: true });
    fs.rmSync(scratch, { recursive: true, force: true });
  }
}

/** Writes every byte once (fio's layout step): reads then hit data, not holes. */
export function layOut(file: string, bytes: number): void {
  const chunk = crypto.randomBytes(1 << 20);
  const fd = fs.openSync(file, 'w');
  try {
    for (let off = 0; off < bytes; off += chunk.length) fs.writeSync(fd, chunk, 0, Math.min(chunk.length, bytes - off), off);
    fs.fsyncSync(fd);
  } finally {
    fs.closeSync(fd);
  }
}

export async function measure(queue: GuestBlockQueue, child: DataplaneChild, spec: WorkloadSpecInput, qd: number, durationMs: number): Promise<Measured> {
  const base: WorkloadSpecInput = { ...spec, queueDepth: qd, ops: 0, verify: false, initial: 'unknown', seed: 5 };
  await runWorkload(queue, { ...base, durationMs: Math.min(300, durationMs) }); // warm up both processes
  const guest0 = process.cpuUsage();
  const dp0 = cpuSecondsOf(child.pid);
  const r: WorkloadReport = await runWorkload(queue, { ...base, durationMs });
  const guest = process.cpuUsage(guest0);
  const dp = cpuSecondsOf(child.pid) - dp0;
  if (r.errors + r.lost + r.duplicated > 0) throw new Error(`workload failed: ${r.errors} errors, ${r.lost} lost, ${r.duplicated} duplicated ${r.notes.join('; ')}`);
  return {
    iops: r.iops,
    mbPerSec: r.mbPerSec,
    p50us: r.latencyUs.p50,
    p99us: r.latencyUs.p99,
    guestCpuPct: (guest.user + guest.system) / 10 / r.elapsedMs,
    dataplaneCpuPct: (dp * 1e5) / r.elapsedMs,
  };
}

/** user + system time of a process so far (Linux /proc, clock ticks of 10 ms). */
function cpuSecondsOf(pid: number): number {
  const stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
  const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return (Number(f[11]) + Number(f[12])) / 100;
}

async function recoveryPause(session: Session, image: string, restarts: number, result: DataplaneBenchResult, print: (l: string) => void): Promise<void> {
  const rec = result.recovery;
  await session.with(image, { dataPath: 'auto', persistent: false, order: 'ring' }, async (queue, first) => {
    let current = first;
    const stop = new AbortController();
    const work = runWorkload(queue, { pattern: 'random', mix: { read: 1, write: 1 }, sizes: [4096], queueDepth: 32, ops: 0, durationMs: 3_600_000, verify: true, initial: 'unknown', seed: 3 }, { signal: stop.signal });
    const inner = queue.onComplete;
    let waiting = false;
    let firstAt = 0;
    queue.onComplete = (r, s) => {
      if (waiting) {
        waiting = false;
        firstAt = performance.now();
      }
      inner(r, s);
    };
    for (let i = 0; i < restarts; i++) {
      await new Promise((r) => setTimeout(r, 300));
      const killedAt = performance.now();
      current.kill();
      await current.exited;
      // Responses the dead process had published may still be taken after the kill: only a
      // completion after the new process was spawned is a new one.
      await new Promise((r) => setImmediate(r));
      waiting = true;
      const spawnedAt = performance.now();
      const next = await DataplaneChild.start(session.config(image, { dataPath: 'auto', persistent: false, order: 'ring' }, queue), {}, session.cmd);
      const readyAt = performance.now();
      current = next.child;
      session.replaceChild(current);
      while (waiting) await new Promise((r) => setTimeout(r, 1));
      rec.killToFirstMs.push(firstAt - killedAt);
      rec.spawnToFirstMs.push(firstAt - spawnedAt);
      rec.readyToFirstMs.push(firstAt - readyAt);
      rec.startup.push(next.ready.startup);
    }
    stop.abort();
    const r = await work;
    if (r.errors + r.mismatches + r.lost + r.duplicated > 0) throw new Error(`recovery workload failed: ${JSON.stringify(r)}`);
  });
  // With the guest quiet: a bare node, spawned as the dataplane child is (same environment).
  for (let i = 0; i < restarts; i++) rec.bareNodeMs.push(await bareNodeStart());
  const med = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
  print(`  recovery pause over ${restarts} SIGKILLs at QD 32 (verified, 0 errors/mismatches/lost/duplicates):`);
  print(`    kill -> first completion       median ${med(rec.killToFirstMs).toFixed(0)} ms, max ${Math.max(...rec.killToFirstMs).toFixed(0)} ms`);
  print(`    new process -> first completion median ${med(rec.spawnToFirstMs).toFixed(0)} ms, max ${Math.max(...rec.spawnToFirstMs).toFixed(0)} ms (target < 200 ms)`);
  print(`    ready -> first completion       median ${med(rec.readyToFirstMs).toFixed(1)} ms, max ${Math.max(...rec.readyToFirstMs).toFixed(1)} ms`);
  const part = (k: 'nodeMs' | 'modulesMs' | 'setupMs') => med(rec.startup.map((s) => s[k])).toFixed(0);
  print(`    inside the new process (medians): node's own start ${part('nodeMs')} ms, loading modules ${part('modulesMs')} ms, ring setup ${part('setupMs')} ms`);
  print(`    \`node -e 0\` spawn to exit, guest idle: median ${med(rec.bareNodeMs).toFixed(0)} ms`);
}

/** Spawn-to-exit of a node doing nothing, in the child's environment: the floor of any restart. */
function bareNodeStart(): Promise<number> {
  const t0 = performance.now();
  const env = { ...process.env, NODE_EXTRA_CA_CERTS: undefined };
  return new Promise((resolve, reject) =>
    execFile(process.execPath, ['-e', '0'], { env }, (err) => (err ? reject(err) : resolve(performance.now() - t0))),
  );
}

export interface SessionConfig {
  dataPath: DataPathMode;
  persistent: boolean;
  order: 'ring' | 'completion';
}

/** A guest queue and its dataplane child for one configuration. */
export class Session {
  private child: DataplaneChild | null = null;

  constructor(
    private readonly hv: Hypervisor,
    private readonly guest: SimDomain,
    private readonly socketPath: string,
    private readonly scratch: string,
    readonly cmd: ChildCommand,
    /** Opens the image for its size and features (the child opens it again): other drivers' targets. */
    private readonly open: (image: string) => Promise<BlockImage> = openRawImage,
  ) {}

  config(image: string, c: SessionConfig, queue: GuestBlockQueue): StandaloneConfig {
    return {
      hvSocket: this.socketPath,
      imagePath: image,
      stateDir: this.scratch,
      frontendDomid: this.guest.domid,
      devid: 51712,
      backendType: 'vbd',
      params: queue.params,
      readOnly: false,
      direct: true,
      features: { barrier: true, discard: true, persistent: true, maxIndirectSegments: 256, dataPath: c.dataPath },
      order: c.order,
    };
  }

  replaceChild(c: DataplaneChild): void {
    this.child = c;
  }

  async with<T>(image: string, c: SessionConfig, fn: (queue: GuestBlockQueue, child: DataplaneChild) => Promise<T>): Promise<T> {
    const queue = await GuestBlockQueue.create(this.guest, { backendDomid: 0, ringPageOrder: 1, protocol: 'x86_64-abi', persistent: c.persistent, indirectSegments: 256 });
    const img = await this.open(image);
    const info = diskInfoFor(img);
    await img.close();
    const { child } = await DataplaneChild.start(this.config(image, c, queue), {}, this.cmd);
    this.child = child;
    queue.start(info);
    try {
      return await fn(queue, child);
    } finally {
      await this.child.stop();
      this.child = null;
      await queue.close();
    }
  }
}

function median(ms: Measured[]): Measured {
  return [...ms].sort((a, b) => a.mbPerSec - b.mbPerSec)[Math.floor(ms.length / 2)];
}

export function num(x: number | undefined, width: number): string {
  if (x === undefined) return '-'.padStart(width);
  return (x >= 100 ? x.toFixed(0) : x.toFixed(1)).padStart(width);
}

if (require.main === module) {
  const args = process.argv.slice(2);
  const opt = (name: string): string | undefined => {
    const i = args.indexOf(name);
    return i >= 0 ? args[i + 1] : undefined;
  };
  const durationMs = opt('--duration-ms');
  const locations = opt('--locations');
  const restarts = opt('--restarts');
  const rounds = opt('--ordering-rounds');
  runDataplaneBench({
    durationMs: durationMs ? Number(durationMs) : undefined,
    locations: locations ? (locations.split(',') as BenchLocation[]) : undefined,
    restarts: restarts ? Number(restarts) : undefined,
    orderingRounds: rounds ? Number(rounds) : undefined,
  }).then(
    () => process.exit(0),
    (e: Error) => {
      process.stderr.write(`dataplane bench: ${e.message}\n`);
      process.exit(1);
    },
  );
}
