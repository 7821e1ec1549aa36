import * as net from 'node:net';
import { UserError, parseOptions, type Command } from '../command';
import { untilSignal } from '../logging';
import { parseListen } from '../config';
import { formatSummary, runDemo } from '../../demo/demo';
import { DEMO_STORAGE_KINDS, checkDemoStorage, type DemoStorageKind } from '../../demo/storage';

const usage = `usage: xenblkd demo [options]

Runs the whole thing on this machine, no Xen needed: a simulated Xen host with guests whose
disks are served by the xenblkd daemon (a child process), verifying workloads in the guests,
the daemon SIGKILLed and restarted in mid-I/O, a live view, the dashboard, and a summary.

  --guests N        guests, one disk each (default 2)
  --seconds S       how long the workloads run (default 20)
  --kill-every S    SIGKILL and restart the daemon every S seconds (default: once, mid-run; 0: never)
  --image-mib N     size of each disk image (default 256)
  --http HOST:PORT  the dashboard (default 127.0.0.1 and a free port)
  --stay            keep the daemon and the dashboard up after the run, until Ctrl-C
  --json            print the final summary as one JSON object
  --dir DIR         work in DIR (kept) instead of a temporary folder
  --storage KIND    where the disks live: file (default), qcow2 (served through
                    qemu-storage-daemon), nbd (a qemu-nbd per disk), rbd (a single-node
                    Ceph cluster started for the demo)`;

async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = net.createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const port = (s.address() as net.AddressInfo).port;
      s.close(() => resolve(port));
    });
  });
}

function positive(text: string | undefined, dflt: number, name: string, allowZero = false): number {
  if (text === undefined) return dflt;
  const n = Number(text);
  if (!Number.isFinite(n) || n < 0 || (!allowZero && n === 0)) throw new UserError(`${name} takes a ${allowZero ? 'non-negative' : 'positive'} number, got '${text}'`);
  return n;
}

export const command: Command = {
  summary: 'run the demo: simulated host, guests with verifying workloads, daemon kills',
  usage,
  async run(argv) {
    const { values } = parseOptions(argv, {
      guests: { type: 'string' },
      seconds: { type: 'string' },
      'kill-every': { type: 'string' },
      'image-mib': { type: 'string' },
      http: { type: 'string' },
      stay: { type: 'boolean' },
      json: { type: 'boolean' },
      dir: { type: 'string' },
      storage: { type: 'string' },
    });
    const storage = values.storage ?? 'file';
    if (!(DEMO_STORAGE_KINDS as readonly string[]).includes(storage)) {
      throw new UserError(`--storage takes ${DEMO_STORAGE_KINDS.join(', ')}, got '${storage}'`);
    }
    // Before anything starts: a missing package is one line.
    try {
      checkDemoStorage(storage as DemoStorageKind);
    } catch (e) {
      throw new UserError((e as Error).message);
    }
    const guests = positive(values.guests, 2, '--guests');
    if (!Number.isInteger(guests) || guests > 64) throw new UserError(`--guests takes 1..64, got '${values.guests}'`);
    const json = values.json === true;
    if (values.http !== undefined) parseListen(values.http);
    // Ctrl-C during the run ends it cleanly (daemon stopped, scratch folder removed), with a summary.
    const interrupted = new AbortController();
    const onSignal = () => interrupted.abort();
    process.once('SIGINT', onSignal);
    process.once('SIGTERM', onSignal);
    const summary = await runDemo({
      guests,
      seconds: positive(values.seconds, 20, '--seconds'),
      killEvery: values['kill-every'] === undefined ? undefined : positive(values['kill-every'], 0, '--kill-every', true),
      imageMiB: positive(values['image-mib'], 256, '--image-mib'),
      storage: storage as DemoStorageKind,
      http: values.http ?? `127.0.0.1:${await freePort()}`,
      stay: values.stay === true,
      dir: values.dir,
      keep: values.dir !== undefined,
      live: !json && process.stdout.isTTY === true,
      // With --json, progress goes to stderr so that stdout holds the summary alone.
      out: (line) => (json ? process.stderr : process.stdout).write(line + '\n'),
      untilStopped: () => {
        process.off('SIGINT', onSignal);
        process.off('SIGTERM', onSignal);
        return untilSignal();
      },
      signal: interrupted.signal,
      onSummary: (s) => {
        if (json) process.stdout.write(JSON.stringify(s) + '\n');
        else process.stdout.write('\n' + formatSummary(s) + '\n');
      },
    }).catch((err: Error) => {
      // The demo's own failures (a daemon that would not start, ...) are one line too.
      throw new UserError(err.message.split('\n')[0], 1);
    });
    return summary.ok ? 0 : 1;
  },
};
