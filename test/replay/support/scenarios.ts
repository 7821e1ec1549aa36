// The recorded scenarios behind test/fixtures/sessions: each drives the simulated world (or a
// daemon child process) through one part of a disk's life while it records.
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { initSharedRing } from '../../../src/blkif/sring';
import { silentLogger } from '../../../src/log';
import { XenbusState, resizeEvent, type BlkifProtocol, type BlockRealized, type DeviceIdentity } from '../../../src/machines';
import { blockQueueFactory } from '../../../src/sim/frontend/block-queue-adapter';
import { SimHost } from '../../../src/sim/host';
import { attachDisk, detachDisk } from '../../../src/toolstack/disk';
import { QemuNbd, qemuImg } from '../../e2e/storage/support';
import type { DaemonProcess as DaemonProcessType } from '../../../src/demo/daemon-process';
import { ringOnlyQueueFactory } from '../../support/ring-only';
import type { GuestQueueFactory } from '../../../src/sim/frontend/guest-queue';
import { RecordingWorld, type RawDomain } from './world';
import { HOOKED_CLI, hookedEntry } from '../../support/hooked-entries';

export interface Scenario {
  readonly name: string;
  readonly description: string;
  record(file: string): Promise<void>;
}

const S = (state: number) => String(state);
const KEY = (id: DeviceIdentity) => `${id.frontendDomid}/${id.devid}`;

async function inWorld(
  file: string,
  description: string,
  fn: (w: RecordingWorld) => Promise<void>,
  opts: { protocol?: BlkifProtocol; guests?: number; queueFactory?: GuestQueueFactory; storage?: boolean } = {},
): Promise<void> {
  const world = await RecordingWorld.start({ file, description, ...opts });
  try {
    await world.startDaemon();
    await fn(world);
    await world.settled();
  } finally {
    await world.close();
  }
}

async function connected(w: RecordingWorld, id: DeviceIdentity): Promise<void> {
  await w.waitFor(`${id.backendPath}/state`, S(XenbusState.Connected));
  await w.waitFor(`${id.frontendPath}/state`, S(XenbusState.Connected));
}

/** libxl's unplug, then the daemon retires the device. */
async function detach(w: RecordingWorld, id: DeviceIdentity): Promise<void> {
  const result = await detachDisk(w.toolstack, id, { timeoutMs: 10_000 });
  if (!result.clean) throw new Error('detach was not clean');
  await w.untilRetired(KEY(id));
}

function connectDisconnect(protocol: BlkifProtocol): Scenario {
  const description = `connect and disconnect, ${protocol} frontend: attach, Connected, the guest closes the disk, the toolstack removes it`;
  return {
    name: `connect-disconnect-${protocol.replace('-abi', '')}`,
    description,
    record: (file) =>
      inWorld(
        file,
        description,
        async (w) => {
          const id = await attachDisk(w.toolstack, { frontendDomid: 1, vdev: 'xvda', image: w.image('a.img') });
          await connected(w, id);
          w.host.guest(1).unloadDriver(id.devid);
          await w.waitFor(`${id.frontendPath}/state`, S(XenbusState.Closed));
          await w.waitFor(`${id.backendPath}/state`, S(XenbusState.Closed));
          await detach(w, id);
        },
        { protocol },
      ),
  };
}

/** A frontend from before the `protocol` key (the native x86_32 layout), driven by hand. */
const legacyFrontend: Scenario = {
  name: 'connect-disconnect-native',
  description: 'connect and disconnect, a frontend that writes no protocol key (native x86_32 layout) and a single-page ring',
  record: (file) =>
    inWorld(file, legacyFrontend.description, async (w) => {
      const guest = await w.rawDomain(7);
      const id = await attachDisk(w.toolstack, { frontendDomid: 7, vdev: 'xvda', image: w.image('n.img') });
      await w.waitFor(`${id.backendPath}/state`, S(XenbusState.InitWait));
      const ring = await grantRing(guest, 0);
      await guest.xs.transaction(async (tx) => {
        await tx.write(`${id.frontendPath}/ring-ref`, String(ring.refs[0]));
        await tx.write(`${id.frontendPath}/event-channel`, String(ring.port));
        await tx.write(`${id.frontendPath}/state`, S(XenbusState.Initialised));
      });
      await w.waitFor(`${id.backendPath}/state`, S(XenbusState.Connected));
      await guest.xs.write(`${id.frontendPath}/state`, S(XenbusState.Connected));
      await w.until('frontend Connected seen', () => w.device(KEY(id))?.context.frontendState === XenbusState.Connected);
      await guest.xs.write(`${id.frontendPath}/state`, S(XenbusState.Closing));
      await w.waitFor(`${id.backendPath}/state`, S(XenbusState.Closing));
      await guest.xs.write(`${id.frontendPath}/state`, S(XenbusState.Closed));
      await w.waitFor(`${id.backendPath}/state`, S(XenbusState.Closed));
      await ring.free();
      await detach(w, id);
    }),
};

// The guest's ring-only queue: the simulated block queue cannot allocate a second contiguous ring
// after its first one was freed (src/sim/guest/block-queue.ts contiguousPages over a LIFO free list).
const driverReload: Scenario = {
  name: 'driver-reload',
  description: 'guest driver reload, twice: Connected, the guest unloads blkfront (Closing, Closed), loads it again, the backend reopens (InitWait) and reconnects on a new ring',
  record: (file) =>
    inWorld(file, driverReload.description, async (w) => {
      const id = await attachDisk(w.toolstack, { frontendDomid: 1, vdev: 'xvdb', image: w.image('b.img') });
      await connected(w, id);
      const guest = w.host.guest(1);
      for (let i = 0; i < 2; i++) {
        guest.unloadDriver(id.devid);
        await w.waitFor(`${id.frontendPath}/state`, S(XenbusState.Closed));
        await w.waitFor(`${id.backendPath}/state`, S(XenbusState.Closed));
        guest.loadDriver(id.devid);
        await connected(w, id);
      }
      await detach(w, id);
    }, { queueFactory: ringOnlyQueueFactory }),
};

const toolstackUnplug: Scenario = {
  name: 'toolstack-unplug',
  description: 'unplug of connected disks: xvda by the toolstack as libxl does (online=0, Closing), xvdb by a request to the daemon (its unplug effect); both close with the guest and are destroyed',
  record: (file) =>
    inWorld(file, toolstackUnplug.description, async (w) => {
      const a = await attachDisk(w.toolstack, { frontendDomid: 1, vdev: 'xvda', image: w.image('a.img') });
      const b = await attachDisk(w.toolstack, { frontendDomid: 1, vdev: 'xvdb', image: w.image('b.img') });
      await connected(w, a);
      await connected(w, b);
      await detach(w, a);
      if (!w.daemon!.engine.request(KEY(b), { type: 'device.unplug' })) throw new Error('no device to unplug');
      await w.untilRetired(KEY(b));
      await w.waitFor(b.backendPath, undefined);
    }),
};

const onlineResize: Scenario = {
  name: 'online-resize',
  description: 'online resize: a connected disk grows from 16 to 24 MiB (device.update), the backend rewrites sectors and state, the guest sees the new size',
  record: (file) =>
    inWorld(file, onlineResize.description, async (w) => {
      const image = w.image('r.img');
      const id = await attachDisk(w.toolstack, { frontendDomid: 1, vdev: 'xvda', image });
      await connected(w, id);
      const grown = 24 << 20;
      fs.truncateSync(image, grown);
      const realized = w.device(KEY(id))!.context.realized as BlockRealized;
      w.daemon!.engine.request(KEY(id), resizeEvent(realized, grown) as never);
      await w.waitFor(`${id.backendPath}/sectors`, String(grown / 512));
      const frontend = () => w.host.guest(1).frontend(id.devid)?.getSnapshot().context.disk?.sectors;
      await w.until('the guest to see the new size', () => frontend() === grown / 512);
      await w.until('the update published', () => JSON.stringify(w.device(KEY(id))?.value).includes('"update":"idle"'));
      await detach(w, id);
    }),
};

const storageTargets: Scenario = {
  name: 'storage-targets',
  description: 'disks on other storage: an NBD export (a real qemu-nbd) and a qcow2 image (served through a qemu-storage-daemon the daemon starts) connect and are removed (the storage daemon stops with its disk); an unreachable NBD target fails its device with hotplug-error and the guest never sees it connect',
  record: (file) =>
    inWorld(
      file,
      storageTargets.description,
      async (w) => {
        const nbd = new QemuNbd(w.image('n.img'), path.join(w.dir, 'n.sock'));
        await nbd.start();
        try {
          const a = await attachDisk(w.toolstack, { frontendDomid: 1, vdev: 'xvda', image: `nbd:unix:${nbd.socket}` });
          await connected(w, a);
          const qcow2 = path.join(path.dirname(nbd.socket), 'q.qcow2');
          qemuImg(['create', '-q', '-f', 'qcow2', qcow2, String(16 << 20)]);
          const b = await attachDisk(w.toolstack, { frontendDomid: 1, vdev: 'xvdb', image: `qcow2:${qcow2}` });
          await connected(w, b);
          await detach(w, a);
          await detach(w, b);
          const c = await attachDisk(w.toolstack, { frontendDomid: 1, vdev: 'xvdc', image: `nbd:unix:${path.join(path.dirname(nbd.socket), 'nobody.sock')}` });
          await w.waitFor(`${c.backendPath}/hotplug-status`, 'error');
          await detach(w, c);
        } finally {
          await nbd.kill();
        }
      },
      { storage: true },
    ),
};

const hostileFrontend: Scenario = {
  name: 'hostile-frontend',
  description: 'a hostile frontend: ring-page-order beyond the limit, a missing event-channel, garbage states, an ungranted ring page; the backend refuses to connect, closes or fails the connection, and stays usable; then a disk whose params name an unserved image format (hotplug-error names the key)',
  record: (file) =>
    inWorld(file, hostileFrontend.description, async (w) => {
      const guest = await w.rawDomain(9);
      const id = await attachDisk(w.toolstack, { frontendDomid: 9, vdev: 'xvda', image: w.image('h.img') });
      const fe = (k: string) => `${id.frontendPath}/${k}`;
      const lastError = () => (w.device(KEY(id))?.context.lastError as { message: string } | null)?.message ?? '';
      await w.waitFor(`${id.backendPath}/state`, S(XenbusState.InitWait));
      // ring-page-order beyond what the backend offers.
      await guest.xs.transaction(async (tx) => {
        await tx.write(fe('ring-page-order'), '9');
        for (let i = 0; i < 4; i++) await tx.write(fe(`ring-ref${i}`), String(100 + i));
        await tx.write(fe('event-channel'), '3');
        await tx.write(fe('state'), S(XenbusState.Initialised));
      });
      await w.until('the ring-page-order error', () => lastError().includes('ring-page-order'));
      // No event channel.
      await guest.xs.transaction(async (tx) => {
        await tx.rm(fe('ring-page-order'));
        await tx.rm(fe('event-channel'));
        await tx.write(fe('ring-ref'), '100');
        await tx.write(fe('state'), S(XenbusState.Initialised));
      });
      await w.until('the event-channel error', () => lastError().includes('event-channel'));
      // Garbage states, each followed by a frontend that starts again.
      for (const garbage of ['banana', '', '4294967296', '-1']) {
        await guest.xs.write(fe('state'), garbage);
        await w.waitFor(`${id.backendPath}/state`, S(XenbusState.Closed));
        await guest.xs.write(fe('state'), S(XenbusState.Initialising));
        await w.waitFor(`${id.backendPath}/state`, S(XenbusState.InitWait));
      }
      // A well-formed connect on a page the guest never granted: the map fails.
      const port = await guest.domain.evtchn.allocUnbound(0);
      await guest.xs.transaction(async (tx) => {
        await tx.write(fe('ring-ref'), '4000');
        await tx.write(fe('event-channel'), String(port.localPort));
        await tx.write(fe('state'), S(XenbusState.Initialised));
      });
      await w.until('the failed connection', () => lastError().includes('cannot map'));
      await port.unbind();
      // The frontend gives up; the toolstack removes the disk.
      await guest.xs.write(fe('state'), S(XenbusState.Closed));
      await w.waitFor(`${id.backendPath}/state`, S(XenbusState.Closed));
      await detach(w, id);
      // The toolstack side of hostile: an image format this backend does not serve.
      const bad = await attachDisk(w.toolstack, { frontendDomid: 9, vdev: 'xvdb', image: `qed:${w.image('q.img')}` });
      await w.waitFor(`${bad.backendPath}/hotplug-status`, 'error');
      await detach(w, bad);
    }),
};

/**
 * The daemon runs as a child process recording to the file and is SIGKILLed right after its
 * `killAfter`-th persisted event (mid-handshake); the restarted daemon recovers and goes on.
 */
const crashRecovery: Scenario = {
  name: 'crash-recovery',
  description: 'a daemon SIGKILLed in the middle of the handshake (XENBLKD_KILL_AFTER_EVENTS) and restarted: it recovers the bus and the device from its streams, connects, and the toolstack then removes the disk',
  async record(file) {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'xenblkd-crash-rec-'));
    const { DaemonProcess } = builtDaemonProcess();
    const host = await SimHost.start({
      stateDir: path.join(dir, 'sim'),
      xenstoreSocket: path.join(dir, 'xs.sock'),
      guests: 1,
      memoryBytes: 64 << 20,
      queueFactory: blockQueueFactory(),
      logger: silentLogger,
    });
    const daemon = new DaemonProcess({
      xenstoreSocket: path.join(dir, 'xs.sock'),
      hvSocket: host.hvSocket,
      stateDir: path.join(dir, 'daemon'),
      logFile: path.join(dir, 'daemon.log'),
      extraArgs: ['--record', file],
      // The test build of the CLI: the only one that reads XENBLKD_KILL_AFTER_EVENTS.
      main: hookedEntry(HOOKED_CLI),
    });
    try {
      const xs = await host.toolstack();
      await daemon.start({ XENBLKD_KILL_AFTER_EVENTS: '9' });
      const image = path.join(dir, 'c.img');
      fs.writeFileSync(image, '');
      fs.truncateSync(image, 16 << 20);
      const id = await attachDisk(xs, { frontendDomid: 1, vdev: 'xvda', image });
      const code = await daemon.waitExit();
      if (daemon.running || code !== null) throw new Error(`the daemon was expected to be killed, exit code ${code}`);
      await daemon.start();
      await waitValue(xs, `${id.backendPath}/state`, S(XenbusState.Connected));
      await waitValue(xs, `${id.frontendPath}/state`, S(XenbusState.Connected));
      const result = await detachDisk(xs, id, { timeoutMs: 10_000 });
      if (!result.clean) throw new Error('detach was not clean');
      // The daemon retires the device once its directory is gone; give its records time to land.
      await new Promise((r) => setTimeout(r, 300));
      const stopped = await daemon.stop();
      if (stopped !== 0) throw new Error(`the daemon stopped with ${stopped}; see ${path.join(dir, 'daemon.log')}`);
    } finally {
      await daemon.kill();
      await host.close();
      fs.rmSync(dir, { recursive: true, force: true });
    }
    addDescription(file, crashRecovery.description);
  },
};

/** The demo's DaemonProcess as built (npm run build): it starts the built CLI, as the demo does. */
function builtDaemonProcess(): { DaemonProcess: typeof DaemonProcessType } {
  const built = path.resolve(__dirname, '../../../dist/demo/daemon-process.js');
  if (!fs.existsSync(built)) throw new Error(`${built} is missing: run npm run build first`);
  return require(built) as { DaemonProcess: typeof DaemonProcessType };
}

async function waitValue(xs: Awaited<ReturnType<SimHost['toolstack']>>, node: string, value: string): Promise<void> {
  const { waitUntil } = await import('../../../src/effects/xenstore');
  if (!(await waitUntil(xs, node, async () => (await xs.tryRead(node)) === value, 15_000))) throw new Error(`${node} never became ${value}`);
}

/** The daemon wrote the header (source "daemon"); the scenario's description joins it. */
function addDescription(file: string, description: string): void {
  const text = fs.readFileSync(file, 'utf8');
  const nl = text.indexOf('\n');
  const header = { ...(JSON.parse(text.slice(0, nl)) as object), description };
  fs.writeFileSync(file, JSON.stringify(header) + text.slice(nl));
}

async function grantRing(guest: RawDomain, order: number): Promise<{ refs: number[]; port: number; free(): Promise<void> }> {
  const frames = guest.domain.allocPages(1 << order);
  for (const f of frames) guest.domain.page(f).fill(0);
  initSharedRing(guest.domain.page(frames[0]));
  const refs = frames.map((f) => guest.domain.grantAccess(f, 0, false));
  const port = await guest.domain.evtchn.allocUnbound(0);
  return {
    refs,
    port: port.localPort,
    async free() {
      for (const ref of refs) {
        for (let i = 0; !guest.domain.endAccess(ref); i++) {
          if (i > 500) throw new Error(`grant ${ref} still mapped`);
          await new Promise((r) => setTimeout(r, 10));
        }
      }
      await port.unbind();
    },
  };
}

export const SCENARIOS: readonly Scenario[] = [
  connectDisconnect('x86_64-abi'),
  connectDisconnect('x86_32-abi'),
  legacyFrontend,
  driverReload,
  toolstackUnplug,
  onlineResize,
  hostileFrontend,
  storageTargets,
  crashRecovery,
];
