// The daemon on a read-only state folder and on damaged store files, with verified guest I/O
// around a SIGKILL and a restart: it always starts and serves; a store it cannot write is never
// moved aside; a corrupt one is moved aside once (at most 3 old copies kept) and rebuilt from
// xenstore, the devices adopted live. Real LevelDB files, real bind mount, real SIGKILL.
import * as fs from 'node:fs';
import * as path from 'node:path';
import type { WorkloadReport } from '../../src/sim/guest/workload';
import { bindReadOnly, damage, levelFile, type DamageKind, type LevelFileKind } from './store-fs';
import { type Disk, type StoreWorld, sample, storeWorld, until } from './store-world';

jest.setTimeout(120_000);

describe('the daemon on a failing state folder', () => {
  let world: StoreWorld;
  /** One verifying workload per disk, live across every fault and SIGKILL of this file. */
  const live: { stop: AbortController; run: Promise<WorkloadReport> }[] = [];
  const startIo = (disk: Disk) => {
    const stop = new AbortController();
    live.push({ stop, run: world.workload(disk, stop.signal) });
  };
  const progress = (disk: Disk, ops: number, what: string) => {
    const from = disk.ops;
    return until(() => disk.ops >= from + ops, `${ops} more verified requests on ${disk.key} ${what}`);
  };
  const restartAfter = async (fault: () => void) => {
    await world.daemon.kill();
    fault();
    await world.daemon.start();
  };
  const runLog = () => world.log().filter((l) => l.pid === world.daemon.pid);

  beforeAll(async () => {
    world = await storeWorld({ guests: 3 });
    const first = await world.attach(1);
    await until(() => first.queue !== undefined, 'the first disk to connect');
    startIo(first);
    await progress(first, 100, 'at the start');
  });
  afterAll(async () => {
    for (const l of live) l.stop.abort();
    await Promise.all(live.map((l) => l.run)).catch(() => undefined);
    await world?.close();
    fs.rmSync(world.dir, { recursive: true, force: true });
  });

  it('serves from a read-only store folder without moving it, a new disk waiting until the folder is writable', async () => {
    const events = path.join(world.stateDir, 'events');
    let writable: () => void = () => undefined;
    try {
      // The event store's own folder: the journals and the control socket beside it are other parts' concern.
      await restartAfter(() => (writable = bindReadOnly(events)));
      expect(runLog().filter((l) => /refuses writes \(EROFS\)/.test(l.msg))).toHaveLength(1);
      expect(runLog().find((l) => /serving backend/.test(l.msg))?.msg).toMatch(/1 device\(s\) recovered/);
      await progress(world.disks[0], 200, 'on the read-only folder');
      const added = await world.attach(2);
      await until(async () => ((await world.toolstack.tryRead(`${added.backendPath}/hotplug-error`)) ?? '').includes('EROFS'), 'hotplug-error on the waiting disk');
      expect((await world.ls()).stdout).toMatch(new RegExp(`${added.key}\\s+waiting-for-store`));
      expect(sample(await world.metrics(), 'xenblkd_event_store_writable')).toBe(0);
      expect(fs.readdirSync(world.stateDir).filter((n) => n.includes('corrupt'))).toEqual([]);
    } finally {
      writable();
    }
    const added = world.disks[1];
    await until(() => added.queue !== undefined, 'the waiting disk to connect once the folder is writable', 15_000);
    expect(await world.toolstack.tryRead(`${added.backendPath}/hotplug-error`)).toBeUndefined();
    startIo(added);
    await progress(added, 100, 'once it connected');
    await restartAfter(() => undefined);
    expect(runLog().find((l) => /serving backend/.test(l.msg))?.msg).toMatch(/2 device\(s\) recovered/);
    for (const disk of world.disks) await progress(disk, 100, 'after the restart');
  });

  it('serves from a wholly read-only state folder (store, journals, control socket), and takes it back when writable', async () => {
    let writable: () => void = () => undefined;
    try {
      await restartAfter(() => (writable = bindReadOnly(world.stateDir)));
      const serving = runLog().find((l) => /serving backend/.test(l.msg))?.msg;
      expect(serving).toMatch(/2 device\(s\) recovered/);
      expect(runLog().filter((l) => /cannot listen on the control socket .*\(EROFS\): serving without it/.test(l.msg))).toHaveLength(1);
      // Both rings answered before this start: they go on with their journals unwritable.
      for (const disk of world.disks) await progress(disk, 100, 'on the wholly read-only folder');
      const journalLines = runLog().filter((l) => /publication journal .*EROFS.*published without their journal record/.test(l.msg));
      expect(journalLines.length).toBeGreaterThanOrEqual(1);
      expect(journalLines.length).toBeLessThanOrEqual(world.disks.length);
      expect((await world.ls()).status).not.toBe(0);
      expect(fs.readdirSync(world.stateDir).filter((n) => n.includes('corrupt'))).toEqual([]);
    } finally {
      writable();
    }
    // Writable again: the control socket comes back within its retry period, the journals within a check.
    await until(async () => (await world.ls()).status === 0, 'xenblkd ls to reach the daemon again', 15_000);
    await until(() => runLog().filter((l) => /publication journal .* created: publication is journaled again/.test(l.msg)).length === world.disks.length, 'both journals created', 15_000);
    const failures = [...(await world.metrics()).matchAll(/^xenblkd_device_journal_failures_total\{[^}]*\} (\d+)/gm)].map((m) => Number(m[1]));
    expect(failures.length).toBe(world.disks.length);
    for (const f of failures) expect(f).toBeGreaterThan(0);
    for (const disk of world.disks) await progress(disk, 50, 'once the folder is writable');
    await restartAfter(() => undefined);
    expect(runLog().find((l) => /serving backend/.test(l.msg))?.msg).toMatch(/2 device\(s\) recovered/);
    for (const disk of world.disks) await progress(disk, 50, 'after the restart');
  });

  const cases: [LevelFileKind, DamageKind][] = [];
  for (const kind of ['ldb', 'log', 'MANIFEST', 'CURRENT'] as const) for (const how of ['corrupt', 'truncate', 'delete'] as const) cases.push([kind, how]);

  it.each(cases)('starts and serves every device after a %s file is damaged (%s)', async (kind, how) => {
    const events = path.join(world.stateDir, 'events');
    // A restart turns the log into a table: every kind of file is there to damage.
    await restartAfter(() => undefined);
    await progress(world.disks[0], 50, 'before the damage');
    const asideBefore = fs.readdirSync(world.stateDir).filter((n) => n.startsWith('events.corrupt-')).length;
    await restartAfter(() => {
      const file = levelFile(events, kind);
      expect(file).toBeDefined();
      damage(file!, how);
    });
    const moved = runLog().filter((l) => /moved aside, rebuilding device state from xenstore/.test(l.msg));
    // Every damage LevelDB reports moves the store aside, once; a damaged log only loses its tail.
    expect(moved.length).toBe(kind === 'log' ? 0 : 1);
    // Never more than 3 old copies.
    const aside = fs.readdirSync(world.stateDir).filter((n) => n.startsWith('events.corrupt-')).length;
    expect(aside).toBeLessThanOrEqual(3);
    if (moved.length === 1) expect(aside).toBe(Math.min(3, asideBefore + 1));
    for (const disk of world.disks) await progress(disk, 50, `after the ${kind} file was damaged (${how})`);
    const listed = (await world.ls()).stdout;
    for (const disk of world.disks) expect(listed).toMatch(new RegExp(`${disk.key}\\s+attached.connected`));
  });

  it('answered every request of the live workloads exactly once, every read verified', async () => {
    for (const l of live) l.stop.abort();
    const reports = await Promise.all(live.map((l) => l.run));
    expect(reports).toHaveLength(2);
    for (const r of reports) {
      expect(r.checkedSectors).toBeGreaterThan(0);
      expect({ errors: r.errors, mismatches: r.mismatches, lost: r.lost, duplicated: r.duplicated }).toEqual({ errors: 0, mismatches: 0, lost: 0, duplicated: 0 });
    }
  });
});
