// NBD disks end to end with real servers: qemu-nbd on a unix socket and nbdkit's memory plugin
// over loopback TCP. The guest's verifying workload goes on across a SIGKILL of xenblkd with NBD
// requests in flight and across a lost server that comes back (a stall, not an error); a server
// that stays away past --storage-timeout gives I/O errors, never wrong data; an unreachable target
// fails the device with one line in hotplug-error and the guest never sees a half-open disk.
import * as fs from 'node:fs';
import * as path from 'node:path';
import type { ChildProcess } from 'node:child_process';
import { attachDisk } from '../../../src/toolstack/disk';
import { expectClean } from '../../dataplane/support/expect-clean';
import { DiskModel } from '../../../src/sim/guest';
import { SMALL_WORKLOAD, daemonWorld, until, type DaemonWorld, type Disk } from '../support/daemon-world';
import { QemuNbd, nbdkitMemory } from './support';

jest.setTimeout(120_000);

// A discard is advisory (blkif, NBD trim, qcow2 clusters): discarded sectors may keep their data.
const WORKLOAD = { ...SMALL_WORKLOAD, mix: { read: 5, write: 4, flush: 1, discard: 0.5 }, queueDepth: 16, discardZeroes: false };

describe('NBD disks', () => {
  let world: DaemonWorld | undefined;
  let server: QemuNbd | undefined;
  let nbdkit: ChildProcess | undefined;
  afterEach(async () => {
    await world?.close();
    await server?.kill();
    nbdkit?.kill('SIGKILL');
    world = undefined;
  });

  async function qemuNbdWorld(extraArgs: string[] = []): Promise<DaemonWorld> {
    return daemonWorld({
      http: false,
      extraArgs,
      target: async (domid, dir, bytes) => {
        const file = path.join(dir, `guest${domid}.img`);
        fs.writeFileSync(file, '');
        fs.truncateSync(file, bytes);
        server = new QemuNbd(file, path.join(dir, `guest${domid}.nbd.sock`));
        await server.start();
        return `nbd:unix:${server.socket}`;
      },
    });
  }

  it('goes on across a SIGKILL of xenblkd with requests in flight and across a lost qemu-nbd that comes back', async () => {
    world = await qemuNbdWorld();
    const disk = world.disks[0]!;
    const run1 = world.workload(disk, { ...WORKLOAD, durationMs: 3000, ops: 0 });
    await new Promise((r) => setTimeout(r, 700));
    await world.daemon.kill();
    await world.daemon.start();
    expectClean(await run1);

    const run2 = world.workload(disk, { ...WORKLOAD, durationMs: 4000, ops: 0 });
    await new Promise((r) => setTimeout(r, 700));
    const killedAt = Date.now();
    await server!.kill();
    await new Promise((r) => setTimeout(r, 1500));
    await server!.start();
    const r2 = await run2;
    expectClean(r2);
    if (r2.longestStallMs <= 1000) throw new Error(`stall ${r2.longestStallMs} ms, ops ${r2.ops}, killed ${killedAt}; log: ${fs.readFileSync(path.join(world.dir, 'daemon.log'), 'utf8').split('\n').filter((l) => /nbd|lost|back/i.test(l)).slice(-5).join('\n')}`);
    const log = fs.readFileSync(path.join(world.dir, 'daemon.log'), 'utf8');
    expect(log).toMatch(/nbd/i);
  });

  it('fails requests with an I/O error, never wrong data, when the server stays away past --storage-timeout', async () => {
    world = await qemuNbdWorld(['--storage-timeout', '2']);
    const disk = world.disks[0]!;
    expectClean(await world.workload(disk, { ...WORKLOAD, ops: 200 }));
    await server!.kill();
    const r = await world.workload(disk, { ...WORKLOAD, ops: 50, stallTimeoutMs: 30_000 });
    expect(r.errors).toBeGreaterThan(0);
    expect({ mismatches: r.mismatches, lost: r.lost, duplicated: r.duplicated }).toEqual({ mismatches: 0, lost: 0, duplicated: 0 });
    // Back: new requests succeed again.
    await server!.start();
    await until(async () => (await world!.workload(disk, { ...WORKLOAD, ops: 20, verify: false })).errors === 0, 'I/O to succeed again', 30_000);
  });

  it('serves an nbdkit memory export over loopback TCP, and refuses an unreachable target with one line', async () => {
    world = await daemonWorld({ http: false });
    const port = 20000 + (process.pid % 20000);
    nbdkit = await nbdkitMemory(32 << 20, port);
    // xvdb is device 51728: known before the attach, so the guest's queue is caught as it connects.
    const memDisk: Disk = { key: '1/51728', domid: 1, devid: 51728, image: 'nbdkit', queues: 0, model: new DiskModel(0, (32 << 20) / 512) };
    world.disks.push(memDisk);
    const good = await attachDisk(world.toolstack, { frontendDomid: 1, vdev: 'xvdb', image: `nbd://127.0.0.1:${port}/` });
    expect(good.devid).toBe(51728);
    await until(() => memDisk.queue !== undefined, 'the nbdkit disk to connect', 20_000);
    expectClean(await world.workload(memDisk, { ...WORKLOAD, ops: 400 }));

    const bad = await attachDisk(world.toolstack, { frontendDomid: 1, vdev: 'xvdc', image: `nbd:unix:${path.join(world.dir, 'nobody-listens.sock')}` });
    await until(async () => (await world!.toolstack.tryRead(`${bad.backendPath}/hotplug-status`)) === 'error', 'the unreachable disk to fail', 20_000);
    const why = (await world.toolstack.read(`${bad.backendPath}/hotplug-error`)) ?? '';
    expect(why).toMatch(/nobody-listens\.sock/);
    expect(why).not.toContain('\n');
    // The guest never saw it connect.
    expect(await world.toolstack.tryRead(`${bad.frontendPath}/state`)).not.toBe('4');
    expect(await world.toolstack.tryRead(`${bad.backendPath}/state`)).not.toBe('4');
  });
});
