// A qcow2 disk end to end: the shipped daemon serves it through a qemu-storage-daemon it starts
// and supervises; the guest's verifying workload goes on across a SIGKILL of xenblkd (the storage
// daemon is adopted, not restarted) and across a SIGKILL of the storage daemon (restarted); the
// storage daemon stops with the disk; `qemu-img check` is clean after.
import * as fs from 'node:fs';
import * as path from 'node:path';
import { deviceIdentity } from '../../../src/machines';
import { detachDisk } from '../../../src/toolstack/disk';
import { expectClean } from '../../dataplane/support/expect-clean';
import { SMALL_WORKLOAD, daemonWorld, until, type DaemonWorld } from '../support/daemon-world';
import { expectCleanImage, pidsOf, qemuImg } from './support';

jest.setTimeout(120_000);

// A discard is advisory (blkif, NBD trim, qcow2 clusters): discarded sectors may keep their data.
const WORKLOAD = { ...SMALL_WORKLOAD, mix: { read: 5, write: 4, flush: 1, discard: 0.5 }, queueDepth: 16, discardZeroes: false };

describe('a qcow2 disk served through qemu-storage-daemon', () => {
  let world: DaemonWorld;
  let image: string;
  afterEach(async () => {
    // A stopped daemon leaves its storage daemons serving (by design): a test that failed midway
    // must not leave them behind.
    const strays = world ? pidsOf('qemu-storage-daemon', world.dir) : [];
    await world?.close();
    for (const pid of strays) process.kill(pid, 'SIGTERM');
  });

  it('survives SIGKILLs of xenblkd (adopted) and of the storage daemon (restarted); stops with the disk; qemu-img check is clean', async () => {
    world = await daemonWorld({
      http: false,
      target: (domid, dir, bytes) => {
        image = path.join(dir, `guest${domid}.qcow2`);
        qemuImg(['create', '-q', '-f', 'qcow2', image, String(bytes)]);
        return `qcow2:${image}`;
      },
    });
    const disk = world.disks[0]!;
    const qsd = () => pidsOf('qemu-storage-daemon', world.stateDir);
    expect(qsd()).toHaveLength(1);
    const first = qsd()[0];
    expect(await world.toolstack.read(`/local/domain/0/backend/vbd/1/${disk.devid}/params`)).toBe(`qcow2:${image}`);

    // xenblkd SIGKILLed with requests in flight: the storage daemon lives on and is adopted.
    const run1 = world.workload(disk, { ...WORKLOAD, durationMs: 3000, ops: 0 });
    await new Promise((r) => setTimeout(r, 700));
    await world.daemon.kill();
    expect(qsd()).toEqual([first]);
    await world.daemon.start();
    expectClean(await run1);
    expect(qsd()).toEqual([first]);

    // The storage daemon SIGKILLed under I/O: restarted by the supervisor, the guest only stalls.
    const run2 = world.workload(disk, { ...WORKLOAD, durationMs: 3000, ops: 0 });
    await new Promise((r) => setTimeout(r, 700));
    process.kill(first, 'SIGKILL');
    await until(() => qsd().length === 1 && qsd()[0] !== first, 'the storage daemon to be restarted', 15_000);
    expectClean(await run2);
    expect(fs.readFileSync(path.join(world.dir, 'daemon.log'), 'utf8')).toMatch(/qsd .* died \((SIGKILL|gone)\): restarting it/);

    // The disk goes: so does its storage daemon.
    await detachDisk(world.toolstack, deviceIdentity({ backendDomid: 0, frontendDomid: 1, devid: disk.devid, backendType: 'vbd' }), { timeoutMs: 20_000 });
    await until(() => qsd().length === 0, 'the storage daemon to stop with its disk', 20_000);
    expectCleanImage(image);
  });
});
