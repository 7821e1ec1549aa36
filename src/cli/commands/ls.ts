import * as path from 'node:path';
import { UserError, parseOptions, type Command } from '../command';
import { readConfig } from '../config';
import { connectXenstore, parseDomid } from '../xenstore';
import { controlRequest } from '../../daemon/control';
import type { DeviceListing } from '../../daemon/serve';
import type { StoreView } from '../../dashboard/model';
import { listDisks } from '../../toolstack/disk';
import { XenbusState } from '../../machines';

const usage = `usage: xenblkd ls [options]

Lists the devices a running daemon serves, asking it on its control socket
(<state-dir>/control.sock): each device's phase, backend and frontend states, image and I/O
counters. When no daemon answers it says so; with --xenstore it then lists the disks the
toolstack created in xenstore instead.

  --state-dir DIR    the daemon's state folder (default /var/lib/xenblkd, or from --config)
  --config FILE      read state-dir (and backend-domid, backend-type) from the daemon's config
  --json             print the listing as one JSON array
  --xenstore [PATH]  without a daemon: list the disks in xenstore; PATH is xenstored's socket or
                     /dev/xen/xenbus (default: $XENSTORED_PATH, $XENSTORED_RUNDIR/socket,
                     /var/run/xenstored/socket, /dev/xen/xenbus)
  --backend-domid N  with --xenstore: the backend's domain (default 0)
  --backend-type T   with --xenstore: the backend directory type (default vbd)`;

const STATE_NAMES: Record<number, string> = Object.fromEntries(Object.entries(XenbusState).filter(([, v]) => typeof v === 'number').map(([k, v]) => [v as number, k]));

function stateName(n: number | null | undefined): string {
  return n === null || n === undefined ? '-' : `${n} ${STATE_NAMES[n] ?? '?'}`;
}

function mib(sectors: number): string {
  return `${((sectors * 512) / (1 << 20)).toFixed(1)}M`;
}

function table(rows: string[][]): string {
  const widths = rows[0].map((_, i) => Math.max(...rows.map((r) => r[i].length)));
  return rows.map((r) => r.map((c, i) => (i === r.length - 1 ? c : c.padEnd(widths[i]))).join('  ').trimEnd()).join('\n');
}

export function formatDevices(devices: readonly DeviceListing[]): string {
  if (devices.length === 0) return 'no devices';
  const rows = [['DEVICE', 'PHASE', 'BACKEND', 'FRONTEND', 'ONLINE', 'READS', 'WRITES', 'READ', 'WRITTEN', 'ERRORS', 'IMAGE']];
  for (const d of devices) {
    const s = d.stats;
    rows.push([
      d.key,
      d.phase,
      stateName(d.backendState),
      stateName(d.frontendState),
      d.online ? 'yes' : 'no',
      s ? String(s.rdReq) : '-',
      s ? String(s.wrReq) : '-',
      s ? mib(s.rdSect) : '-',
      s ? mib(s.wrSect) : '-',
      s ? String(s.errors) : '-',
      (d.image ?? '-') +
        (d.storageStalledSince !== undefined ? `  (storage not answering for ${Math.round((Date.now() - d.storageStalledSince) / 1000)} s: requests wait)` : '') +
        (d.lastError ? `  (last error: ${d.lastError})` : '') + (s?.journalFailures ? `  (publication journal faults: ${s.journalFailures})` : ''),
    ]);
  }
  return table(rows);
}

/** One line when the event store refuses writes; '' while it takes them. */
export function formatStore(store: StoreView | undefined, now = Date.now()): string {
  if (!store || store.writable) return '';
  const what = store.reason === 'corrupt' ? 'the event store is corrupt' : `the state folder refuses writes${store.code ? ` (${store.code})` : ''}`;
  const since = store.since === undefined ? '' : ` for ${Math.round((now - store.since) / 1000)} s`;
  const waiting = store.waiting.length ? `; ${store.waiting.length} new device(s) waiting: ${store.waiting.join(' ')}` : '';
  return `EVENT STORE: ${what}${since}: state changes wait, connected devices keep serving${waiting} (${store.message ?? ''})`;
}

export const command: Command = {
  summary: "list a running daemon's devices (or, with --xenstore, the disks in xenstore)",
  usage,
  async run(argv) {
    // `--xenstore` without a PATH means the default one.
    const args = argv.map((a, i) => (a === '--xenstore' && (i === argv.length - 1 || argv[i + 1].startsWith('--')) ? '--xenstore=' : a));
    const { values } = parseOptions(args, {
      'state-dir': { type: 'string' },
      config: { type: 'string' },
      json: { type: 'boolean' },
      xenstore: { type: 'string' },
      'backend-domid': { type: 'string' },
      'backend-type': { type: 'string' },
    });
    const file = values.config ? readConfig(values.config) : {};
    const stateDir = values['state-dir'] ?? file['state-dir'] ?? '/var/lib/xenblkd';
    const socket = path.join(stateDir, 'control.sock');
    let devices: DeviceListing[] | undefined;
    let why = '';
    try {
      devices = (await controlRequest(socket, { op: 'devices' }, 5000)) as DeviceListing[];
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code;
      why = code === 'ENOENT' || code === 'ECONNREFUSED' ? 'no daemon is running' : code === 'EACCES' ? 'permission denied' : (err as Error).message;
    }
    if (devices) {
      process.stdout.write((values.json ? JSON.stringify(devices) : formatDevices(devices)) + '\n');
      // A daemon from before the 'store' request answers it with an error: nothing to add then.
      const store = (await controlRequest(socket, { op: 'store' }, 5000).catch(() => undefined)) as StoreView | undefined;
      const line = formatStore(store);
      if (line) process.stderr.write(`${line}\n`);
      return 0;
    }
    const message = `${why} (no answer on ${socket})`;
    if (values.xenstore === undefined) throw new UserError(`${message}; --xenstore lists the disks in xenstore instead`, 1);
    const backendDomid = values['backend-domid'] ?? file['backend-domid'];
    const backendType = values['backend-type'] ?? file['backend-type'] ?? 'vbd';
    const xs = await connectXenstore(values.xenstore === '' ? undefined : values.xenstore).catch((err: Error) => {
      throw new UserError(`${message}; and xenstore: ${err.message}`, 1);
    });
    process.stderr.write(`xenblkd: ${message}; the disks in xenstore:\n`);
    try {
      const disks = await listDisks(xs, backendDomid === undefined ? 0 : parseDomid(backendDomid, '--backend-domid'), backendType);
      if (values.json) {
        process.stdout.write(JSON.stringify(disks) + '\n');
      } else if (disks.length === 0) {
        process.stdout.write('no disks\n');
      } else {
        const rows = [['DEVICE', 'BACKEND', 'IMAGE']];
        for (const d of disks) rows.push([`${d.frontendDomid}/${d.devid}`, d.state === undefined ? '-' : stateName(Number(d.state)), d.params ?? '-']);
        process.stdout.write(table(rows) + '\n');
      }
      return 0;
    } finally {
      await xs.close();
    }
  },
};
