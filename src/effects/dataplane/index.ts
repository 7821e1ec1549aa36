// The blkif dataplane of one device: maps the frontend's ring, re-publishes what the journal says
// a killed predecessor left half-published, binds the event channel and runs the request loop.
// After a restart the same call resumes the ring: the shared rsp_prod tells where to go on.
import * as path from 'node:path';
import { abiFor } from '../../blkif/abi';
import { BackRing } from '../../blkif/back-ring';
import type { EvtchnPort, GrantMapping } from '../../io/ports';
import type { Dataplane, DataplaneFactory, DataplaneStartOptions, DataplaneStats } from '../dataplane-port';
import { BufferPool, SMALL_PAGES } from './buffers';
import { CrashHooks } from './crash-points';
import { RingEngine, type DataPath, type PublicationOrder } from './engine';
import { DataplaneError } from './errors';
import { JournalError, journalFileName, PublicationJournal, ringKey } from './journal';
import { republish } from './republish';
import { chooseDataPath, deviceLimits, resolveFeatures } from './limits';

export { CrashHooks, parseCrashSpec, CRASH_POINTS, type CrashPoint, type CrashSpec } from './crash-points';
export { DataplaneError, type DataplaneErrorReason } from './errors';
export { DEFAULT_DATAPLANE_FEATURES, chooseDataPath, deviceLimits, resolveFeatures } from './limits';
export { JournalError, journalFileName, PublicationJournal, ringKey } from './journal';
export { republish } from './republish';
export { LatencyHistogram } from './latency-histogram';
export type { DataPath, PublicationOrder } from './engine';

/** Knobs the daemon leaves at their defaults; tests and the benchmark turn them. */
export interface DataplaneTuning {
  /** Default 'ring' (crash-safe). 'completion' exists to measure what ring order costs. */
  order?: PublicationOrder;
  /** Buffers for indirect requests kept at most. Default min(ring entries, 32). */
  maxBigBuffers?: number;
  /** Persistent grants kept mapped at most. Default: entries * 11 + 16 * max indirect segments. */
  persistentCapacity?: number;
  /** Kill points for the crash tests (test/support); default: none. */
  crash?: CrashHooks;
  /** How often the journal file is checked (and repaired) under the running ring. Default 1000 ms. */
  journalCheckMs?: number;
}

export interface RunningDataplane extends Dataplane {
  readonly dataPath: DataPath;
  /** Responses re-published from the journal when the ring was resumed. */
  readonly republished: number;
  /** The ring index the dataplane resumed at (the shared rsp_prod it found). */
  readonly resumedAt: number;
  /** Grants currently mapped for good (persistent data path). */
  readonly persistentGrants: number;
}

export const createDataplane: DataplaneFactory = (opts) => startDataplane(opts);

export async function startDataplane(opts: DataplaneStartOptions, tuning: DataplaneTuning = {}): Promise<RunningDataplane> {
  const { identity, params, image, gnttab, evtchn } = opts;
  const domid = identity.frontendDomid;
  const log = opts.logger.child({ dev: `${domid}/${identity.devid}` });
  const features = resolveFeatures(opts.features);
  const limits = deviceLimits(image, opts.readOnly, features);
  const pages = 1 << params.ringPageOrder;
  if (params.ringRefs.length !== pages) {
    throw new DataplaneError('setup', `ring of order ${params.ringPageOrder} needs ${pages} refs, got ${params.ringRefs.length}`);
  }
  const abi = abiFor(params.protocol);
  const dataPath = chooseDataPath(features.dataPath, features.persistent, params.persistent);

  let ringMap: GrantMapping;
  try {
    ringMap = await gnttab.map(domid, params.ringRefs, true);
  } catch (e) {
    throw new DataplaneError('setup', `cannot map the ring of d${domid} (refs ${params.ringRefs.join(',')}): ${(e as Error).message}`);
  }
  let journal: PublicationJournal | undefined;
  let port: EvtchnPort | undefined;
  try {
    const ring = BackRing.attach(ringMap.view, abi, pages);
    const key = ringKey([domid, identity.devid, params.ringPageOrder, abi.entrySize, params.eventChannel, ...params.ringRefs]);
    const file = path.join(opts.stateDir, journalFileName(identity.backendType, domid, identity.devid));
    let opened: ReturnType<typeof PublicationJournal.open>;
    try {
      // A ring that answered before (a restart) goes on without a writable journal rather than
      // stall its guest; a new one waits until the file can be made (the connect path retries).
      opened = PublicationJournal.open(file, ring.entries, key, { degrade: ring.rspProdPvt !== 0 });
    } catch (e) {
      if (e instanceof JournalError) throw new DataplaneError('journal', e.message, e.code);
      throw e;
    }
    journal = opened.journal;
    if (opened.reset !== null) log.info(`publication journal ${file} ${opened.reset}: reset`);
    const resumedAt = ring.rspProdPvt;
    const republished = republish(ring, journal);
    if (republished > 0) log.info({ at: resumedAt, count: republished }, 'republished responses from the journal');

    try {
      port = await evtchn.bindInterdomain(domid, params.eventChannel);
    } catch (e) {
      throw new DataplaneError('setup', `cannot bind event channel d${domid} port ${params.eventChannel}: ${(e as Error).message}`);
    }
    const entries = ring.entries;
    const maxBig = limits.maxIndirectSegments > SMALL_PAGES ? (tuning.maxBigBuffers ?? Math.min(entries, 32)) : 0;
    const buffers = new BufferPool(entries, limits.maxIndirectSegments, maxBig);
    const engine = new RingEngine({
      ring,
      port,
      gnttab,
      domid,
      image,
      limits,
      dataPath,
      journal,
      buffers,
      crash: tuning.crash ?? CrashHooks.none,
      logger: log,
      onFatal: opts.onFatal,
      order: tuning.order ?? 'ring',
      persistentCapacity: tuning.persistentCapacity ?? entries * SMALL_PAGES + 16 * limits.maxIndirectSegments,
    });
    // Requests the frontend queued that nobody answered yet (after a restart: across the crash).
    const waiting = ring.pendingRequests();
    log.info(
      { abi: abi.name, pages, entries, dataPath, resumedAt, waiting, readOnly: limits.readOnly, indirect: limits.maxIndirectSegments },
      'dataplane started',
    );
    engine.start();
    // Deleted, truncated or failing under the ring: found and repaired within a check period.
    const journalCheck = setInterval(() => engine.checkJournal(), tuning.journalCheckMs ?? 1000);
    journalCheck.unref();

    const j = journal;
    const p = port;
    let stopping: Promise<void> | undefined;
    return {
      dataPath,
      republished,
      resumedAt,
      get persistentGrants(): number {
        return engine.persistentGrants;
      },
      get stats(): DataplaneStats {
        return engine.stats;
      },
      resized(sizeBytes: number): void {
        engine.resized(sizeBytes);
      },
      stop(): Promise<void> {
        stopping ??= (async () => {
          clearInterval(journalCheck);
          await engine.stop();
          await engine.dispose();
          await p.unbind().catch((e: Error) => log.warn({ err: e.message }, 'unbinding the event channel failed'));
          await ringMap.unmap().catch((e: Error) => log.warn({ err: e.message }, 'unmapping the ring failed'));
          j.close(true);
          buffers.free();
          log.info('dataplane stopped');
        })();
        return stopping;
      },
    };
  } catch (e) {
    // Keep the journal file: a later start must still find what it records.
    journal?.close(false);
    await port?.unbind().catch(() => {});
    await ringMap.unmap().catch(() => {});
    throw e;
  }
}
