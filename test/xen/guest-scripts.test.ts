// The harness's verification logic, run by busybox sh as in the guests and dom0: the domU
// workload's writes, manifest and read-back (scripts/xen/domu/disk.sh) and dom0's check of the
// image file (scripts/xen/dom0/xenblkd.sh), on a regular file standing in for /dev/xvda, with
// xenstore-utils talking to the embedded xenstored. Corruption must be caught on both sides.
import { execFileSync, spawn } from 'node:child_process';
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
    const round = 4096 + 45056 + 1048576 + 8388608;
    expect(console_()).toContain(`XENTEST INFO domu-bytes-verified ${round}`);
    expect(console_()).toContain(`XENTEST INFO domu-fresh-bytes-verified ${round}`);
    expect(await xs.read('/local/domain/0/data/xentest/fresh')).toBe(String(round));
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

  it('goes on after stop until it verified the fresh bytes asked for, in the slots its scenario gives', async () => {
    fs.rmSync(`${dir}/wl`, { recursive: true, force: true });
    await xs.write('/local/domain/0/data/xentest/stop', '1');
    // 2 rounds of 3 small writes at least: the byte target, not stop, ends the workload
    const r = await bb('SIZES="4096 8192 12288"; SLOT_FIRST=20; workload x 1 until-stop 40000');
    expect(r.code).toBe(0);
    expect(r.out).toMatch(/^2 rounds, \d+ probe reads$/m);
    expect(console_()).toContain('XENTEST INFO domu-fresh-bytes-verified 49152');
    const slots = fs.readdirSync(`${dir}/wl`).filter((f) => f.startsWith('slot.')).map((f) => Number(f.slice(5))).sort((a, b) => a - b);
    // slots 20..25 written; 23 (discarded after round 1) written again in round 2; 26 discarded
    expect(slots).toEqual([20, 21, 22, 23, 24, 25]);
    // a sample: every 4th region in offset order, from the first
    const sample = await bb('verify x sample 4');
    expect(sample.out).toContain('2 of 6 regions (12288 bytes) checked, 0 mismatches');
    expect(console_()).toContain('XENTEST INFO domu-verified-sample 2 of 6 regions, 12288 bytes');
    await xs.rm('/local/domain/0/data/xentest/stop');
  }, 60_000);
});

describe('the kill point: a large write held until dom0 froze the daemon (busybox sh)', () => {
  const key = (k: string) => `/local/domain/0/data/xentest/${k}`;

  it('says which write comes next once dom0 armed a kill, and writes it only after dom0 said frozen', async () => {
    fs.rmSync(`${dir}/wl`, { recursive: true, force: true });
    await xs.write(key('frozen'), '0');
    await xs.write(key('kill-armed'), '1');
    const guest = bb('wl_init; put_pattern $(dev_of x) 3 1048576 direct && echo written');
    // dom0's side: wait for the announcement, check the write has not happened, then say frozen
    let io = '';
    for (let i = 0; i < 200 && !io.startsWith('write '); i++) {
      io = await xs.read(key('io')).then((b) => b.toString(), () => '');
      await new Promise((r) => setTimeout(r, 50));
    }
    expect(io).toBe('write 1048576 direct');
    expect(fs.existsSync(`${dir}/wl/slot.3`)).toBe(false);
    await xs.write(key('frozen'), '1');
    const r = await guest;
    expect(r.out).toContain('kill point: direct write of 1048576 bytes while dom0 froze the daemon');
    expect(r.out).toContain('written');
    expect(r.code).toBe(0);
    expect((await xs.read(key('kill-armed'))).toString()).toBe('0');
    expect((await xs.read(key('io'))).toString()).toBe('-');
    expect(fs.readFileSync(`${dir}/wl/slot.3`, 'utf8')).toMatch(/^\d+ 1048576 [0-9a-f]{64}\n$/);
  }, 60_000);

  it('does not stop writes below 1 MiB nor buffered ones, nor any write when no kill is armed', async () => {
    await xs.write(key('kill-armed'), '1');
    const small = await bb('wl_init; put_pattern $(dev_of x) 4 524288 direct && echo written');
    expect(small.out).not.toContain('kill point');
    const buffered = await bb('wl_init; put_pattern $(dev_of x) 6 1048576 fsync && put_pattern $(dev_of x) 7 1048576 sync && echo written');
    expect(buffered.out).not.toContain('kill point');
    expect(buffered.code).toBe(0);
    expect((await xs.read(key('kill-armed'))).toString()).toBe('1');
    await xs.write(key('kill-armed'), '0');
    const big = await bb('wl_init; put_pattern $(dev_of x) 5 1048576 sync && echo written');
    expect(big.out).not.toContain('kill point');
    expect(big.code).toBe(0);
  }, 60_000);
});

describe("dom0's check of the daemon's log after every step (busybox sh)", () => {
  const log = () => `${dir}/xenblkd.log`;
  const allow = () => `${dir}/allow`;
  const line = (level: number, msg: string) => JSON.stringify({ level, time: 1, pid: 7, msg }) + '\n';
  const check = (step: string) =>
    bb(`. ${XEN}/dom0/steps.sh; . ${XEN}/dom0/xenblkd.sh; XB_LOG=${log()}; XB_LOG_ALLOW=${allow()}; daemon_log_check ${step}`);

  beforeAll(() => {
    fs.rmSync(`${dir}/run/xenblkd-log-checked`, { force: true });
    fs.writeFileSync(allow(), '# comment\nkill-1\t"msg":"grant map failed"\tthe frozen daemon\'s mappings went with it\n');
    fs.writeFileSync(log(), line(30, 'serving backend/vbd') + line(50, 'grant map failed'));
  });

  it('lets through an error line allowed for its step, with the reason, and checks each line once', async () => {
    const r = await check('kill-1');
    expect(r.out).toContain("expected daemon error in kill-1 (the frozen daemon's mappings went with it)");
    expect(r.code).toBe(0);
    fs.appendFileSync(log(), line(40, 'a warning') + line(30, 'info'));
    const again = await check('kill-2');
    expect(again.out).toBe('');
    expect(again.code).toBe(0);
  }, 30_000);

  it('fails on an error or fatal line the step does not expect, also one allowed for another step', async () => {
    fs.appendFileSync(log(), line(50, 'grant map failed') + line(60, 'out of memory'));
    const r = await check('kill-2');
    expect(r.out).toContain('UNEXPECTED daemon error in kill-2: {"level":50');
    expect(r.out).toContain('UNEXPECTED daemon error in kill-2: {"level":60');
    expect(r.out).toMatch(/the daemon logged 2 error lines step kill-2 does not expect/);
    expect(r.code).not.toBe(0);
  }, 30_000);

  it('fails the step whose check fails, through the step runner', async () => {
    const scenario = `${dir}/scenario.sh`;
    fs.writeFileSync(scenario, 'fine() { echo all good; }\n');
    fs.appendFileSync(log(), line(50, 'disk on fire'));
    const r = await bb(
      `. ${XEN}/dom0/steps.sh; . ${XEN}/dom0/xenblkd.sh; XB_LOG=${log()}; XB_LOG_ALLOW=${allow()}; XT_LIB=${XEN}/guest/xentest.sh; XT_SCENARIO=${scenario}; xt_step s1 20 fine`,
    );
    expect(r.code).not.toBe(0);
    expect(console_()).toMatch(/XENTEST STEP s1 FAIL \S+ exit 97: the daemon logged 1 error lines step s1 does not expect/);
  }, 30_000);

  it('quick steps pass at once (the watchdog of a step that ended before its setsid is stopped too)', async () => {
    const scenario = `${dir}/quick.sh`;
    fs.writeFileSync(scenario, 'quick() { :; }\n');
    const t0 = Date.now();
    const r = await bb(`XT_LIB=${XEN}/guest/xentest.sh; XT_SCENARIO=${scenario}; i=0; while [ $i -lt 30 ]; do xt_step q$i 3 quick; i=$((i + 1)); done`);
    expect(r.code).toBe(0);
    expect(console_().match(/XENTEST STEP q\d+ PASS/g)).toHaveLength(30);
    expect(console_()).not.toMatch(/STEP q\d+ FAIL/);
    expect(Date.now() - t0).toBeLessThan(60_000);
  }, 120_000);

  it('the allow-list shipped with the scenario has a step, a pattern and a reason on every line', () => {
    const text = fs.readFileSync(`${XEN}/dom0/daemon-log-allow`, 'utf8');
    const steps = new Set(
      fs
        .readFileSync(`${XEN}/dom0/scenarios/real-xen.sh`, 'utf8')
        .split('\n')
        .map((l) => /^(?:run|always) (\S+)/.exec(l)?.[1])
        .filter(Boolean),
    );
    for (const l of text.split('\n')) {
      if (l === '' || l.startsWith('#')) continue;
      const [step, re, reason] = l.split('\t');
      expect(steps.has(step) || step === 'boot').toBe(true);
      expect(() => new RegExp(re)).not.toThrow();
      expect(reason?.length).toBeGreaterThan(10);
    }
  });
});

describe('a second disk in the same guest: its own workload state and facts (busybox sh)', () => {
  const key = (k: string) => `/local/domain/0/data/xentest/${k}`;

  it('next_workload resets the keys dom0 judges a workload by; own_wl keeps the first disk state and facts apart', async () => {
    fs.rmSync(`${dir}/wl`, { recursive: true, force: true });
    fs.rmSync(`${dir}/wl-xvdb`, { recursive: true, force: true });
    expect((await bb('SIZES="4096 8192"; workload x 1 && manifest_save x')).code).toBe(0);
    await xs.write(key('stop'), '1');
    const first = fs.readFileSync(`${dir}/wl/slot.0`, 'utf8');

    const reset = await bb('next_workload wait-qcow2');
    expect(reset.code).toBe(0);
    expect((await xs.read(key('stop'))).toString()).toBe('0');
    expect((await xs.read(key('ops'))).toString()).toBe('0');
    expect((await xs.read(key('phase'))).toString()).toBe('wait-qcow2');
    await expect(xs.read(key('manifest'))).rejects.toThrow();

    fs.writeFileSync(`${dir}/console`, '');
    const second = await bb('SIZES="4096 8192 12288"; own_wl workload xvdb 1');
    expect(second.code).toBe(0);
    expect(console_()).toContain('XENTEST INFO domu-xvdb-fresh-bytes-verified 24576');
    expect(console_()).toContain('XENTEST INFO domu-xvdb-rounds 1');
    expect(console_()).not.toMatch(/XENTEST INFO domu-(fresh|rounds|bytes)/);
    expect((await xs.read(key('ops'))).toString()).toBe('3');
    expect(fs.readdirSync(`${dir}/wl-xvdb`).filter((f) => f.startsWith('slot.'))).toHaveLength(3);
    // the first disk's state is untouched
    expect(fs.readFileSync(`${dir}/wl/slot.0`, 'utf8')).toBe(first);
    expect(fs.readFileSync(`${dir}/wl/fresh`, 'utf8').trim()).toBe('12288');
    const verified = await bb('own_wl verify xvdb qcow2');
    expect(verified.out).toContain('3 regions (24576 bytes) checked, 0 mismatches');
    expect(console_()).toContain('XENTEST INFO domu-xvdb-verified-qcow2 3 regions, 24576 bytes');
  }, 60_000);
});

describe("dom0's qcow2 steps: the image, its storage daemon, qemu-img check (busybox sh, real QEMU tools)", () => {
  const dom0 = (script: string) =>
    bb(`. ${XEN}/dom0/steps.sh; . ${XEN}/dom0/xenblkd.sh; . ${XEN}/dom0/qcow2.sh; DISK_DIR=${dir}/q; QCOW2_IMAGE=${dir}/q/disk1.qcow2; XB_STATE=${dir}/q\n${script}`);

  it('names disks by their xenstore device id', async () => {
    expect((await dom0('devid_of xvda; devid_of xvdb; devid_of xvdp')).out.split('\n').filter(Boolean)).toEqual(['51712', '51728', '51952']);
  });

  it('makes the image, finds the one qemu-storage-daemon serving it by its command line, and not itself', async () => {
    const made = await dom0('qcow2_prepare');
    expect(made.code).toBe(0);
    expect(console_()).toMatch(/XENTEST INFO qemu-storage-daemon-version qemu-storage-daemon version \d+/);
    const image = `${dir}/q/disk1.qcow2`;
    expect(fs.readFileSync(image).subarray(0, 4).toString('latin1')).toBe('QFI\xfb');
    expect((await dom0('qsd_pids')).out).toBe('');
    const qsd = spawn(
      'qemu-storage-daemon',
      [
        '--blockdev', `driver=file,node-name=f0,filename=${image}`,
        '--blockdev', 'driver=qcow2,node-name=d0,file=f0',
        '--nbd-server', `addr.type=unix,addr.path=${dir}/q/nbd.sock`,
        '--export', 'type=nbd,id=e0,node-name=d0,writable=on',
      ],
      { stdio: 'ignore' },
    );
    try {
      for (let i = 0; i < 100 && !fs.existsSync(`${dir}/q/nbd.sock`); i++) await new Promise((r) => setTimeout(r, 50));
      const found = await dom0('qsd_pids; qsd_identity $(qsd_pids)');
      const [pids, identity] = found.out.trim().split('\n');
      expect(pids).toBe(String(qsd.pid));
      expect(identity).toMatch(new RegExp(`^${qsd.pid} \\d+$`));
    } finally {
      qsd.kill('SIGKILL');
      await new Promise((r) => qsd.once('exit', r));
    }
    expect((await dom0('qsd_pids')).out).toBe('');
  }, 30_000);

  it("checks the image with qemu-img and the guest's manifest in it, and fails on a damaged one", async () => {
    // the raw test image holds the regions and manifest of the last workload: as a qcow2 image
    fs.rmSync(`${dir}/wl`, { recursive: true, force: true });
    expect((await bb('SIZES="4096 45056"; workload x 1 && manifest_save x')).code).toBe(0);
    const qcow2 = `${dir}/q/disk1.qcow2`;
    execFileSync('qemu-img', ['convert', '-f', 'raw', '-O', 'qcow2', image, qcow2]);
    const good = await dom0('qcow2_image_check');
    expect(good.out).toContain('No errors were found on the image.');
    expect(good.out).toMatch(/2 regions \(49152 bytes\) of the image match the guest's manifest, 0 do not/);
    expect(good.code).toBe(0);
    expect(fs.existsSync(`${dir}/q/disk1.raw`)).toBe(false);

    // zero the first refcount block: every cluster is then referenced with refcount 0
    const fd = fs.openSync(qcow2, 'r+');
    const u64 = (at: number) => {
      const b = Buffer.alloc(8);
      fs.readSync(fd, b, 0, 8, at);
      return Number(b.readBigUInt64BE());
    };
    const block = u64(u64(48));
    fs.writeSync(fd, Buffer.alloc(512), 0, 512, block);
    fs.closeSync(fd);
    const bad = await dom0('qcow2_image_check');
    expect(bad.out).toMatch(/ERROR/);
    expect(bad.out).toMatch(/qemu-img check exited with [1-9]/);
    expect(bad.code).not.toBe(0);
  }, 60_000);
});
