// The storages' own tools, run on the same image or export in the same run: fio (files, and its
// nbd engine on an NBD export), qemu-img bench (sequential only: it has no random pattern), and
// rbd bench on the Ceph image.
import { execFile } from 'node:child_process';

export interface ReferenceFigure {
  /** What was run, for the table: "fio libaio", "fio nbd", "rbd bench", ... */
  readonly tool: string;
  readonly iops: number;
  readonly mbPerSec: number;
}

export interface RefJob {
  readonly rw: 'randread' | 'randwrite' | 'read' | 'write';
  readonly bs: number;
  readonly iodepth: number;
  readonly seconds: number;
}

function run(file: string, args: string[], env?: NodeJS.ProcessEnv): Promise<string> {
  return new Promise((resolve, reject) =>
    execFile(file, args, { maxBuffer: 16 << 20, env: env ?? process.env }, (err, stdout, stderr) => {
      if (err) reject(new Error(`${file} ${args.slice(0, 3).join(' ')}...: ${(stderr.trim() || err.message).split('\n').slice(-1)[0]}`));
      else resolve(`${stdout}${stderr}`);
    }),
  );
}

/** fio, time based; target: ['--filename=F', '--ioengine=libaio', ...] or the nbd engine's uri. */
export async function fioReference(tool: string, target: string[], job: RefJob): Promise<ReferenceFigure> {
  const out = await run('fio', [
    '--name=ref', ...target, `--rw=${job.rw}`, `--bs=${job.bs}`, `--iodepth=${job.iodepth}`,
    '--time_based', `--runtime=${Math.max(200, Math.round(job.seconds * 1000))}ms`, '--ramp_time=200ms',
    '--norandommap', '--randrepeat=0', '--output-format=json',
  ]);
  let side: { iops: number; bw_bytes: number };
  try {
    const j = JSON.parse(out.slice(out.indexOf('{'))) as { jobs: { read: typeof side; write: typeof side }[] };
    side = job.rw.includes('read') ? j.jobs[0].read : j.jobs[0].write;
  } catch (e) {
    throw new Error(`fio output unreadable: ${(e as Error).message}`);
  }
  return { tool, iops: side.iops, mbPerSec: side.bw_bytes / 1e6 };
}

export function fioFile(file: string, direct: boolean): string[] {
  return [`--filename=${file}`, '--ioengine=libaio', `--direct=${direct ? 1 : 0}`];
}

export function fioNbd(socket: string, exportName: string): string[] {
  return ['--ioengine=nbd', `--uri=nbd+unix:///${encodeURIComponent(exportName)}?socket=${socket}`];
}

/** qemu-img bench: sequential, count based (count chosen so the run lasts about `seconds`). */
export async function qemuImgBench(tool: string, target: string, format: string, job: RefJob, expectIops: number): Promise<ReferenceFigure> {
  if (job.rw === 'randread' || job.rw === 'randwrite') throw new Error('qemu-img bench has no random pattern');
  const count = Math.max(256, Math.round(expectIops * job.seconds));
  const args = ['bench', '-c', String(count), '-d', String(job.iodepth), '-s', String(job.bs), '-f', format, '-q'];
  if (job.rw === 'write') args.push('-w');
  // It walks from offset 0 by the request size and wraps at the image's end.
  const t0 = process.hrtime.bigint();
  const out = await run('qemu-img', [...args, target]);
  const m = /Run completed in ([0-9.]+) seconds/.exec(out);
  const secs = m ? Number(m[1]) : Number(process.hrtime.bigint() - t0) / 1e9;
  return { tool, iops: count / secs, mbPerSec: (count * job.bs) / secs / 1e6 };
}

/** rbd bench on pool/image: io-total chosen so the run lasts about `seconds`. */
export async function rbdBench(image: string, job: RefJob, expectMbPerSec: number, env: NodeJS.ProcessEnv): Promise<ReferenceFigure> {
  const total = Math.max(job.bs * 256, Math.round((expectMbPerSec * 1e6 * job.seconds) / job.bs) * job.bs);
  const out = await run('rbd', [
    'bench', '--io-type', job.rw.includes('read') ? 'read' : 'write', '--io-size', String(job.bs),
    '--io-threads', String(job.iodepth), '--io-total', String(total), '--io-pattern', job.rw.startsWith('rand') ? 'rand' : 'seq', image,
  ], env);
  const m = /elapsed:\s*([0-9.]+)\s+ops:\s*([0-9]+)\s+ops\/sec:\s*([0-9.]+)/.exec(out);
  if (!m) throw new Error(`rbd bench output unreadable: ${out.trim().split('\n').slice(-1)[0]}`);
  // bytes/sec is printed rounded to whole MiB: ops/sec times the request size is exact.
  const iops = Number(m[3]);
  return { tool: 'rbd bench', iops, mbPerSec: (iops * job.bs) / 1e6 };
}
