// A simulated host and a daemon in this process, for lifecycle tests.
import * as path from 'node:path';
import type { XenStore } from '../../src/io/xs/client';
import { connectSimHypervisor } from '../../src/io/sim';
import { openRawImage } from '../../src/io/storage/raw';
import { silentLogger, type Logger } from '../../src/log';
import { type Daemon, type DaemonOptions, startDaemon } from '../../src/daemon/daemon';
import { SimHost } from '../../src/sim/host';
import type { DataplaneFactory } from '../../src/effects/dataplane-port';
import type { GuestQueueFactory } from '../../src/sim/frontend/guest-queue';
import { waitUntil } from '../../src/effects/xenstore';
import { ringOnlyDataplane, ringOnlyQueueFactory } from './ring-only';
import { tempDir } from './temp';

export interface World {
  readonly host: SimHost;
  readonly toolstack: XenStore;
  readonly dir: string;
  readonly xenstoreSocket: string;
  startDaemon(extra?: Partial<DaemonOptions>): Promise<Daemon>;
  close(): Promise<void>;
}

export async function simWorld(opts: { guests?: number; queueFactory?: GuestQueueFactory; dataplane?: DataplaneFactory; logger?: Logger } = {}): Promise<World> {
  const dir = tempDir('xenblkd-world-');
  const xenstoreSocket = path.join(dir, 'xenstored.sock');
  const logger = opts.logger ?? silentLogger;
  const host = await SimHost.start({
    stateDir: path.join(dir, 'sim'),
    xenstoreSocket,
    guests: opts.guests ?? 2,
    memoryBytes: 64 * 1024 * 1024,
    queueFactory: opts.queueFactory ?? ringOnlyQueueFactory,
    logger,
  });
  const toolstack = await host.toolstack();
  const daemons: Daemon[] = [];
  return {
    host,
    toolstack,
    dir,
    xenstoreSocket,
    async startDaemon(extra = {}) {
      const d = await startDaemon({
        xenstorePath: xenstoreSocket,
        stateDir: path.join(dir, 'daemon'),
        ports: () => connectSimHypervisor(host.hvSocket),
        openImage: openRawImage,
        startDataplane: opts.dataplane ?? ringOnlyDataplane,
        logger,
        ...extra,
      });
      daemons.push(d);
      return d;
    },
    async close() {
      for (const d of daemons) await d.stop().catch(() => undefined);
      await host.close();
    },
  };
}

/** Waits until the node holds the value ('' never matches a missing node; undefined waits for removal). */
export async function waitForValue(xs: XenStore, nodePath: string, value: string | undefined, timeoutMs = 10_000): Promise<void> {
  let last: string | undefined;
  const ok = await waitUntil(xs, nodePath, async () => (last = await xs.tryRead(nodePath)) === value, timeoutMs);
  if (!ok) throw new Error(`${nodePath}: waited for ${value === undefined ? 'removal' : `'${value}'`}, still '${last}'`);
}
