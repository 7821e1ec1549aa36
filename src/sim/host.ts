// The simulated Xen host: an embedded xenstored (dom0 at a socket), a hypervisor service for
// grant tables and event channels (hv.sock), and guest domains whose frontends behave like
// Linux blkfront. A backend daemon in another process serves them exactly as it would on Xen.
import * as fs from 'node:fs';
import * as path from 'node:path';
import { XenStore } from '../io/xs/client';
import { XenstoredServer } from '../io/xs/server/server';
import type { Logger } from '../log';
import type { DiskInput } from '../machines';
import type { SimDomain } from './domain';
import type { GuestQueue, GuestQueueFactory } from './frontend/guest-queue';
import { SimGuest } from './frontend/guest';
import { Hypervisor } from './hv/hypervisor';
import type { RecordingSwitch } from '../replay/tap';

export interface SimHostOptions {
  /** Folder for hv.sock (and the xenstore tree when persisted). */
  readonly stateDir: string;
  /** Where dom0's xenstore socket listens. */
  readonly xenstoreSocket: string;
  readonly guests?: number;
  readonly memoryBytes?: number;
  readonly queueFactory: GuestQueueFactory;
  readonly logger: Logger;
  /** Keep the xenstore tree in stateDir/xenstore so that the host can restart. */
  readonly persistXenstore?: boolean;
  readonly protocol?: 'x86_32-abi' | 'x86_64-abi';
  readonly maxRingPageOrder?: number;
  readonly onDisk?: (domid: number, devid: number, queue: GuestQueue | null, input: DiskInput | null) => void;
  /** Session recording (src/replay) of the guests' frontends. */
  readonly recording?: RecordingSwitch;
}

export class SimHost {
  readonly guests = new Map<number, SimGuest>();
  private readonly guestStores: XenStore[] = [];
  private toolstackConnection?: XenStore;

  private constructor(
    private readonly opts: SimHostOptions,
    readonly xenstored: XenstoredServer,
    readonly hv: Hypervisor,
    readonly hvSocket: string,
  ) {}

  static async start(opts: SimHostOptions): Promise<SimHost> {
    fs.mkdirSync(opts.stateDir, { recursive: true });
    const xenstored = await XenstoredServer.open({
      persistDir: opts.persistXenstore ? path.join(opts.stateDir, 'xenstore') : undefined,
      logger: opts.logger.child({ part: 'xenstored' }),
    });
    await xenstored.listen(opts.xenstoreSocket);
    const hv = new Hypervisor({ log: opts.logger.child({ part: 'hv' }) });
    const hvSocket = path.join(opts.stateDir, 'hv.sock');
    await hv.listen(hvSocket);
    const host = new SimHost(opts, xenstored, hv, hvSocket);
    opts.recording?.processStarted();
    const xs = await host.toolstack();
    await xs.write('/local/domain/0/name', 'Domain-0');
    await xs.write('/local/domain/0/domid', '0');
    for (let domid = 1; domid <= (opts.guests ?? 0); domid++) await host.addGuest(domid);
    return host;
  }

  /** dom0's own xenstore connection (the toolstack's view). */
  async toolstack(): Promise<XenStore> {
    this.toolstackConnection ??= await XenStore.connect({ duplex: () => this.xenstored.connect(0), reconnect: false });
    return this.toolstackConnection;
  }

  /** Creates a domain as libxl does (xenstore home, introduction) and starts its frontends. */
  async addGuest(domid: number): Promise<SimGuest> {
    if (this.guests.has(domid)) throw new Error(`domain ${domid} exists`);
    const domain: SimDomain = this.hv.createDomain(domid, { memoryBytes: this.opts.memoryBytes });
    const xs = await this.toolstack();
    const home = `/local/domain/${domid}`;
    await xs.transaction(async (tx) => {
      await tx.mkdir(home);
      await tx.setPerms(home, [{ domid: 0, access: 'n' }, { domid, access: 'r' }]);
      await tx.write(`${home}/name`, `guest${domid}`);
      await tx.write(`${home}/domid`, String(domid));
      await tx.mkdir(`${home}/device`);
      await tx.setPerms(`${home}/device`, [{ domid, access: 'n' }]);
    });
    this.xenstored.introduceDomain(domid);
    const guestXs = await XenStore.connect({ duplex: () => this.xenstored.connect(domid) });
    this.guestStores.push(guestXs);
    const guest = new SimGuest({
      xs: guestXs,
      domain,
      queueFactory: this.opts.queueFactory,
      logger: this.opts.logger.child({ domid }),
      protocol: this.opts.protocol,
      maxRingPageOrder: this.opts.maxRingPageOrder,
      onDisk: (devid, queue, input) => this.opts.onDisk?.(domid, devid, queue, input),
      recording: this.opts.recording,
    });
    guest.start();
    this.guests.set(domid, guest);
    return guest;
  }

  guest(domid: number): SimGuest {
    const g = this.guests.get(domid);
    if (!g) throw new Error(`no guest ${domid}`);
    return g;
  }

  async close(): Promise<void> {
    for (const guest of this.guests.values()) await guest.close();
    this.guests.clear();
    this.opts.recording?.processStopped();
    for (const xs of this.guestStores) await xs.close();
    await this.toolstackConnection?.close();
    await this.hv.close();
    await this.xenstored.close();
  }
}
