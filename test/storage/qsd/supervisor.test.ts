// The qsd supervisor against the real qemu-storage-daemon and qemu-img: images served and
// written over NBD, start errors as one line with no daemon left, a killed daemon restarted,
// reconcile, and a record whose pid now belongs to another process.
import { execFileSync, spawn } from 'node:child_process';
import * as fs from 'node:fs';
import { StorageError } from '../../../src/io/storage/errors';
import { FileQsdJournal, qsdId } from '../../../src/io/storage/qsd';
import type { QsdFormat } from '../../../src/io/storage/target';
import { check, cleanup, daemonsNaming, env, image, readBack, supervisor, until, writeRandom } from './support/fixture';

afterEach(cleanup);

const MiB = 1024 * 1024;

async function startError(p: Promise<unknown>): Promise<StorageError> {
  const e = await p.then(
    () => null,
    (err: unknown) => err,
  );
  expect(e).toBeInstanceOf(StorageError);
  expect((e as Error).message).not.toContain('\n');
  return e as StorageError;
}

test('a qcow2 image is served, written with random data, read back, and checks clean after a graceful stop', async () => {
  const e = env();
  const p = image(e, 'qcow2', 64);
  const s = supervisor(e);
  const r = await s.ensure({ driver: 'qsd', format: 'qcow2', path: p }, false);
  expect(r.id).toBe(qsdId(`qcow2:${p}`));
  expect(daemonsNaming(p)).toEqual([r.pid]);
  expect(await e.journal.list()).toEqual([r]);
  // O_DIRECT works on this file system: the daemon was asked for it.
  expect(fs.readFileSync(`/proc/${r.pid}/cmdline`, 'utf8')).toContain('cache.direct=on,aio=native');

  const a = writeRandom(e, r, 0, 1 * MiB);
  const b = writeRandom(e, r, 37 * MiB + 4096, 3 * MiB);
  expect(readBack(e, r, 0, MiB).equals(a)).toBe(true);
  expect(readBack(e, r, 37 * MiB + 4096, 3 * MiB).equals(b)).toBe(true);
  // ensure() again: the same daemon.
  expect((await s.ensure({ driver: 'qsd', format: 'qcow2', path: p }, false)).pid).toBe(r.pid);

  await s.stop(r.id);
  // Quit over QMP: no SIGTERM, no SIGKILL was needed.
  expect(e.lines.filter((l) => !l.startsWith('info'))).toEqual([]);
  expect(daemonsNaming(p)).toEqual([]);
  expect(await e.journal.list()).toEqual([]);
  expect(fs.existsSync(r.socket)).toBe(false);
  expect(check(p, 'qcow2')).toMatchObject({ status: 0 });
  // The bytes are in the qcow2 file itself.
  const raw = `${e.root}/flat.raw`;
  execFileSync('qemu-img', ['convert', '-f', 'qcow2', '-O', 'raw', p, raw]);
  const flat = fs.readFileSync(raw);
  expect(flat.subarray(0, MiB).equals(a)).toBe(true);
  expect(flat.subarray(37 * MiB + 4096, 40 * MiB + 4096).equals(b)).toBe(true);
});

test.each<QsdFormat>(['vhdx', 'vmdk', 'vpc'])('a %s image is served, written and read back', async (format) => {
  const e = env();
  const p = image(e, format, 32);
  const s = supervisor(e);
  const r = await s.ensure({ driver: 'qsd', format, path: p }, false);
  const data = writeRandom(e, r, 5 * MiB, 256 * 1024);
  expect(readBack(e, r, 5 * MiB, 256 * 1024).equals(data)).toBe(true);
  await s.stop(r.id);
  const c = check(p, format);
  // vpc has no consistency check in qemu-img (status 63); the others must be clean.
  expect(c.status === 0 || (format === 'vpc' && c.status === 63)).toBe(true);
});

test('a read-only export refuses writes; asking read-write restarts the daemon writable', async () => {
  const e = env();
  const p = image(e, 'qcow2', 16);
  const s = supervisor(e);
  const ro = await s.ensure({ driver: 'qsd', format: 'qcow2', path: p }, true);
  expect(() => writeRandom(e, ro, 0, 4096)).toThrow();
  const rw = await s.ensure({ driver: 'qsd', format: 'qcow2', path: p }, false);
  expect(rw.pid).not.toBe(ro.pid);
  expect(rw.readOnly).toBe(false);
  expect(daemonsNaming(p)).toEqual([rw.pid]);
  writeRandom(e, rw, 0, 4096);
  await s.stop(rw.id);
  expect(check(p, 'qcow2').status).toBe(0);
});

test('start errors are one line and leave no daemon: binary, image, format, header, lock', async () => {
  const e = env();
  const s = supervisor(e);
  const missingBinary = await startError(supervisor(e, { binary: '/nonexistent/qemu-storage-daemon' }).ensure({ driver: 'qsd', format: 'qcow2', path: image(e, 'qcow2', 1) }, false));
  expect(missingBinary.message).toBe('/nonexistent/qemu-storage-daemon not found: apt-get install qemu-system-common qemu-block-extra');

  const missing = await startError(s.ensure({ driver: 'qsd', format: 'qcow2', path: `${e.root}/nope.qcow2` }, false));
  expect(missing.code).toBe('ENOENT');
  expect(missing.message).toBe(`image ${e.root}/nope.qcow2 not found`);

  const junk = `${e.root}/junk.qcow2`;
  fs.writeFileSync(junk, Buffer.alloc(MiB, 0x5a));
  const notFormat = await startError(s.ensure({ driver: 'qsd', format: 'qcow2', path: junk }, false));
  expect(notFormat.code).toBe('EINVAL');
  expect(notFormat.message).toBe(`image qcow2:${junk}: qemu-storage-daemon: Image is not in qcow2 format`);

  // A qcow2 header claiming version 9.
  const corrupt = image(e, 'qcow2', 1, 'corrupt.qcow2');
  const fd = fs.openSync(corrupt, 'r+');
  fs.writeSync(fd, Buffer.from([0, 0, 0, 9]), 0, 4, 4);
  fs.closeSync(fd);
  const bad = await startError(s.ensure({ driver: 'qsd', format: 'qcow2', path: corrupt }, false));
  expect(bad.message).toMatch(new RegExp(`^image qcow2:${corrupt}: qemu-storage-daemon: .*version 9`));

  // QEMU locks the image: a second xenblkd's daemon (its own state and journal) cannot open it.
  const shared = image(e, 'qcow2', 4, 'shared.qcow2');
  const first = await s.ensure({ driver: 'qsd', format: 'qcow2', path: shared }, false);
  const locked = await startError(supervisor(e, { dir: `${e.root}/other`, journal: new FileQsdJournal(`${e.root}/other.json`) }).ensure({ driver: 'qsd', format: 'qcow2', path: shared }, false));
  expect(locked.code).toBe('EBUSY');
  expect(locked.message).toMatch(/Failed to get "write" lock \(Is another process using the image/);
  // The first one still serves; nothing else runs.
  expect(daemonsNaming(shared)).toEqual([first.pid]);
  expect(fs.existsSync(first.socket)).toBe(true);
  expect(daemonsNaming(e.root)).toEqual([first.pid]);
  expect((await e.journal.list()).map((r) => r.id)).toEqual([first.id]);
});

test('a SIGKILLed daemon is restarted within about a second, with one log line, data intact', async () => {
  const e = env();
  const p = image(e, 'qcow2', 16);
  const s = supervisor(e);
  const r = await s.ensure({ driver: 'qsd', format: 'qcow2', path: p }, false);
  const data = writeRandom(e, r, MiB, 64 * 1024);
  process.kill(r.pid, 'SIGKILL');
  const took = await until('a new daemon', () => {
    const pids = daemonsNaming(p);
    return pids.length === 1 && pids[0] !== r.pid && fs.existsSync(r.socket) && s.record(r.id)?.pid === pids[0];
  });
  expect(took).toBeLessThan(1500);
  const again = s.record(r.id)!;
  expect(s.status()).toEqual([{ record: again, state: 'running', recentDeaths: 1, lastFailure: 'killed by SIGKILL' }]);
  expect((await e.journal.list()).map((x) => x.pid)).toEqual([again.pid]);
  expect(e.lines.filter((l) => l.startsWith('warn')).length).toBe(1);
  expect(e.lines.some((l) => /died \(killed by SIGKILL\): restarting it in 100 ms/.test(l))).toBe(true);
  expect(readBack(e, again, MiB, 64 * 1024).equals(data)).toBe(true);
  await s.stop(r.id);
  expect(check(p, 'qcow2').status).toBe(0);
});

test('a crash loop gives up with one error line', async () => {
  const e = env();
  const p = image(e, 'qcow2', 4);
  const s = supervisor(e);
  const r = await s.ensure({ driver: 'qsd', format: 'qcow2', path: p }, false);
  // The image goes away: every restart fails at start.
  fs.renameSync(p, `${p}.away`);
  process.kill(r.pid, 'SIGKILL');
  await until('the supervisor to give up', () => e.lines.some((l) => l.startsWith('error')), 8000);
  expect(e.lines.filter((l) => l.startsWith('error'))).toEqual([
    expect.stringMatching(new RegExp(`^error qsd ${r.id} \\(qcow2:${p}\\) died 5 times within 60 s \\(last: restart failed: image ${p} not found\\): not restarting it`)),
  ]);
  expect(e.lines.filter((l) => l.startsWith('warn')).length).toBe(4);
  expect(daemonsNaming(e.root)).toEqual([]);
  expect(s.status()).toEqual([expect.objectContaining({ state: 'gave-up', recentDeaths: 5, lastFailure: `restart failed: image ${p} not found` })]);
  // Once the image is back, ensure() starts it again.
  fs.renameSync(`${p}.away`, p);
  const back = await s.ensure({ driver: 'qsd', format: 'qcow2', path: p }, false);
  expect(daemonsNaming(p)).toEqual([back.pid]);
});

test('reconcile stops the recorded daemons no device wants', async () => {
  const e = env();
  const s = supervisor(e);
  const keep = await s.ensure({ driver: 'qsd', format: 'qcow2', path: image(e, 'qcow2', 4, 'keep.qcow2') }, false);
  const byTarget = await s.ensure({ driver: 'qsd', format: 'vmdk', path: image(e, 'vmdk', 4, 'target.vmdk') }, true);
  const drop = await s.ensure({ driver: 'qsd', format: 'qcow2', path: image(e, 'qcow2', 4, 'drop.qcow2') }, false);
  expect(await s.reconcile(new Set([keep.id, byTarget.target]))).toEqual([drop.id]);
  expect(daemonsNaming(e.root).sort()).toEqual([keep.pid, byTarget.pid].sort());
  expect((await e.journal.list()).map((r) => r.id).sort()).toEqual([keep.id, byTarget.id].sort());
  expect(check(`${e.root}/drop.qcow2`, 'qcow2').status).toBe(0);
});

test('a record whose pid now belongs to another process is not adopted, and that process is left alone', async () => {
  const e = env();
  const p = image(e, 'qcow2', 4);
  const other = spawn('sleep', ['60'], { stdio: 'ignore' });
  try {
    const spec = { driver: 'qsd', format: 'qcow2', path: p } as const;
    const id = qsdId(`qcow2:${p}`);
    await e.journal.started({ id, target: `qcow2:${p}`, readOnly: false, socket: `${e.dir}/${id}.nbd.sock`, pid: other.pid!, startedAt: 1 });
    const s = supervisor(e);
    const { adopted, restarted } = await s.adoptAll();
    expect(adopted).toEqual([]);
    expect(restarted).toHaveLength(1);
    expect(restarted[0]!.pid).not.toBe(other.pid);
    expect(daemonsNaming(p)).toEqual([restarted[0]!.pid]);
    expect(other.exitCode).toBeNull();
    expect(fs.existsSync(`/proc/${other.pid}`)).toBe(true);
    // ensure() now finds the restarted one.
    expect((await s.ensure(spec, false)).pid).toBe(restarted[0]!.pid);
    // stop() of a record whose pid is another process's signals nothing.
    await e.journal.started({ ...restarted[0]!, pid: other.pid! });
    s.close();
    const s2 = supervisor(e);
    await s2.stop(id);
    expect(other.exitCode).toBeNull();
    expect(fs.existsSync(`/proc/${other.pid}`)).toBe(true);
  } finally {
    other.kill('SIGKILL');
  }
});

test('a daemon running unrecorded (xenblkd died before recording it) is adopted through its pid file, or reconciled away', async () => {
  const e = env();
  const p = image(e, 'qcow2', 4);
  const q = image(e, 'vhdx', 4);
  const first = supervisor(e);
  const a = await first.ensure({ driver: 'qsd', format: 'qcow2', path: p }, true);
  const b = await first.ensure({ driver: 'qsd', format: 'vhdx', path: q }, false);
  first.close();
  await e.journal.stopped(a.id);
  await e.journal.stopped(b.id);

  const s = supervisor(e);
  expect((await s.adoptAll()).adopted).toEqual([]);
  const again = await s.ensure({ driver: 'qsd', format: 'qcow2', path: p }, true);
  expect(again).toMatchObject({ pid: a.pid, readOnly: true, socket: a.socket });
  expect(daemonsNaming(p)).toEqual([a.pid]);
  expect(e.lines.some((l) => l.startsWith('warn') && l.includes('running unrecorded'))).toBe(true);
  // b is in no journal: reconcile finds it through its pid file and stops it.
  expect(await s.reconcile(new Set([`qcow2:${p}`]))).toEqual([b.id]);
  expect(daemonsNaming(q)).toEqual([]);
  expect(daemonsNaming(p)).toEqual([a.pid]);
  expect(check(q, 'vhdx').status).toBe(0);
});

test('where O_DIRECT is refused (ramfs) the daemon runs buffered with thread-pool I/O', async () => {
  const e = env();
  // tmpfs takes O_DIRECT on recent kernels; ramfs does not.
  const mnt = `${e.root}/ramfs`;
  fs.mkdirSync(mnt);
  execFileSync('mount', ['-t', 'ramfs', 'none', mnt]);
  try {
    const p = `${mnt}/disk.qcow2`;
    execFileSync('qemu-img', ['create', '-q', '-f', 'qcow2', p, '8M']);
    const s = supervisor(e);
    const r = await s.ensure({ driver: 'qsd', format: 'qcow2', path: p }, false);
    expect(fs.readFileSync(`/proc/${r.pid}/cmdline`, 'utf8')).toContain(`driver=file,node-name=proto,filename=${p},cache.direct=off,aio=threads`);
    const data = writeRandom(e, r, 4096, 8192);
    expect(readBack(e, r, 4096, 8192).equals(data)).toBe(true);
    await s.stop(r.id);
    expect(check(p, 'qcow2').status).toBe(0);
  } finally {
    execFileSync('umount', ['-l', mnt]);
  }
});

test('a qcow2 on a block device (a loop device) is served through host_device', async () => {
  const e = env();
  const backing = `${e.root}/loop.img`;
  fs.writeFileSync(backing, '');
  fs.truncateSync(backing, 32 * MiB);
  const dev = execFileSync('losetup', ['-f', '--show', backing], { encoding: 'utf8' }).trim();
  try {
    execFileSync('qemu-img', ['create', '-q', '-f', 'qcow2', dev, '16M']);
    const s = supervisor(e);
    const r = await s.ensure({ driver: 'qsd', format: 'qcow2', path: dev }, false);
    expect(fs.readFileSync(`/proc/${r.pid}/cmdline`, 'utf8')).toContain(`driver=host_device,node-name=proto,filename=${dev},`);
    const data = writeRandom(e, r, 2 * MiB, 128 * 1024);
    expect(readBack(e, r, 2 * MiB, 128 * 1024).equals(data)).toBe(true);
    await s.stop(r.id);
    expect(check(dev, 'qcow2').status).toBe(0);
  } finally {
    execFileSync('losetup', ['-d', dev]);
  }
});
