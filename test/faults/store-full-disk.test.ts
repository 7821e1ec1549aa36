// A state folder filled to the last byte under live, verified guest I/O: connected guests keep
// going, a disk hot-added meanwhile waits visibly (hotplug-error, ls, /metrics), a SIGKILLed
// daemon restarts on the full folder without moving the store aside, and once space is freed
// the waiting disk connects by itself. Real tmpfs, real daemon process, real SIGKILL.
import * as fs from 'node:fs';
import { fillToLastByte, mountTmpfs } from './store-fs';
import type { WorkloadReport } from '../../src/sim/guest/workload';
import { type Disk, type StoreWorld, sample, storeWorld, until } from './store-world';

jest.setTimeout(90_000);

describe('a state folder filled to the last byte', () => {
  let world: StoreWorld | undefined;
  let unmount: (() => void) | undefined;
  afterEach(async () => {
    await world?.close();
    unmount?.();
    if (world) fs.rmSync(world.dir, { recursive: true, force: true });
  });

  it('keeps guests serving, makes a new disk wait visibly, survives a SIGKILL, and resumes when space returns', async () => {
    world = await storeWorld({ guests: 2, prepare: (stateDir) => (unmount = mountTmpfs(stateDir, 16 << 20)) });
    const w = world;
    const first = await w.attach(1);
    await until(() => first.queue !== undefined, 'the first disk to connect');
    const reports: WorkloadReport[] = [];
    /** Waits for `ops` more answered (and verified) requests of the disk's running workload. */
    const progress = (disk: Disk, ops: number, what: string) => {
      const from = disk.ops;
      return until(() => disk.ops >= from + ops, `${ops} more verified requests on ${disk.key} ${what}`);
    };
    // One verifying workload on the first disk for the whole test: live across the fault and both SIGKILLs.
    const stopFirst = new AbortController();
    const live = w.workload(first, stopFirst.signal);
    await progress(first, 200, 'before the fault');

    const filler = fillToLastByte(w.stateDir);
    expect(fs.statfsSync(w.stateDir).bavail).toBe(0);
    // The crash comes after the fault; the restart finds the folder full, and serves.
    const firstPid = w.daemon.pid;
    await w.daemon.kill();
    await w.daemon.start();
    expect(w.log().filter((l) => l.pid === w.daemon.pid && /refuses writes \(ENOSPC\)/.test(l.msg))).toHaveLength(1);
    await progress(first, 200, 'after the restart on the full folder');

    const hotAdded = await w.attach(2);
    await until(async () => ((await w.toolstack.tryRead(`${hotAdded.backendPath}/hotplug-error`)) ?? '').includes('ENOSPC'), 'hotplug-error on the waiting disk');
    const listing = await w.ls();
    expect(listing.status).toBe(0);
    expect(listing.stdout).toMatch(new RegExp(`${hotAdded.key}\\s+waiting-for-store`));
    expect(listing.stderr).toMatch(/EVENT STORE: the state folder refuses writes \(ENOSPC\).*1 new device\(s\) waiting: 2\/51712/);
    const m = await w.metrics();
    expect(sample(m, 'xenblkd_event_store_writable')).toBe(0);
    expect(sample(m, 'xenblkd_devices_waiting_for_store')).toBe(1);
    expect(sample(m, 'xenblkd_event_store_write_failures_total')).toBeGreaterThan(0);
    // The connected guest keeps going meanwhile; the new disk does not connect.
    await progress(first, 200, 'while the new disk waits');
    expect(await w.toolstack.tryRead(`${hotAdded.frontendPath}/state`)).not.toBe('4');
    expect(fs.readdirSync(w.stateDir).filter((n) => n.includes('corrupt'))).toEqual([]);
    expect(w.log().some((l) => /moved aside/.test(l.msg))).toBe(false);

    // Killed again while the new disk waits: the restart must not wait for it, and it still waits.
    const waitingPid = w.daemon.pid;
    await w.daemon.kill();
    await w.daemon.start();
    await progress(first, 200, 'after a restart while a disk waits');
    await until(async () => (await w.ls()).stdout.includes('waiting-for-store'), 'the disk to wait again after the restart');
    expect(((await w.toolstack.tryRead(`${hotAdded.backendPath}/hotplug-error`)) ?? '')).toMatch(/waiting to start this device: the state folder refuses writes \(ENOSPC\)/);

    fs.rmSync(filler);
    await until(() => hotAdded.queue !== undefined, 'the waiting disk to connect once space returned', 15_000);
    expect(await w.toolstack.tryRead(`${hotAdded.backendPath}/hotplug-error`)).toBeUndefined();
    expect(sample(await w.metrics(), 'xenblkd_event_store_writable')).toBe(1);
    expect((await w.ls()).stderr).not.toMatch(/EVENT STORE/);
    const stopAdded = new AbortController();
    const added = w.workload(hotAdded, stopAdded.signal);
    await progress(hotAdded, 200, 'once it connected');
    await progress(first, 100, 'once space returned');
    // One line when the fault started and one when it ended: not one per write.
    const lines = w.log();
    const inRun = (pid: number | undefined, re: RegExp) => lines.filter((l) => l.pid === pid && re.test(l.msg)).length;
    expect(inRun(firstPid, /refuses writes/)).toBe(0);
    expect(inRun(waitingPid, /refuses writes/)).toBe(1);
    expect(inRun(waitingPid, /^the event store takes writes again/)).toBe(0);
    expect(inRun(w.daemon.pid, /refuses writes/)).toBe(1);
    expect(inRun(w.daemon.pid, /^the event store takes writes again/)).toBe(1);
    // What the second run stored once it could is there for the next start: both disks.
    await w.daemon.kill();
    await w.daemon.start();
    expect(w.log().find((l) => l.pid === w.daemon.pid && /serving backend/.test(l.msg))?.msg).toMatch(/2 device\(s\) recovered/);
    await progress(hotAdded, 100, 'after the last restart');
    await progress(first, 100, 'after the last restart');
    stopFirst.abort();
    stopAdded.abort();
    reports.push(await live, await added);
    for (const r of reports) {
      expect(r.checkedSectors).toBeGreaterThan(0);
      expect({ errors: r.errors, mismatches: r.mismatches, lost: r.lost, duplicated: r.duplicated }).toEqual({ errors: 0, mismatches: 0, lost: 0, duplicated: 0 });
    }
  });
});
