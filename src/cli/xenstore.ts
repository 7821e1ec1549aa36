// Connecting to xenstore from a command, with the failure as one line.
import { XenStore } from '../io/xs/client';
import { UserError } from './command';

export const XENSTORE_OPTION_HELP = `  --xenstore PATH    xenstored's socket or /dev/xen/xenbus (default: $XENSTORED_PATH,
                     $XENSTORED_RUNDIR/socket, /var/run/xenstored/socket, /dev/xen/xenbus)`;

export async function connectXenstore(path: string | undefined, reconnect = false): Promise<XenStore> {
  try {
    return await XenStore.connect({ path, reconnect });
  } catch (err) {
    throw new UserError(`${(err as Error).message.split('\n')[0]} (is xenstored running? see --xenstore)`);
  }
}

export function parseDomid(text: string | undefined, option: string): number {
  if (text === undefined) throw new UserError(`${option} N is required`);
  if (!/^\d{1,5}$/.test(text) || Number(text) >= 0x7ff0) throw new UserError(`${option} takes a domain id (0..32751), got '${text}'`);
  return Number(text);
}
