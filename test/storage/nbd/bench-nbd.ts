// Measures the NBD client against qemu-nbd on a tmpfs raw file, next to qemu-img bench on the
// same export: QD32 4 KiB random read and write IOPS, 64 KiB sequential MB/s.
// Run: npx esbuild test/storage/nbd/bench-nbd.ts --bundle --platform=node --outfile=/tmp/bench-nbd.js && node /tmp/bench-nbd.js
import { execFileSync } from 'node:child_process';
import * as fs from 'node:fs';
import { randomBytes } from 'node:crypto';
import { openNbdImage, type NbdImage } from '../../../src/io/storage/nbd';

const MiB = 1024 * 1024;
const SIZE = 256 * MiB;
const SECONDS = Number(process.env.BENCH_SECONDS ?? 5);

async function run(img: NbdImage, write: boolean, bs: number, qd: number, random: boolean): Promise<{ iops: number; mbs: number }> {
  const buf = randomBytes(bs * qd);
  const blocks = SIZE / bs;
  let seq = 0;
  let done = 0;
  const end = Date.now() + SECONDS * 1000;
  const t0 = process.hrtime.bigint();
  await new Promise<void>((resolve, reject) => {
    let active = 0;
    const one = (i: number): void => {
      const pos = (random ? Math.floor(Math.random() * blocks) : seq++ % blocks) * bs;
      active++;
      const cb = (e: NodeJS.ErrnoException | null): void => {
        active--;
        if (e) return reject(e);
        done++;
        if (Date.now() < end) one(i);
        else if (active === 0) resolve();
      };
      if (write) img.write(buf, i * bs, bs, pos, cb);
      else img.read(buf, i * bs, bs, pos, cb);
    };
    img.plug?.();
    for (let i = 0; i < qd; i++) one(i);
    img.unplug?.();
  });
  const secs = Number(process.hrtime.bigint() - t0) / 1e9;
  return { iops: done / secs, mbs: (done * bs) / secs / MiB };
}

function qemuImgBench(sock: string, write: boolean, bs: number, qd: number, random: boolean): { iops: number; mbs: number } {
  const count = bs === 4096 ? 100_000 : 20_000;
  const args = ['bench', '-f', 'raw', '-t', 'none', '-c', String(count), '-d', String(qd), '-s', String(bs), ...(write ? ['-w'] : [])];
  // qemu-img bench has no random mode: a step of a large odd number of blocks scatters it.
  if (random) args.push('-S', String(bs * 7919));
  args.push(`nbd+unix:///?socket=${sock}`);
  const t0 = process.hrtime.bigint();
  execFileSync('qemu-img', args, { stdio: 'ignore' });
  const secs = Number(process.hrtime.bigint() - t0) / 1e9;
  return { iops: count / secs, mbs: (count * bs) / secs / MiB };
}

async function main(): Promise<void> {
  const dir = fs.mkdtempSync('/dev/shm/xenblkd-nbd-bench-');
  const file = `${dir}/disk.img`;
  fs.writeFileSync(file, Buffer.alloc(0));
  execFileSync('dd', ['if=/dev/urandom', `of=${file}`, 'bs=1M', `count=${SIZE / MiB}`, 'status=none']);
  const sock = `${dir}/nbd.sock`;
  const pidFile = `${dir}/pid`;
  execFileSync('qemu-nbd', ['--fork', '--persistent', '--shared=2', '--pid-file', pidFile, '-f', 'raw', '--cache=writeback', '-k', sock, file]);
  const pid = Number(fs.readFileSync(pidFile, 'utf8'));
  try {
    const img = await openNbdImage({ driver: 'nbd', transport: 'unix', path: sock, exportName: '' }, {});
    const rows: [string, boolean, number, number, boolean][] = [
      ['4 KiB random read QD32', false, 4096, 32, true],
      ['4 KiB random write QD32', true, 4096, 32, true],
      ['64 KiB sequential read QD32', false, 65536, 32, false],
      ['64 KiB sequential write QD32', true, 65536, 32, false],
    ];
    for (const [label, write, bs, qd, random] of rows) {
      const ours = await run(img, write, bs, qd, random);
      const theirs = qemuImgBench(sock, write, bs, qd, random);
      console.log(`${label.padEnd(30)} xenblkd ${ours.iops.toFixed(0).padStart(7)} IOPS ${ours.mbs.toFixed(1).padStart(7)} MB/s | qemu-img bench ${theirs.iops.toFixed(0).padStart(7)} IOPS ${theirs.mbs.toFixed(1).padStart(7)} MB/s`);
    }
    await img.close();
  } finally {
    process.kill(pid, 'SIGTERM');
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

main().catch((e) => {
  console.error(e.message);
  process.exit(1);
});
