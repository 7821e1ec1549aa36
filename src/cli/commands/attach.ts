import * as fs from 'node:fs';
import * as path from 'node:path';
import { UserError, parseOptions, type Command } from '../command';
import { XENSTORE_OPTION_HELP, connectXenstore, parseDomid } from '../xenstore';
import { ToolstackError, attachDisk } from '../../toolstack/disk';
import { waitUntil } from '../../effects/xenstore';
import { formatTarget, parseTarget } from '../../io/storage/target';

const FILE_FORMAT_PREFIX = /^(raw|aio|file|phy|qcow2|vhdx|vmdk|vpc|vhd):/;

/** A file path relative to the working directory made absolute; network targets as given. */
function absolutized(text: string): string {
  const prefix = FILE_FORMAT_PREFIX.exec(text)?.[0] ?? '';
  // Any other NAME: prefix is a target kind or format for parseTarget to judge.
  if (prefix === '' && /^[a-z][a-z0-9+]*:/.test(text)) return text;
  const rest = text.slice(prefix.length);
  if (rest.startsWith('rbd:') || rest.startsWith('nbd:') || rest.startsWith('nbd+unix:')) return text;
  return prefix + path.resolve(rest);
}

/**
 * The target as params will carry it. Files named here are checked now (relative paths resolved
 * against the working directory); network targets are the daemon's to reach (--wait reports it).
 */
function localTarget(text: string, readOnly: boolean): string {
  const parsed = parseTarget(absolutized(text));
  if (!parsed.ok) throw new UserError(`--image: ${parsed.message}`);
  const spec = parsed.value;
  if (spec.driver !== 'raw' && spec.driver !== 'qsd') return formatTarget(spec);
  const file = spec.path;
  let stat: fs.Stats;
  try {
    stat = fs.statSync(file);
  } catch {
    throw new UserError(`image ${file} not found`);
  }
  if (!stat.isFile() && !stat.isBlockDevice()) throw new UserError(`image ${file} is not a regular file or a block device`);
  try {
    fs.closeSync(fs.openSync(file, readOnly ? 'r' : 'r+'));
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    throw new UserError(`image ${file} cannot be opened for ${readOnly ? 'reading' : 'writing'} (${code}); ${readOnly ? 'check its permissions' : 'attach it --read-only or fix its permissions'}`);
  }
  return formatTarget(spec);
}

const usage = `usage: xenblkd attach --domid N --vdev NAME --image SPEC [options]

Plugs a disk into a running domain the way libxl does: writes the backend and frontend
directories (with their permissions) in one transaction. The backend daemon (xenblkd run)
then realizes and connects it.

  --domid N          the guest (frontend) domain
  --vdev NAME        xvda, hdb, sdc, d0p1 or a device number
  --image SPEC       where the disk lives, as libxl and QEMU spell it:
                       FILE or DEVICE (raw; absolute or relative path)
                       qcow2:FILE, vhdx:FILE, vmdk:FILE, vpc:FILE (served by qemu-storage-daemon)
                       rbd:POOL[/NAMESPACE]/IMAGE[@SNAP][:id=ID][:conf=PATH]
                       nbd:unix:PATH[:exportname=NAME], nbd:HOST:PORT[:exportname=NAME],
                       nbd://HOST[:PORT]/NAME
  --read-only        attach read-only (mode r)
  --cdrom            attach as a CD-ROM (read-only)
  --backend-domid N  the domain running the backend (default 0)
  --backend-type T   backend directory type (default vbd)
  --wait SECONDS     wait until the backend is Connected (state 4)
${XENSTORE_OPTION_HELP}`;

export const command: Command = {
  summary: 'plug a disk into a domain (toolstack side, as libxl)',
  usage,
  async run(argv) {
    const { values } = parseOptions(argv, {
      domid: { type: 'string' },
      vdev: { type: 'string' },
      image: { type: 'string' },
      'read-only': { type: 'boolean' },
      cdrom: { type: 'boolean' },
      'backend-domid': { type: 'string' },
      'backend-type': { type: 'string' },
      wait: { type: 'string' },
      xenstore: { type: 'string' },
    });
    const frontendDomid = parseDomid(values.domid, '--domid');
    const backendDomid = values['backend-domid'] === undefined ? 0 : parseDomid(values['backend-domid'], '--backend-domid');
    if (!values.vdev) throw new UserError('--vdev NAME is required');
    if (!values.image) throw new UserError('--image SPEC is required');
    const image = localTarget(values.image, values['read-only'] || values.cdrom === true);
    const waitSeconds = values.wait === undefined ? undefined : Number(values.wait);
    if (waitSeconds !== undefined && !(waitSeconds > 0)) throw new UserError(`--wait takes a number of seconds, got '${values.wait}'`);
    const xs = await connectXenstore(values.xenstore);
    try {
      const id = await attachDisk(xs, {
        frontendDomid,
        backendDomid,
        backendType: values['backend-type'],
        vdev: values.vdev,
        image,
        readOnly: values['read-only'],
        cdrom: values.cdrom,
      }).catch((err: unknown) => {
        if (err instanceof ToolstackError) throw new UserError(err.message);
        throw err;
      });
      process.stdout.write(`attached ${values.vdev} (device ${id.devid}) to domain ${frontendDomid}: ${id.backendPath}\n`);
      if (waitSeconds !== undefined) {
        const statePath = `${id.backendPath}/state`;
        const ok = await waitUntil(xs, statePath, async () => (await xs.tryRead(statePath)) === '4', waitSeconds * 1000);
        if (!ok) {
          const why = await xs.tryRead(`${id.backendPath}/hotplug-error`);
          process.stderr.write(`xenblkd: backend state is ${(await xs.tryRead(statePath)) ?? 'gone'} after ${waitSeconds}s, not Connected (4)${why ? `: ${why}` : ''}\n`);
          return 1;
        }
        process.stdout.write('connected\n');
      }
      return 0;
    } finally {
      await xs.close();
    }
  },
};
