// Entry point of the simulated Xen ports: a daemon (or any process) attaches to a simulated
// host's hypervisor socket and gets the same GrantTable/EventChannel interfaces as on real Xen.
import type { EventChannel, GrantTable } from '../ports';
import { SimEventChannel } from './evtchn';
import { SimGrantTable } from './gnttab';
import { HvClient, defaultSimLogger, type SimLogger } from './hv-client';

export { SimXenError } from './errors';
export type { SimLogger } from './hv-client';

export interface SimHypervisorConnection {
  readonly gnttab: GrantTable;
  readonly evtchn: EventChannel;
  /** Unbinds ports, unmaps grants, closes the connection. */
  close(): Promise<void>;
}

export interface ConnectOptions {
  /** The domain this process acts as. Default 0 (a backend in dom0). */
  domid?: number;
  log?: SimLogger;
}

export async function connectSimHypervisor(socketPath: string, opts: ConnectOptions = {}): Promise<SimHypervisorConnection> {
  const log = opts.log ?? defaultSimLogger();
  const client = await HvClient.connect(socketPath, opts.domid ?? 0, log);
  const gnttab = new SimGrantTable(client, log);
  const evtchn = new SimEventChannel(client);
  let closing: Promise<void> | undefined;
  return {
    gnttab,
    evtchn,
    close() {
      closing ??= (async () => {
        await Promise.allSettled([evtchn.close(), gnttab.close()]);
        await client.close();
      })();
      return closing;
    },
  };
}
