// `xenblkd bench storage` end to end, briefly (figures are not asserted: only that every row has
// them): the file driver against fio and the nbd driver against fio's nbd engine on a real
// qemu-nbd, through the built dataplane child. And its one-line errors.
import { spawnSync } from 'node:child_process';
import * as path from 'node:path';
import { formatTable, runStorageBench } from '../../src/bench/storage';
import { checkTools, MissingToolError } from '../../src/bench/storage/tools';

jest.setTimeout(120_000);

const ROOT = path.join(__dirname, '..', '..');
const CLI = path.join(ROOT, 'dist', 'xenblkd.js');
const child = { file: path.join(ROOT, 'dist', 'bench', 'storage', 'child-main.js'), execArgv: [], env: process.env };

it('measures file and nbd next to their references and prints a table with ratios', async () => {
  const progress: string[] = [];
  const r = await runStorageBench({ drivers: ['file', 'nbd'], seconds: 0.3, imageBytes: 16 << 20, child, progress: (l) => progress.push(l) });
  expect(r.failures).toEqual([]);
  expect(r.rows.map((x) => `${x.driver} ${x.job} QD${x.queueDepth} ${x.reference.tool}`)).toEqual([
    'file 4k randread QD32 fio libaio',
    'file 4k randwrite QD32 fio libaio',
    'file 64k seqread QD16 fio libaio',
    'file 64k seqwrite QD16 fio libaio',
    'nbd 4k randread QD32 fio nbd',
    'nbd 4k randwrite QD32 fio nbd',
    'nbd 64k seqread QD16 fio nbd',
    'nbd 64k seqwrite QD16 fio nbd',
  ]);
  for (const x of r.rows) {
    expect(x.ours.mbPerSec).toBeGreaterThan(0);
    expect(x.reference.mbPerSec).toBeGreaterThan(0);
    expect(x.ratio).toBeCloseTo(x.ours.mbPerSec / x.reference.mbPerSec, 6);
  }
  const table = formatTable(r).split('\n');
  expect(table[1]).toMatch(/^machine: .+ \d+ CPUs/);
  const rows = table.filter((l) => /^(4k|64k) /.test(l));
  expect(rows).toHaveLength(8);
  for (const l of rows) expect(l).toMatch(/^\S+ \S+\s+(file|nbd)\s+\d+\s+[0-9.]+\s+[0-9.]+ fio (libaio|nbd)\s+[0-9.]+\s+[0-9.]+\s+[0-9.]+x/);
});

it('names the package to install when a tool is missing', () => {
  expect(() => checkTools(['nbd'], '/nonexistent')).toThrow(new MissingToolError('qemu-nbd', 'qemu-utils'));
  expect(() => checkTools(['rbd'], '/nonexistent')).toThrow(/^ceph-mon is not installed: apt-get install ceph-mon/);
  const run = spawnSync(process.execPath, [CLI, 'bench', 'storage', '--drivers', 'qcow2'], { env: { ...process.env, PATH: '/nonexistent' }, encoding: 'utf8' });
  expect(run.status).not.toBe(0);
  expect(run.stderr.trim().split('\n')).toEqual([expect.stringMatching(/qemu-img is not installed: apt-get install qemu-utils/)]);
});

it('refuses an unknown driver in one line', () => {
  const run = spawnSync(process.execPath, [CLI, 'bench', 'storage', '--drivers', 'file,iscsi'], { encoding: 'utf8' });
  expect(run.status).not.toBe(0);
  expect(run.stderr.trim().split('\n')).toEqual([expect.stringMatching(/unknown storage driver 'iscsi' \(file, nbd, qcow2, rbd\)/)]);
});
