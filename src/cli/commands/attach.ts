import * as fs from 'node:fs';
import * as path from 'node:path';
import { UserError, parseOptions, type Command } from '../command';
import { XENSTORE_OPTION_HELP, connectXenstore, parseDomid } from '../xenstore';
import { ToolstackError, attachDisk } from '../../toolstack/disk';
import { waitUntil } from '../../effects/xenstore';

const usage = `usage: xenblkd attach --domid N --vdev NAME --image FILE [options]

Plugs a disk into a running domain the way libxl does: writes the backend and frontend
directories (with their permissions) in one transaction. The backend daemon (xenblkd run)
then realizes and connects it.

  --domid N          the guest (frontend) domain
  --vdev NAME        xvda, hdb, sdc, d0p1 or a device number
  --image FILE       raw image file or block device (absolute or relative path)
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
    if (!values.image) throw new UserError('--image FILE is required');
    const image = path.resolve(values.image);
    let stat: fs.Stats;
    try {
      stat = fs.statSync(image);
    } catch {
      throw new UserError(`image ${image} not found`);
    }
    if (!stat.isFile() && !stat.isBlockDevice()) throw new UserError(`image ${image} is not a regular file or a block device`);
    try {
      fs.closeSync(fs.openSync(image, values['read-only'] || values.cdrom ? 'r' : 'r+'));
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code;
      throw new UserError(`image ${image} cannot be opened for ${values['read-only'] || values.cdrom ? 'reading' : 'writing'} (${code}); ${values['read-only'] ? 'check its permissions' : 'attach it --read-only or fix its permissions'}`);
    }
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
          process.stderr.write(`xenblkd: backend state is ${(await xs.tryRead(statePath)) ?? 'gone'} after ${waitSeconds}s, not Connected (4)\n`);
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
