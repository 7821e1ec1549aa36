// The harness's verification logic, run by busybox sh as in the guests and dom0: the domU
// workload's writes, manifest and read-back (scripts/xen/domu/disk.sh) and dom0's check of the
// image file (scripts/xen/dom0/xenblkd.sh), on a regular file standing in for /dev/xvda, with
// xenstore-utils talking to the embedded xenstored. Corruption must be caught on both sides.
import { spawn } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { XenStore } from '../../src/io/xs/client';
import { startServer, tempDir, type TestServer } from '../xs/helpers';

const XEN = path.resolve(__dirname, '../../scripts/xen');
const IMAGE_BYTES = 256 << 20;
const MANIFEST_OFF = 267386880;

let t: TestServer;
let xs: XenStore;
let dir: string;
let image: string;

/** Runs a script with busybox sh (whose applets win over PATH, as in the guests). */
function bb(script: string): Promise<{ code: number; out: string }> {
  const prelude = [
    `. ${XEN}/guest/xentest.sh`,
    `. ${XEN}/domu/disk.sh`,
    `WL=${dir}/wl`,
    `dev_of() { echo ${image}; }`,
    // The image is a regular file, not a block device: BLKDISCARD becomes a punched hole.
    'blkdiscard() { /usr/bin/fallocate --punch-hole --offset "$2" --length "$4" "$5"; }',
  ].join('\n');
  return new Promise((resolve, reject) => {
    const child = spawn('busybox', ['sh', '-c', `${prelude}\n${script}`], {
      env: {
        PATH: `${dir}/bin:/usr/bin:/bin`,
        XENSTORED_PATH: t.socket,
        XT_CONSOLE: `${dir}/console`,
        XT_RUNDIR: `${dir}/run`,
        XT_LOGDIR: `${dir}/log`,
      },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let out = '';
    child.stdout.on('data', (d) => (out += d));
    child.stderr.on('data', (d) => (out += d));
    child.on('error', reject);
    child.on('close', (code) => resolve({ code: code ?? -1, out }));
  });
}

/** dom0's image check (xenblkd.sh) on the same file. */
function imageCheck(): Promise<{ code: number; out: string }> {
  return bb(`. ${XEN}/dom0/steps.sh; . ${XEN}/dom0/xenblkd.sh; XB_IMAGE=${image}; image_check t`);
}

const console_ = () => fs.readFileSync(`${dir}/console`, 'utf8');
const manifestLines = () =>
  fs
    .readFileSync(`${dir}/wl/manifest`, 'utf8')
    .trim()
    .split('\n')
    .map((l) => l.split(' '));

function flipByte(at: number): void {
  const fd = fs.openSync(image, 'r+');
  const b = Buffer.alloc(1);
  fs.readSync(fd, b, 0, 1, at);
  b[0] ^= 0xff;
  fs.writeSync(fd, b, 0, 1, at);
  fs.closeSync(fd);
}

beforeAll(async () => {
  t = await startServer();
  xs = await XenStore.connect({ path: t.socket });
  dir = tempDir('xen-guest-scripts-');
  fs.mkdirSync(`${dir}/bin`);
  fs.mkdirSync(`${dir}/run`);
  fs.mkdirSync(`${dir}/log`);
  for (const applet of ['dd', 'sha256sum', 'cut', 'tr', 'wc', 'sort', 'head', 'tail', 'grep', 'sed', 'cat', 'rm', 'mkdir', 'usleep', 'awk', 'touch', 'sleep', 'ls', 'basename']) {
    fs.symlinkSync('/bin/busybox', `${dir}/bin/${applet}`);
  }

  image = path.join(dir, 'disk.img');
  fs.writeFileSync(image, '');
  fs.truncateSync(image, IMAGE_BYTES);
});

afterAll(async () => {
  await xs.close();
  await t.close();
  fs.rmSync(dir, { recursive: true, force: true });
});

describe('domU workload and dom0 image check (busybox sh)', () => {
  it('runs a round of verified writes, reporting progress in xenstore and facts on the console', async () => {
    const r = await bb('workload x 1');
    expect(r.out).toMatch(/^1 rounds, \d+ probe reads$/m);
    expect(r.code).toBe(0);
    // relative xenstore paths of a dom0 connection live under /local/domain/0
    expect(await xs.read('/local/domain/0/data/xentest/ops')).toBe('4');
    expect(await xs.read('/local/domain/0/data/xentest/round')).toBe('1');
    expect(await xs.read('/local/domain/0/data/xentest/status')).toBe('workload-end');
    expect(console_()).toContain(`XENTEST INFO domu-bytes-verified ${4096 + 45056 + 131072 + 1048576}`);
    expect(console_()).toMatch(/XENTEST INFO domu-longest-stall-ms \d+/);
    expect(console_()).toContain('XENTEST INFO domu-discards 1');
    expect(console_()).toContain('XENTEST INFO domu-discard-zeroes 1');
  }, 60_000);

  it('saves a manifest the guest and dom0 both check, and both catch a flipped byte', async () => {
    const saved = await bb('manifest_save x');
    expect(saved.code).toBe(0);
    const [n, sum] = (await xs.read('/local/domain/0/data/xentest/manifest')).split(' ');
    expect(Number(n)).toBe(4);
    expect(sum).toMatch(/^[0-9a-f]{64}$/);
    const header = Buffer.alloc(128);
    const fd = fs.openSync(image, 'r');
    fs.readSync(fd, header, 0, 128, MANIFEST_OFF);
    fs.closeSync(fd);
    expect(header.toString('latin1')).toMatch(new RegExp(`^XENTEST-MANIFEST 4 ${sum}\n`));

    expect((await bb('verify x good')).code).toBe(0);
    expect(console_()).toMatch(/XENTEST INFO domu-verified-good 4 regions, \d+ bytes/);
    const dom0 = await imageCheck();
    expect(dom0.out).toMatch(/4 regions \(\d+ bytes\) of the image match the guest's manifest, 0 do not/);
    expect(dom0.code).toBe(0);

    const [off, size] = manifestLines()[2].map(Number);
    flipByte(off + size - 1);
    const bad = await bb('verify x bad');
    expect(bad.code).not.toBe(0);
    expect(bad.out).toContain(`MISMATCH ${size} bytes at ${off}`);
    const dom0Bad = await imageCheck();
    expect(dom0Bad.code).not.toBe(0);
    expect(dom0Bad.out).toContain(`MISMATCH in the image: ${size} bytes at ${off}`);
    flipByte(off + size - 1);
  }, 60_000);

  it('a new guest finds the manifest on the disk and checks every region; a damaged manifest is refused', async () => {
    fs.rmSync(`${dir}/wl`, { recursive: true, force: true });
    const r = await bb('verify_previous x');
    expect(r.out).toMatch(/manifest: 4 entries/);
    expect(r.out).toMatch(/4 regions \(\d+ bytes\) checked, 0 mismatches/);
    expect(r.code).toBe(0);

    flipByte(MANIFEST_OFF + 100);
    fs.rmSync(`${dir}/wl`, { recursive: true, force: true });
    const damaged = await bb('verify_previous x');
    expect(damaged.code).not.toBe(0);
    expect(damaged.out).toMatch(/manifest (checksum mismatch|has \d+ entries)/);
    expect((await imageCheck()).code).not.toBe(0);
  }, 60_000);
});
