import { UserError, parseOptions, type Command } from '../command';
import { XENSTORE_OPTION_HELP, connectXenstore, parseDomid } from '../xenstore';
import { ToolstackError, detachDisk, diskIdentity } from '../../toolstack/disk';

const usage = `usage: xenblkd detach --domid N --vdev NAME [options]

Unplugs a disk the way libxl does: online=0 and state=Closing in one transaction, waits for
the backend to reach Closed, then removes the backend and frontend directories.

  --domid N          the guest (frontend) domain
  --vdev NAME        xvda, hdb, sdc, d0p1 or a device number
  --timeout SECONDS  how long to wait for Closed before removing anyway (default 10)
  --backend-domid N  the domain running the backend (default 0)
  --backend-type T   backend directory type (default vbd)
${XENSTORE_OPTION_HELP}`;

export const command: Command = {
  summary: 'unplug a disk from a domain (toolstack side, as libxl)',
  usage,
  async run(argv) {
    const { values } = parseOptions(argv, {
      domid: { type: 'string' },
      vdev: { type: 'string' },
      timeout: { type: 'string' },
      'backend-domid': { type: 'string' },
      'backend-type': { type: 'string' },
      xenstore: { type: 'string' },
    });
    const frontendDomid = parseDomid(values.domid, '--domid');
    const backendDomid = values['backend-domid'] === undefined ? 0 : parseDomid(values['backend-domid'], '--backend-domid');
    if (!values.vdev) throw new UserError('--vdev NAME is required');
    const timeout = values.timeout === undefined ? 10 : Number(values.timeout);
    if (!(timeout > 0)) throw new UserError(`--timeout takes a number of seconds, got '${values.timeout}'`);
    let id;
    try {
      id = diskIdentity({ frontendDomid, backendDomid, backendType: values['backend-type'], vdev: values.vdev });
    } catch (err) {
      if (err instanceof ToolstackError) throw new UserError(err.message);
      throw err;
    }
    const xs = await connectXenstore(values.xenstore);
    try {
      const result = await detachDisk(xs, id, { timeoutMs: timeout * 1000 }).catch((err: unknown) => {
        if (err instanceof ToolstackError) throw new UserError(err.message);
        throw err;
      });
      if (!result.clean) {
        process.stderr.write(`xenblkd: the backend did not reach Closed within ${timeout}s; removed the nodes anyway\n`);
        return 1;
      }
      process.stdout.write(`detached ${values.vdev} from domain ${frontendDomid}\n`);
      return 0;
    } finally {
      await xs.close();
    }
  },
};
