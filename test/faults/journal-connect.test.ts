// The daemon's connect path when a device's publication journal cannot be created: the device is
// not failed for good; it waits, with one error line in the log, and connects by itself once the
// file can be made. Real daemon (the shipped CLI), simulated host, a guest verifying its disk.
import * as fs from 'node:fs';
import * as path from 'node:path';
import { DaemonProcess } from '../../src/demo/daemon-process';
import { journalFileName } from '../../src/effects/dataplane/journal';
import { silentLogger } from '../../src/log';
import { blockQueueFactory, isBlockGuestQueue } from '../../src/sim/frontend/block-queue-adapter';
import { DiskModel, runWorkload, type WorkloadReport } from '../../src/sim/guest';
import { SimHost } from '../../src/sim/host';
import { attachDisk } from '../../src/toolstack/disk';
import { waitForValue } from '../support/sim-world';
import { makeImage, tempDir } from '../support/temp';

jest.setTimeout(60_000);

describe('a device whose publication journal cannot be created', () => {
  it('waits visibly instead of failing, and connects once the journal can be made', async () => {
    const dir = tempDir('xenblkd-journal-connect-');
    const xenstoreSocket = path.join(dir, 'xs.sock');
    const stateDir = path.join(dir, 'daemon');
    const io: Promise<WorkloadReport>[] = [];
    const host = await SimHost.start({
      stateDir: path.join(dir, 'sim'),
      xenstoreSocket,
      guests: 1,
      memoryBytes: 64 << 20,
      queueFactory: blockQueueFactory({ indirectSegments: 256 }),
      logger: silentLogger,
      onDisk: (_domid, _devid, queue) => {
        if (isBlockGuestQueue(queue) && io.length === 0) {
          io.push(runWorkload(queue.blockQueue, { pattern: 'random', mix: { read: 1, write: 1, flush: 0.2, discard: 0.2 }, sizes: [4096, 65536], queueDepth: 8, ops: 300, seed: 1 }, { model: new DiskModel(0, (4 << 20) / 512) }));
        }
      },
    });
    const logFile = path.join(dir, 'daemon.log');
    const daemon = new DaemonProcess({ xenstoreSocket, hvSocket: host.hvSocket, stateDir, logFile });
    try {
      await daemon.start();
      // Something the daemon cannot open as its journal file: open() fails with EISDIR.
      const journal = path.join(stateDir, journalFileName('vbd', 1, 51712));
      fs.mkdirSync(journal);
      const ts = await host.toolstack();
      const id = await attachDisk(ts, { frontendDomid: 1, vdev: 'xvda', image: makeImage(dir, 'disk.img', 4 << 20) });
      expect(id.devid).toBe(51712);
      const waitLine = /publication journal .*\.pubjournal: open: EISDIR: the device waits, retrying every 5 s at most/;
      const log = () => fs.readFileSync(logFile, 'utf8');
      for (let i = 0; !waitLine.test(log()); i++) {
        if (i > 500) throw new Error(`no journal error in the log:\n${log().slice(-2000)}`);
        await new Promise((r) => setTimeout(r, 20));
      }
      // Still waiting a while later: not connected, not failed, and logged once.
      await new Promise((r) => setTimeout(r, 1500));
      expect(await ts.tryRead(`${id.backendPath}/state`)).not.toBe('4');
      expect(await ts.tryRead(`${id.backendPath}/hotplug-status`)).not.toBe('error');
      expect(log().split('\n').filter((l) => waitLine.test(l))).toHaveLength(1);
      expect(io).toHaveLength(0);

      fs.rmdirSync(journal);
      await waitForValue(ts, `${id.backendPath}/state`, '4', 15_000);
      await waitForValue(ts, `${id.frontendPath}/state`, '4', 15_000);
      expect(log()).toMatch(/publication journal writable again: connecting/);
      expect(fs.statSync(journal).isFile()).toBe(true);
      for (let i = 0; io.length === 0; i++) {
        if (i > 500) throw new Error('the guest never started its I/O');
        await new Promise((r) => setTimeout(r, 10));
      }
      const r = await io[0];
      expect({ errors: r.errors, mismatches: r.mismatches, lost: r.lost, duplicated: r.duplicated, ops: r.ops }).toEqual({ errors: 0, mismatches: 0, lost: 0, duplicated: 0, ops: 300 });
    } finally {
      await daemon.stop();
      await host.close();
    }
  });
});
