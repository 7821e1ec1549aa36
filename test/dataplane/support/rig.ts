// A simulated host for dataplane tests: the hypervisor in this process, a guest domain, a raw
// image in a temp dir, and a dom0 connection through hv.sock (as the daemon has).
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { startDataplane, type DataplaneTuning, type RunningDataplane } from '../../../src/effects/dataplane';
import type { DataplaneFeatures } from '../../../src/effects/dataplane-port';
import { connectSimHypervisor, type SimHypervisorConnection } from '../../../src/io/sim';
import { openRawImage, type RawImage } from '../../../src/io/storage/raw';
import { silentLogger, type Logger } from '../../../src/log';
import type { BackendDiskInfo } from '../../../src/machines/block/backend-info';
import type { BlkifProtocol } from '../../../src/machines/block/connect-params';
import { deviceIdentity } from '../../../src/machines/xenbus/identity';
import type { SimDomain } from '../../../src/sim/domain';
import { diskInfoFor, GuestBlockQueue, type GuestQueueOptions } from '../../../src/sim/guest';
import { Hypervisor } from '../../../src/sim/hv/hypervisor';

export const DEVID = 51712;

export interface Rig {
  dir: string;
  hv: Hypervisor;
  socketPath: string;
  guest: SimDomain;
  dom0: SimHypervisorConnection;
  imagePath: string;
  stateDir: string;
  hvLogs: string[];
  close(): Promise<void>;
}

export interface RigOptions {
  imageBytes?: number;
  guestMemoryBytes?: number;
  /** Where the image file goes (default: the temp dir, on disk). */
  imageDir?: string;
}

export async function startRig(opts: RigOptions = {}): Promise<Rig> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'dataplane-'));
  const hvLogs: string[] = [];
  const hv = new Hypervisor({
    hostId: `dp-${process.pid}-${path.basename(dir)}`,
    log: { info: (m) => hvLogs.push(m), warn: (m) => hvLogs.push(`warn ${m}`) },
  });
  const socketPath = path.join(dir, 'hv.sock');
  await hv.listen(socketPath);
  const guest = hv.createDomain(1, { memoryBytes: opts.guestMemoryBytes ?? 64 << 20 });
  const dom0 = await connectSimHypervisor(socketPath, { log: { warn: () => {} } });
  const imagePath = path.join(opts.imageDir ?? dir, `image-${path.basename(dir)}.raw`);
  fs.writeFileSync(imagePath, '');
  fs.truncateSync(imagePath, opts.imageBytes ?? 8 << 20);
  const stateDir = path.join(dir, 'state');
  fs.mkdirSync(stateDir);
  return {
    dir,
    hv,
    socketPath,
    guest,
    dom0,
    imagePath,
    stateDir,
    hvLogs,
    async close() {
      await dom0.close();
      await hv.close();
      fs.rmSync(imagePath, { force: true });
      fs.rmSync(dir, { recursive: true, force: true });
    },
  };
}

export function diskInfo(image: RawImage, f: Partial<DataplaneFeatures> & { readOnly?: boolean } = {}): BackendDiskInfo {
  return diskInfoFor(image, f);
}

export interface Connected {
  queue: GuestBlockQueue;
  dataplane: RunningDataplane;
  image: RawImage;
  fatal: Error[];
  /** Stops the dataplane, closes the queue and the image. */
  close(): Promise<void>;
}

export interface ConnectOptions {
  queue?: Partial<GuestQueueOptions>;
  features?: Partial<DataplaneFeatures>;
  readOnly?: boolean;
  tuning?: DataplaneTuning;
  logger?: Logger;
  protocol?: BlkifProtocol;
}

/** A guest queue on domain 1 and an in-process dataplane serving it from the image. */
export async function connect(rig: Rig, o: ConnectOptions = {}): Promise<Connected> {
  const image = await openRawImage(rig.imagePath, { readOnly: o.readOnly ?? false });
  const queue = await GuestBlockQueue.create(rig.guest, {
    backendDomid: 0,
    ringPageOrder: 0,
    protocol: o.protocol ?? 'x86_64-abi',
    persistent: false,
    indirectSegments: 256,
    ...o.queue,
  });
  const { dataplane, fatal } = await serve(rig, queue.params, image, { features: o.features, readOnly: o.readOnly, tuning: o.tuning, logger: o.logger });
  queue.start(diskInfo(image, { ...o.features, readOnly: o.readOnly }));
  return {
    queue,
    dataplane,
    image,
    fatal,
    async close() {
      await dataplane.stop();
      await queue.close();
      await image.close();
    },
  };
}

export interface ServeOptions {
  features?: Partial<DataplaneFeatures>;
  readOnly?: boolean;
  tuning?: DataplaneTuning;
  devid?: number;
  logger?: Logger;
}

/** Starts a dataplane in this process on a ring whose params a (raw) frontend made. */
export async function serve(
  rig: Rig,
  params: import('../../../src/machines/block/connect-params').ConnectParams,
  image: import('../../../src/io/storage/port').BlockImage,
  o: ServeOptions = {},
): Promise<{ dataplane: RunningDataplane; fatal: Error[] }> {
  const fatal: Error[] = [];
  const dataplane = await startDataplane(
    {
      identity: deviceIdentity({ backendDomid: 0, frontendDomid: rig.guest.domid, devid: o.devid ?? DEVID }),
      params,
      image,
      readOnly: o.readOnly ?? false,
      gnttab: rig.dom0.gnttab,
      evtchn: rig.dom0.evtchn,
      stateDir: rig.stateDir,
      logger: o.logger ?? silentLogger,
      onFatal: (e) => fatal.push(e),
      features: o.features,
    },
    o.tuning,
  );
  return { dataplane, fatal };
}
