// What a simulated guest's frontend needs from its block queue: a granted ring with an event
// channel to publish, then I/O once the backend is Connected.
import type { BackendDiskInfo, BlkifProtocol, ConnectParams } from '../../machines';
import type { SimDomain } from '../domain';

export interface GuestQueueOptions {
  readonly backendDomid: number;
  readonly ringPageOrder: number;
  readonly protocol: BlkifProtocol;
  readonly persistent: boolean;
}

export interface GuestQueue {
  /** The ring as the frontend publishes it (grant refs, its port, protocol). */
  readonly params: ConnectParams;
  /** The backend is Connected with this disk: I/O may start. */
  start(disk: BackendDiskInfo): void;
  /** The disk went away (backend closing, driver unload): stop submitting. */
  stop(): void;
  /** Ends foreign access to the ring (retrying while the backend still maps it) and closes the port. */
  close(): Promise<void>;
}

export type GuestQueueFactory = (domain: SimDomain, opts: GuestQueueOptions) => Promise<GuestQueue>;
