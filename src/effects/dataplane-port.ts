// What the device's connection effect needs from a dataplane: start on a frontend's ring, stop.
import type { DeviceIdentity } from '../machines/xenbus/identity';
import type { ConnectParams } from '../machines/block/connect-params';
import type { EventChannel, GrantTable } from '../io/ports';
import type { BlockImage } from '../io/storage/port';
import type { Logger } from '../log';

export interface DataplaneStartOptions {
  readonly identity: DeviceIdentity;
  readonly params: ConnectParams;
  readonly image: BlockImage;
  /** Writes are refused (the device is read-only whatever the image allows). */
  readonly readOnly: boolean;
  readonly gnttab: GrantTable;
  readonly evtchn: EventChannel;
  /** A folder that outlives the process, for the publication journal. */
  readonly stateDir: string;
  readonly logger: Logger;
  /** The ring became unusable (a frontend fault): the device must close. */
  readonly onFatal: (err: Error) => void;
}

export interface Dataplane {
  /** Answers what is in flight, then unmaps the ring and unbinds the event channel. */
  stop(): Promise<void>;
}

export type DataplaneFactory = (opts: DataplaneStartOptions) => Promise<Dataplane>;
