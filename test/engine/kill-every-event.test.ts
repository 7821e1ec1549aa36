// Kills the daemon with SIGKILL right after its Nth persisted event, for every N of a
// connect / guest driver reload / unplug cycle, restarts it, and checks that the devices end in
// the same xenstore state as in an uninterrupted run, at every checkpoint.
import * as fs from 'node:fs';
import * as path from 'node:path';
import { DaemonProcess } from '../../src/demo/daemon-process';
import { silentLogger } from '../../src/log';
import { idleQueueFactory } from '../../src/sim/frontend/idle-queue';
import { SimHost } from '../../src/sim/host';
import { attachDisk, detachDisk } from '../../src/toolstack/disk';
import { waitForValue } from '../support/sim-world';
import { makeImage, tempDir } from '../support/temp';
import { dumpTree } from '../support/xs-dump';

jest.setTimeout(20 * 60_000);

interface Run {
  checkpoints: Record<string, string[]>;
  persisted: number;
  restarts: number;
}

async function cycle(killAfter: number | undefined): Promise<Run> {
  const dir = tempDir('xenblkd-kill-');
  const xenstoreSocket = path.join(dir, 'xs.sock');
  const host = await SimHost.start({ stateDir: path.join(dir, 'sim'), xenstoreSocket, guests: 1, memoryBytes: 32 << 20, queueFactory: idleQueueFactory, logger: silentLogger });
  const logFile = path.join(dir, 'daemon.log');
  const daemon = new DaemonProcess({ xenstoreSocket, hvSocket: host.hvSocket, stateDir: path.join(dir, 'daemon'), logFile });
  let stopping = false;
  let restarts = 0;
  // The supervisor: a daemon that died is started again at once (as systemd's Restart=always).
  const supervise = async (): Promise<void> => {
    await daemon.waitExit();
    if (stopping) return;
    restarts += 1;
    await daemon.start().catch(() => undefined);
    void supervise();
  };
  const checkpoints: Record<string, string[]> = {};
  const ts = await host.toolstack();
  const snap = async (name: string) => {
    const lines = [...(await dumpTree(ts, '/local/domain/0/backend')), ...(await dumpTree(ts, '/local/domain/1/device'))];
    checkpoints[name] = lines.map((l) => l.split(dir).join('<dir>'));
  };
  try {
    // The kill may come before the daemon is even ready (its first events are its own start).
    await daemon.start({ XENBLKD_KILL_AFTER_EVENTS: String(killAfter ?? 0) }).catch(() => undefined);
    void supervise();
    const id = await attachDisk(ts, { frontendDomid: 1, vdev: 'xvda', image: makeImage(dir, 'disk.img', 8 << 20) });
    const both = async (state: string) => {
      await waitForValue(ts, `${id.backendPath}/state`, state, 30_000);
      await waitForValue(ts, `${id.frontendPath}/state`, state, 30_000);
    };
    await both('4');
    await snap('connected');
    host.guest(1).unloadDriver(id.devid);
    await both('6');
    await snap('closed');
    host.guest(1).loadDriver(id.devid);
    await both('4');
    await snap('reconnected');
    const detached = await detachDisk(ts, id, { timeoutMs: 30_000 });
    expect(detached.clean).toBe(true);
    await snap('unplugged');
  } catch (e) {
    // Name the kill point and keep the daemon's last words: a failure here is a recovery bug.
    const tail = fs.existsSync(logFile) ? fs.readFileSync(logFile, 'utf8').trim().split('\n').slice(-25).join('\n') : '';
    throw new Error(`kill after event ${killAfter ?? 'none'}: ${(e as Error).message}\n${tail}`);
  } finally {
    stopping = true;
    await daemon.stop();
    await host.close();
  }
  const persisted = fs
    .readFileSync(logFile, 'utf8')
    .split('\n')
    .filter((l) => l.includes('"event persisted"')).length;
  return { checkpoints, persisted, restarts };
}

describe('SIGKILL after every persisted event', () => {
  it('converges to the same xenstore state as an uninterrupted run, whatever event the kill follows', async () => {
    const baseline = await cycle(undefined);
    expect(baseline.restarts).toBe(0);
    expect(baseline.persisted).toBeGreaterThan(10);
    const failures: string[] = [];
    for (let n = 1; n <= baseline.persisted; n++) {
      const run = await cycle(n);
      // How many events a cycle persists varies a little with watch timing: a run that stayed
      // below n was never killed (or only once the cycle was over).
      const killed = run.restarts === 1;
      const spared = run.restarts === 0 && run.persisted <= n;
      if (!killed && !spared) failures.push(`kill after event ${n}: the daemon restarted ${run.restarts} times (${run.persisted} events)`);
      for (const [name, lines] of Object.entries(baseline.checkpoints)) {
        const got = run.checkpoints[name] ?? [];
        const missing = lines.filter((l) => !got.includes(l));
        const extra = got.filter((l) => !lines.includes(l));
        if (missing.length || extra.length) failures.push(`kill after event ${n}, at ${name}: missing ${JSON.stringify(missing)}, unexpected ${JSON.stringify(extra)}`);
      }
    }
    expect(failures).toEqual([]);
  });
});
