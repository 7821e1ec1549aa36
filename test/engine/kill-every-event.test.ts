// Kills the daemon with SIGKILL right after its Nth persisted event, for every N of a
// connect / verified I/O / guest driver reload / verified I/O / unplug cycle, restarts it, and
// checks that the devices end in the same xenstore state as in an uninterrupted run, at every
// checkpoint, and that the guest's I/O saw no error, mismatch, loss or duplicate. The daemon is
// the test build of the CLI (dist/test/xenblkd-hooked.js), the only one that reads the kill hook.
import * as fs from 'node:fs';
import * as path from 'node:path';
import { DaemonProcess } from '../../src/demo/daemon-process';
import { silentLogger } from '../../src/log';
import { blockQueueFactory, isBlockGuestQueue } from '../../src/sim/frontend/block-queue-adapter';
import { DiskModel, runWorkload, type WorkloadReport } from '../../src/sim/guest';
import { SimHost } from '../../src/sim/host';
import { attachDisk, detachDisk } from '../../src/toolstack/disk';
import { waitForValue } from '../support/sim-world';
import { makeImage, tempDir } from '../support/temp';
import { dumpTree } from '../support/xs-dump';
import { HOOKED_CLI, hookedEntry } from '../support/hooked-entries';

const IMAGE_BYTES = 4 << 20;
const SECTORS = IMAGE_BYTES / 512;
/** Each connection of the cycle: writes and reads checked against the model, then a read-back of the disk. */
const IO_OPS = 120;

jest.setTimeout(20 * 60_000);

interface Run {
  checkpoints: Record<string, string[]>;
  persisted: number;
  restarts: number;
  io: WorkloadReport[];
}

async function cycle(killAfter: number | undefined): Promise<Run> {
  const dir = tempDir('xenblkd-kill-');
  const xenstoreSocket = path.join(dir, 'xs.sock');
  // The guest verifies its disk across the whole cycle (both connections), kills included.
  const model = new DiskModel(0, SECTORS);
  const io: Promise<WorkloadReport>[] = [];
  let seed = killAfter ?? 0;
  const seen = new WeakSet<object>();
  const host = await SimHost.start({
    stateDir: path.join(dir, 'sim'),
    xenstoreSocket,
    guests: 1,
    memoryBytes: 64 << 20,
    queueFactory: blockQueueFactory({ indirectSegments: 256 }),
    logger: silentLogger,
    onDisk: (_domid, _devid, queue) => {
      // A connection is announced once per queue (a resize or a restarted backend announces it again).
      if (!isBlockGuestQueue(queue) || seen.has(queue)) return;
      seen.add(queue);
      const q = queue.blockQueue;
      io.push(
        runWorkload(q, { pattern: 'random', mix: { read: 3, write: 4, flush: 0.5, discard: 0.3 }, sizes: [512, 4096, 65536], queueDepth: 8, ops: IO_OPS, seed: ++seed * 31 }, { model }).then((r) =>
          // Then everything the guest ever wrote, read back.
          r.errors + r.mismatches + r.lost + r.duplicated > 0
            ? r
            : runWorkload(q, { pattern: 'sequential', mix: { read: 1 }, sizes: [65536], queueDepth: 8, ops: SECTORS / 128, seed: 7 }, { model }),
        ),
      );
    },
  });
  const logFile = path.join(dir, 'daemon.log');
  const daemon = new DaemonProcess({ xenstoreSocket, hvSocket: host.hvSocket, stateDir: path.join(dir, 'daemon'), logFile, main: hookedEntry(HOOKED_CLI) });
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
    // Which grant refs the ring got depends on how many the guest's I/O held at the time.
    checkpoints[name] = lines.map((l) => l.split(dir).join('<dir>').replace(/(\/ring-ref[0-9]*) = [0-9]+$/, '$1 = <ref>'));
  };
  try {
    // The kill may come before the daemon is even ready (its first events are its own start).
    await daemon.start({ XENBLKD_KILL_AFTER_EVENTS: String(killAfter ?? 0) }).catch(() => undefined);
    void supervise();
    const id = await attachDisk(ts, { frontendDomid: 1, vdev: 'xvda', image: makeImage(dir, 'disk.img', IMAGE_BYTES) });
    const both = async (state: string) => {
      await waitForValue(ts, `${id.backendPath}/state`, state, 30_000);
      await waitForValue(ts, `${id.frontendPath}/state`, state, 30_000);
    };
    await both('4');
    await waitIo(io, 1);
    await snap('connected');
    host.guest(1).unloadDriver(id.devid);
    await both('6');
    await snap('closed');
    host.guest(1).loadDriver(id.devid);
    await both('4');
    await waitIo(io, 2);
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
  return { checkpoints, persisted, restarts, io: await Promise.all(io) };
}

/** Waits until the guest's nth connection ran its I/O. */
async function waitIo(io: Promise<WorkloadReport>[], n: number): Promise<void> {
  for (let i = 0; io.length < n; i++) {
    if (i > 3000) throw new Error(`the guest's connection ${n} never started its I/O`);
    await new Promise((r) => setTimeout(r, 10));
  }
  await io[n - 1];
}

function ioProblems(run: Run): string[] {
  return run.io.flatMap((r, i) =>
    r.errors + r.mismatches + r.lost + r.duplicated + r.badOperations > 0 || r.notes.length > 0
      ? [`connection ${i + 1}: ${JSON.stringify({ errors: r.errors, mismatches: r.mismatches, lost: r.lost, duplicated: r.duplicated, badOperations: r.badOperations, notes: r.notes.slice(0, 3) })}`]
      : [],
  );
}

describe('SIGKILL after every persisted event', () => {
  it('converges to the same xenstore state as an uninterrupted run, whatever event the kill follows', async () => {
    const baseline = await cycle(undefined);
    expect(baseline.restarts).toBe(0);
    expect(baseline.persisted).toBeGreaterThan(10);
    expect(baseline.io.length).toBe(2);
    expect(ioProblems(baseline)).toEqual([]);
    const failures: string[] = [];
    for (let n = 1; n <= baseline.persisted; n++) {
      const run = await cycle(n);
      // How many events a cycle persists varies a little with watch timing: a run that stayed
      // below n was never killed (or only once the cycle was over).
      const killed = run.restarts === 1;
      const spared = run.restarts === 0 && run.persisted <= n;
      if (run.io.length !== 2) failures.push(`kill after event ${n}: the guest connected ${run.io.length} times`);
      for (const p of ioProblems(run)) failures.push(`kill after event ${n}, I/O of ${p}`);
      if (!killed && !spared) failures.push(`kill after event ${n}: the daemon restarted ${run.restarts} times (${run.persisted} events)`);
      for (const [name, lines] of Object.entries(baseline.checkpoints)) {
        const got = run.checkpoints[name] ?? [];
        const missing = lines.filter((l) => !got.includes(l));
        const extra = got.filter((l) => !lines.includes(l));
        if (missing.length || extra.length) failures.push(`kill after event ${n}, at ${name}: missing ${JSON.stringify(missing)}, unexpected ${JSON.stringify(extra)}`);
      }
    }
    process.stdout.write(`kill after every event: ${baseline.persisted} kill points, each with ${2 * IO_OPS} verified requests and two read-backs\n`);
    expect(failures).toEqual([]);
  });
});
