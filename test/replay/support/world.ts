// A simulated host and a daemon in one process, both recording into one session file (source
// "world"): the daemon's bus and devices, the guests' frontends. Free of jest so that
// scripts/record-fixtures.ts drives the same scenarios the tests do.
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { connectSimHypervisor } from '../../../src/io/sim';
import { openRawImage } from '../../../src/io/storage/raw';
import { XenStore } from '../../../src/io/xs/client';
import { silentLogger, type Logger } from '../../../src/log';
import { type Daemon, startDaemon } from '../../../src/daemon/daemon';
import { createDataplane } from '../../../src/effects/dataplane';
import type { DataplaneFactory } from '../../../src/effects/dataplane-port';
import { waitUntil } from '../../../src/effects/xenstore';
import type { BlkifProtocol } from '../../../src/machines';
import { RecordingSwitch, SessionRecorder } from '../../../src/replay';
import type { SimDomain } from '../../../src/sim/domain';
import { blockQueueFactory } from '../../../src/sim/frontend/block-queue-adapter';
import type { GuestQueueFactory } from '../../../src/sim/frontend/guest-queue';
import { SimHost } from '../../../src/sim/host';

export interface RecordingWorldOptions {
  /** The session file to write. */
  readonly file: string;
  readonly description: string;
  readonly guests?: number;
  readonly protocol?: BlkifProtocol;
  readonly queueFactory?: GuestQueueFactory;
  readonly dataplane?: DataplaneFactory;
  readonly logger?: Logger;
  /** The daemon opens every kind of target (rbd, nbd, qcow2...), not raw files only. */
  readonly storage?: boolean;
}

/** A domain with no frontend driver: the test writes its frontend keys itself. */
export interface RawDomain {
  readonly domid: number;
  readonly domain: SimDomain;
  readonly xs: XenStore;
}

export class RecordingWorld {
  daemon: Daemon | undefined;
  private readonly raw: RawDomain[] = [];

  private constructor(
    private readonly opts: RecordingWorldOptions,
    readonly dir: string,
    readonly host: SimHost,
    readonly toolstack: XenStore,
    readonly recorder: SessionRecorder,
    readonly daemonRecording: RecordingSwitch,
  ) {}

  static async start(opts: RecordingWorldOptions): Promise<RecordingWorld> {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'xenblkd-rec-'));
    const recorder = SessionRecorder.open(opts.file, { source: 'world', description: opts.description });
    const simRecording = new RecordingSwitch('sim');
    simRecording.attach(recorder);
    const daemonRecording = new RecordingSwitch('daemon');
    daemonRecording.attach(recorder);
    const host = await SimHost.start({
      stateDir: path.join(dir, 'sim'),
      xenstoreSocket: path.join(dir, 'xenstored.sock'),
      guests: opts.guests ?? 1,
      memoryBytes: 64 << 20,
      queueFactory: opts.queueFactory ?? blockQueueFactory(),
      logger: opts.logger ?? silentLogger,
      protocol: opts.protocol,
      recording: simRecording,
    });
    return new RecordingWorld(opts, dir, host, await host.toolstack(), recorder, daemonRecording);
  }

  async startDaemon(): Promise<Daemon> {
    if (this.daemon) throw new Error('a daemon is running');
    this.daemon = await startDaemon({
      xenstorePath: path.join(this.dir, 'xenstored.sock'),
      stateDir: path.join(this.dir, 'daemon'),
      ports: () => connectSimHypervisor(this.host.hvSocket),
      ...(this.opts.storage ? { storage: { timeoutMs: 5000 } } : { openImage: openRawImage }),
      startDataplane: this.opts.dataplane ?? createDataplane,
      logger: this.opts.logger ?? silentLogger,
      recording: this.daemonRecording,
    });
    return this.daemon;
  }

  async stopDaemon(): Promise<void> {
    const d = this.daemon;
    this.daemon = undefined;
    await d?.stop();
  }

  image(name: string, bytes = 16 << 20): string {
    const file = path.join(this.dir, name);
    fs.writeFileSync(file, '');
    fs.truncateSync(file, bytes);
    return file;
  }

  /** A guest domain as libxl creates it, with no frontend driver running in it. */
  async rawDomain(domid: number): Promise<RawDomain> {
    const domain = this.host.hv.createDomain(domid, { memoryBytes: 16 << 20 });
    const home = `/local/domain/${domid}`;
    await this.toolstack.transaction(async (tx) => {
      await tx.mkdir(home);
      await tx.setPerms(home, [{ domid: 0, access: 'n' }, { domid, access: 'r' }]);
      await tx.write(`${home}/domid`, String(domid));
      await tx.mkdir(`${home}/device`);
      await tx.setPerms(`${home}/device`, [{ domid, access: 'n' }]);
    });
    this.host.xenstored.introduceDomain(domid);
    const xs = await XenStore.connect({ duplex: () => this.host.xenstored.connect(domid), reconnect: false });
    const raw = { domid, domain, xs };
    this.raw.push(raw);
    return raw;
  }

  /** Waits until the node holds the value (undefined: until it is gone). */
  async waitFor(node: string, value: string | undefined, timeoutMs = 10_000): Promise<void> {
    let last: string | undefined;
    const ok = await waitUntil(this.toolstack, node, async () => (last = await this.toolstack.tryRead(node)) === value, timeoutMs);
    if (!ok) throw new Error(`${node}: waited for ${value === undefined ? 'removal' : `'${value}'`}, still '${last}'`);
  }

  /** Until the daemon has processed everything the watches told it. */
  async settled(): Promise<void> {
    await this.daemon?.engine.settled();
  }

  /** Polls until check() holds (the daemon's actors are not watchable from here). */
  async until(what: string, check: () => boolean | Promise<boolean>, timeoutMs = 10_000): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    while (!(await check())) {
      if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
      await new Promise((r) => setTimeout(r, 5));
    }
    await this.settled();
  }

  /** The context of a device actor of the running daemon. */
  device(key: string): { value: unknown; context: Record<string, unknown> } | undefined {
    return this.daemon?.engine.deviceActors().get(key)?.getSnapshot() as { value: unknown; context: Record<string, unknown> } | undefined;
  }

  /** Until the daemon has retired the device (its actor and stream are gone). */
  async untilRetired(key: string): Promise<void> {
    await this.until(`device ${key} retired`, async () => !this.daemon?.engine.deviceActors().has(key) && !(await this.daemon?.store.streams('device/'))?.some((s) => s.endsWith(`/${key}`)));
  }

  async close(): Promise<void> {
    try {
      await this.stopDaemon();
      for (const r of this.raw) await r.xs.close();
      await this.host.close();
    } finally {
      this.recorder.close();
      fs.rmSync(this.dir, { recursive: true, force: true });
    }
  }
}
