// The storage bench's table: one row per job, driver and reference tool.
import * as os from 'node:os';
import type { StorageBenchResult } from './index';

/** CPU model and count, memory, kernel, node: what the figures were measured on. */
export function machineLine(): string {
  const cpus = os.cpus();
  const model = (cpus[0]?.model ?? 'unknown CPU').replace(/\s+/g, ' ').trim();
  return `${model}, ${cpus.length} CPUs, ${(os.totalmem() / 2 ** 30).toFixed(0)} GiB, Linux ${os.release()}, node ${process.version}`;
}

const fmt = (x: number, width: number): string => (x >= 100 ? x.toFixed(0) : x.toFixed(1)).padStart(width);

export function formatTable(r: StorageBenchResult, target = 0.8): string {
  const lines = [
    `storage bench ${r.date}: ${r.seconds} s per figure, ${r.imageBytes >> 20} MiB images on tmpfs; ratio = ours / reference (MB/s), target >= ${target}x`,
    `machine: ${r.machine}; load average ${r.loadAverage.join(' ')} at the start, ${os.loadavg().map((l) => l.toFixed(2)).join(' ')} at the end`,
    `${'job'.padEnd(13)} ${'driver'.padEnd(6)} ${'QD'.padStart(3)} ${'ours MB/s'.padStart(10)} ${'IOPS'.padStart(8)} ${'reference'.padEnd(19)} ${'ref MB/s'.padStart(9)} ${'ref IOPS'.padStart(8)}  ratio`,
  ];
  for (const row of r.rows) {
    lines.push(
      `${row.job.padEnd(13)} ${row.driver.padEnd(6)} ${String(row.queueDepth).padStart(3)} ${fmt(row.ours.mbPerSec, 10)} ${fmt(row.ours.iops, 8)} ${row.reference.tool.padEnd(19)} ${fmt(row.reference.mbPerSec, 9)} ${fmt(row.reference.iops, 8)}  ${row.ratio.toFixed(2)}x${row.ratio < target ? ' (below target)' : ''}`,
    );
  }
  for (const f of r.failures) lines.push(`${f.driver}: not measured: ${f.message}`);
  return lines.join('\n');
}
