import { attachDisk, detachDisk, diskIdentity } from '../../src/toolstack/disk';
import { simWorld, waitForValue, type World } from '../support/sim-world';
import { makeImage, tempDir } from '../support/temp';

const GTF_MAPPED = 8 | 16;

describe('the daemon with simulated guests (I/O-free lifecycle)', () => {
  let world: World;
  afterEach(async () => {
    await world?.close();
  });

  it('connects a disk the toolstack attaches, with the ring mapped and the port bound', async () => {
    world = await simWorld();
    const daemon = await world.startDaemon();
    const image = makeImage(tempDir(), 'a.img', 16 * 1024 * 1024);
    const id = await attachDisk(world.toolstack, { frontendDomid: 1, vdev: 'xvda', image });
    await waitForValue(world.toolstack, `${id.backendPath}/state`, '4');
    await waitForValue(world.toolstack, `${id.frontendPath}/state`, '4');
    const xs = world.toolstack;
    expect(await xs.read(`${id.backendPath}/sectors`)).toBe(String((16 * 1024 * 1024) / 512));
    expect(await xs.read(`${id.backendPath}/hotplug-status`)).toBe('connected');
    expect(await xs.read(`${id.backendPath}/feature-flush-cache`)).toBe('1');
    const ringRef = Number(await xs.read(`${id.frontendPath}/ring-ref0`).catch(() => xs.read(`${id.frontendPath}/ring-ref`)));
    expect(world.host.hv.domain(1)!.grants.flags(ringRef) & GTF_MAPPED).not.toBe(0);
    const snapshot = daemon.engine.deviceActors().get('1/51712')!.getSnapshot();
    expect(JSON.stringify(snapshot.value)).toContain('connected');
  });

  it('reconnects after the guest reloads its driver', async () => {
    world = await simWorld();
    await world.startDaemon();
    const id = await attachDisk(world.toolstack, { frontendDomid: 1, vdev: 'xvdb', image: makeImage(tempDir()) });
    await waitForValue(world.toolstack, `${id.frontendPath}/state`, '4');
    const guest = world.host.guest(1);
    guest.unloadDriver(id.devid);
    await waitForValue(world.toolstack, `${id.frontendPath}/state`, '6');
    await waitForValue(world.toolstack, `${id.backendPath}/state`, '6');
    guest.loadDriver(id.devid);
    await waitForValue(world.toolstack, `${id.backendPath}/state`, '4');
    await waitForValue(world.toolstack, `${id.frontendPath}/state`, '4');
  });

  it('lets the toolstack unplug a connected disk and removes both directories', async () => {
    world = await simWorld();
    const daemon = await world.startDaemon();
    const id = await attachDisk(world.toolstack, { frontendDomid: 1, vdev: 'xvda', image: makeImage(tempDir()) });
    await waitForValue(world.toolstack, `${id.frontendPath}/state`, '4');
    const result = await detachDisk(world.toolstack, id, { timeoutMs: 10_000 });
    expect(result.clean).toBe(true);
    expect(await world.toolstack.tryRead(id.backendPath)).toBeUndefined();
    expect(await world.toolstack.tryRead(id.frontendPath)).toBeUndefined();
    await eventually(async () => daemon.engine.deviceActors().size === 0 && (await daemon.store.streams('device/')).length === 0);
  });

  it('serves two disks of two guests at once', async () => {
    world = await simWorld({ guests: 2 });
    await world.startDaemon();
    const dir = tempDir();
    const a = await attachDisk(world.toolstack, { frontendDomid: 1, vdev: 'xvda', image: makeImage(dir, 'a.img') });
    const b = await attachDisk(world.toolstack, { frontendDomid: 2, vdev: 'xvdc', image: makeImage(dir, 'b.img') });
    await Promise.all([a, b].map((id) => waitForValue(world.toolstack, `${id.frontendPath}/state`, '4')));
    await Promise.all([a, b].map((id) => waitForValue(world.toolstack, `${id.backendPath}/state`, '4')));
  });

  it('stops gracefully leaving the device connected, and a new daemon resumes it from its stream', async () => {
    world = await simWorld();
    const first = await world.startDaemon();
    const id = await attachDisk(world.toolstack, { frontendDomid: 1, vdev: 'xvda', image: makeImage(tempDir()) });
    await waitForValue(world.toolstack, `${id.frontendPath}/state`, '4');
    const ringRef = Number(await world.toolstack.read(`${id.frontendPath}/ring-ref0`).catch(() => world.toolstack.read(`${id.frontendPath}/ring-ref`)));
    // Settled in Connected (both ends seen at 4): snapshotted, so the next start folds nothing.
    const stream = 'device/vbd/1/51712';
    // Snapshot saved, then the events before it compacted away: nothing left to fold.
    await eventually(async () => (await first.store.loadSnapshot(stream))?.version === (await first.store.version(stream)) && (await first.store.read(stream)).length === 0);
    await first.stop();
    const grants = world.host.hv.domain(1)!.grants;
    expect(grants.flags(ringRef) & GTF_MAPPED).toBe(0);
    expect(await world.toolstack.read(`${id.backendPath}/state`)).toBe('4');
    const second = await world.startDaemon();
    expect(second.recovered).toEqual(['1/51712']);
    await second.engine.settled();
    expect(JSON.stringify(second.engine.deviceActors().get('1/51712')!.getSnapshot().value)).toContain('connected');
    await waitUntilMapped(() => (grants.flags(ringRef) & GTF_MAPPED) !== 0);
    // The device still goes through its whole life after the restart.
    const result = await detachDisk(world.toolstack, diskIdentity({ frontendDomid: 1, vdev: 'xvda' }));
    expect(result.clean).toBe(true);
  });

  it('tears down a device removed while the daemon was stopped', async () => {
    world = await simWorld();
    const first = await world.startDaemon();
    const id = await attachDisk(world.toolstack, { frontendDomid: 1, vdev: 'xvda', image: makeImage(tempDir()) });
    await waitForValue(world.toolstack, `${id.frontendPath}/state`, '4');
    await first.stop();
    await world.toolstack.rm(id.backendPath);
    const second = await world.startDaemon();
    await eventually(async () => second.engine.deviceActors().size === 0 && (await second.store.streams('device/')).length === 0);
  });
});

async function eventually(check: () => Promise<boolean>, timeoutMs = 5000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error('condition not reached in time');
    await new Promise((r) => setTimeout(r, 10));
  }
}

async function waitUntilMapped(check: () => boolean, timeoutMs = 5000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!check()) {
    if (Date.now() > deadline) throw new Error('ring not mapped again');
    await new Promise((r) => setTimeout(r, 10));
  }
}

describe('a corrupt event store', () => {
  let world: World;
  afterEach(async () => {
    await world?.close();
  });

  it('is moved aside with one log line, and the daemon rebuilds its devices from xenstore without disturbing the guest', async () => {
    const lines: string[] = [];
    const { createLogger } = await import('../../src/log');
    const fs = await import('node:fs');
    const path = await import('node:path');
    const logFile = path.join(tempDir(), 'log');
    world = await simWorld({ logger: createLogger({ format: 'json', fd: fs.openSync(logFile, 'a') }) });
    const first = await world.startDaemon();
    const id = await attachDisk(world.toolstack, { frontendDomid: 1, vdev: 'xvda', image: makeImage(tempDir()) });
    await waitForValue(world.toolstack, `${id.frontendPath}/state`, '4');
    const frontend = world.host.guest(1).frontend(id.devid)!;
    const ringBefore = frontend.getSnapshot().context.ring;
    await first.stop();
    const eventsDir = path.join(world.dir, 'daemon', 'events');
    fs.writeFileSync(path.join(eventsDir, 'CURRENT'), 'MANIFEST-424242\n');
    const second = await world.startDaemon();
    lines.push(...fs.readFileSync(logFile, 'utf8').trim().split('\n'));
    expect(lines.some((l) => /is corrupt.*moved aside, rebuilding device state from xenstore/.test(l))).toBe(true);
    expect(fs.readdirSync(path.join(world.dir, 'daemon')).some((f) => f.startsWith('events.corrupt-'))).toBe(true);
    expect(second.recovered).toEqual([]);
    await eventually(async () => JSON.stringify(second.engine.deviceActors().get('1/51712')?.getSnapshot().value ?? '').includes('connected'));
    expect(await world.toolstack.read(`${id.backendPath}/state`)).toBe('4');
    expect(await world.toolstack.read(`${id.frontendPath}/state`)).toBe('4');
    // The guest kept its ring: it never saw the backend go away.
    expect(frontend.getSnapshot().context.ring).toEqual(ringBefore);
    expect(JSON.stringify(frontend.getSnapshot().value)).toContain('connected');
  });
});
