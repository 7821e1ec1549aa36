// fio as the physical reference: one job on the same image file, parsed from its JSON output.
import { execFile } from 'node:child_process';

export interface FioJob {
  readonly file: string;
  readonly rw: 'randread' | 'randwrite' | 'read' | 'write';
  readonly bs: number;
  readonly iodepth: number;
  readonly engine: 'psync' | 'libaio';
  readonly direct: boolean;
  readonly runtimeMs: number;
  readonly sizeBytes: number;
}

export interface FioResult {
  readonly iops: number;
  readonly mbPerSec: number;
  readonly p50us: number;
  readonly p99us: number;
}

export function runFio(job: FioJob): Promise<FioResult> {
  const args = [
    '--name=ref',
    `--filename=${job.file}`,
    `--rw=${job.rw}`,
    `--bs=${job.bs}`,
    `--iodepth=${job.iodepth}`,
    `--ioengine=${job.engine}`,
    `--direct=${job.direct ? 1 : 0}`,
    `--size=${job.sizeBytes}`,
    '--time_based',
    `--runtime=${Math.max(1, Math.round(job.runtimeMs))}ms`,
    '--ramp_time=200ms',
    '--norandommap',
    '--randrepeat=0',
    '--output-format=json',
  ];
  return new Promise((resolve, reject) => {
    execFile('fio', args, { maxBuffer: 16 << 20 }, (err, stdout, stderr) => {
      if (err) return reject(new Error(`fio ${job.rw} bs=${job.bs} iodepth=${job.iodepth} ${job.engine}: ${stderr.trim() || err.message}`));
      try {
        const out = JSON.parse(stdout.slice(stdout.indexOf('{'))) as { jobs: FioJobOut[] };
        const j = out.jobs[0];
        const side = job.rw.includes('read') ? j.read : j.write;
        const pct = side.clat_ns?.percentile ?? {};
        resolve({
          iops: side.iops,
          mbPerSec: side.bw_bytes / 1e6,
          p50us: (pct['50.000000'] ?? 0) / 1000,
          p99us: (pct['99.000000'] ?? 0) / 1000,
        });
      } catch (e) {
        reject(new Error(`fio output unreadable: ${(e as Error).message}`));
      }
    });
  });
}

interface FioSideOut {
  iops: number;
  bw_bytes: number;
  clat_ns?: { percentile?: Record<string, number> };
}

interface FioJobOut {
  read: FioSideOut;
  write: FioSideOut;
}
