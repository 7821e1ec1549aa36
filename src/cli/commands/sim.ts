import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { UserError, parseOptions, type Command } from '../command';
import { loggerFrom, untilSignal } from '../logging';
import { SimHost } from '../../sim/host';
import { blockQueueFactory, isBlockGuestQueue } from '../../sim/frontend/block-queue-adapter';
import { runWorkload } from '../../sim/guest/workload';
import { parseWorkloadSpec, WorkloadSpecError, type WorkloadSpecInput } from '../../sim/guest/workload-spec';
import { RecorderError, SessionRecorder } from '../../replay/recorder';
import { RecordingSwitch } from '../../replay/tap';

const usage = `usage: xenblkd sim --socket PATH [options]

Runs a simulated Xen host in the foreground until SIGTERM or SIGINT: an embedded xenstored
serving dom0 at PATH, a hypervisor service (grant tables, event channels over shared memory) at
<state-dir>/hv.sock, and guest domains 1..N whose block frontends behave like Linux blkfront.
Point the daemon at it with: xenblkd run --sim <state-dir>/hv.sock --xenstore PATH

  --socket PATH      dom0's xenstore socket
  --guests N         guest domains to create (default 1)
  --state-dir DIR    hv.sock and, with --persist, the xenstore tree (default: a temporary folder)
  --persist          keep the xenstore tree in <state-dir>/xenstore across restarts
  --memory-mib N     memory of each guest (default 256)
  --workload JSON    run this verifying workload on every disk once it connects, e.g.
                     '{"pattern":"random","queueDepth":32,"durationMs":60000}'
  --record FILE      record the guests' frontends (inputs, transitions, xenstore writes) into
                     FILE as a session ('xenblkd replay FILE' checks it)
  --log-format json|pretty, --log-level LEVEL`;

export const command: Command = {
  summary: 'run the simulated Xen host (xenstored, hypervisor, guests with blkfront)',
  usage,
  async run(argv) {
    const { values } = parseOptions(argv, {
      socket: { type: 'string' },
      guests: { type: 'string' },
      'state-dir': { type: 'string' },
      persist: { type: 'boolean' },
      'memory-mib': { type: 'string' },
      workload: { type: 'string' },
      record: { type: 'string' },
      'log-format': { type: 'string' },
      'log-level': { type: 'string' },
    });
    if (!values.socket) throw new UserError('--socket PATH is required');
    const guests = values.guests === undefined ? 1 : Number(values.guests);
    if (!Number.isInteger(guests) || guests < 0 || guests > 1000) throw new UserError(`--guests takes 0..1000, got '${values.guests}'`);
    const memoryMiB = values['memory-mib'] === undefined ? 256 : Number(values['memory-mib']);
    if (!Number.isInteger(memoryMiB) || memoryMiB < 4 || memoryMiB > 65536) throw new UserError(`--memory-mib takes 4..65536, got '${values['memory-mib']}'`);
    let workload: WorkloadSpecInput | undefined;
    if (values.workload !== undefined) {
      try {
        workload = JSON.parse(values.workload) as WorkloadSpecInput;
        parseWorkloadSpec(workload);
      } catch (err) {
        throw new UserError(`--workload: ${err instanceof WorkloadSpecError ? err.message : `not JSON: ${(err as Error).message}`}`);
      }
    }
    const stateDir = values['state-dir'] ?? fs.mkdtempSync(path.join(os.tmpdir(), 'xenblkd-sim-'));
    const logger = loggerFrom(values['log-format'], values['log-level'], 'xenblkd-sim');
    const running = new Set<string>();
    const recording = new RecordingSwitch('sim');
    if (values.record !== undefined) {
      try {
        recording.attach(SessionRecorder.open(path.resolve(values.record), { source: 'sim', onError: (err) => logger.error({ err }, err.message) }));
      } catch (err) {
        if (err instanceof RecorderError) throw new UserError(err.message);
        throw err;
      }
    }
    let host: SimHost;
    try {
      host = await SimHost.start({
        stateDir,
        xenstoreSocket: values.socket,
        guests,
        memoryBytes: memoryMiB << 20,
        persistXenstore: values.persist === true,
        queueFactory: blockQueueFactory(),
        logger,
        recording,
        onDisk: (domid, devid, queue) => {
          const key = `${domid}/${devid}`;
          if (!workload || !isBlockGuestQueue(queue) || running.has(key)) return;
          running.add(key);
          void runWorkload(queue.blockQueue, workload, (r) => logger.info({ disk: key, ops: r.ops, iops: Math.round(r.iops), mbPerSec: Number(r.mbPerSec.toFixed(1)), errors: r.errors, mismatches: r.mismatches }, 'workload progress')).then(
            (r) => logger.info({ disk: key, ...r, notes: undefined }, 'workload done'),
            (err) => logger.error({ err, disk: key }, 'workload failed'),
          );
        },
      });
    } catch (err) {
      recording.detach()?.close();
      const code = (err as NodeJS.ErrnoException).code;
      if (code === 'EADDRINUSE' || code === 'EACCES' || code === 'ENOENT') throw new UserError(`cannot serve at ${values.socket}: ${code}`);
      throw err;
    }
    // Handlers first: whoever reads "sim ready" may signal at once.
    const signalled = untilSignal();
    process.stdout.write(`sim ready: xenstore ${values.socket}, hypervisor ${host.hvSocket}, guests 1..${guests}\n`);
    await signalled;
    await host.close();
    recording.detach()?.close();
    return 0;
  },
};
