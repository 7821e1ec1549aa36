// What the device's connection effect needs from a dataplane: start on a frontend's ring, stop.
import type { DeviceIdentity } from '../machines/xenbus/identity';
import type { ConnectParams } from '../machines/block/connect-params';
import type { EventChannel, GrantTable } from '../io/ports';
import type { BlockImage } from '../io/storage/port';
import type { Logger } from '../log';

/**
 * How guest data moves. copy: grant copy per request (batched). map: grant map per batch.
 * persistent: map each grant once and keep it (only when both ends advertise feature-persistent;
 * otherwise copy). auto: the measured default (see src/effects/dataplane/data-path.ts).
 */
export type DataPathMode = 'copy' | 'map' | 'persistent' | 'auto';

/** What the backend advertised for this device (its realize keys); the dataplane enforces it. */
export interface DataplaneFeatures {
  /** feature-barrier: BLKIF_OP_WRITE_BARRIER is served. */
  readonly barrier: boolean;
  /** feature-discard was offered (the image must also support it). */
  readonly discard: boolean;
  /** feature-max-indirect-segments; 0: indirect requests are refused. */
  readonly maxIndirectSegments: number;
  /** feature-persistent was advertised by the backend. */
  readonly persistent: boolean;
  readonly dataPath: DataPathMode;
}

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
  /**
   * What the backend advertised. Default: DEFAULT_DATAPLANE_FEATURES (the daemon's default
   * settings: barrier, discard where the image can, 256 indirect segments, persistent grants).
   */
  readonly features?: Partial<DataplaneFeatures>;
}

/** A latency histogram: counts[i] requests took less than boundsUs[i] (and at least boundsUs[i-1]). */
export interface LatencyHistogramSnapshot {
  /** Upper bounds in microseconds; the last is Infinity. */
  readonly boundsUs: readonly number[];
  readonly counts: readonly number[];
}

/**
 * Per-device counters, named after Linux blkback's statistics (sysfs vbd statistics). The
 * per-operation counts cover requests that passed validation; refused ones count in errors only.
 */
export interface DataplaneStats {
  /** rd_req: reads answered (direct and indirect). */
  readonly rdReq: number;
  /** wr_req: writes answered (including flush/barrier requests carrying data). */
  readonly wrReq: number;
  /** f_req: flush and barrier requests answered. */
  readonly fReq: number;
  /** ds_req: discards answered. */
  readonly dsReq: number;
  /** oo_req: requests that had to wait for a free buffer. */
  readonly ooReq: number;
  /** rd_sect / wr_sect: 512-byte sectors read and written. */
  readonly rdSect: number;
  readonly wrSect: number;
  /** Requests answered with an error status (invalid, refused or failed). */
  readonly errors: number;
  /**
   * Publication journal faults: batches published without their record (the write failed) and
   * repairs of the file found deleted, truncated or failing under the ring.
   */
  readonly journalFailures: number;
  /** Requests consumed from the ring and not yet answered. */
  readonly inFlight: number;
  /** From consumption to publication of the response. */
  readonly latency: LatencyHistogramSnapshot;
}

export interface Dataplane {
  /** Answers what is in flight, then unmaps the ring and unbinds the event channel. */
  stop(): Promise<void>;
  /** A snapshot of the device's counters. */
  readonly stats: DataplaneStats;
  /** The image changed size (online resize): bound requests by the new size. */
  resized?(sizeBytes: number): void;
}

export type DataplaneFactory = (opts: DataplaneStartOptions) => Promise<Dataplane>;
