// The daemon: xenstore, the event store, the Xen ports (real or simulated), the effects and the
// engine, put together; and taken apart again on a graceful stop without touching the devices.
import * as fs from 'node:fs';
import * as path from 'node:path';
import type { EventChannel, GrantTable } from '../io/ports';
import { XenStore } from '../io/xs/client';
import type { Logger } from '../log';
import { DEFAULT_BLOCK_BACKEND_SETTINGS, type BlockBackendSettings, deviceKey } from '../machines';
import { LevelEventStore } from '../store/level-store';
import { StoreError } from '../store/events';
import type { StoreFault } from '../store/store-health';
import type { DataplaneFactory, DataPathMode } from '../effects/dataplane-port';
import { blockDeviceEffects } from '../effects/block-device';
import { ImageRegistry, type ImageOpener } from '../effects/images';
import { startStorage, type DaemonStorage, type StorageSettings } from './storage';
import type { RecordingSwitch } from '../replay/tap';
import { BackendEngine, type EngineTransition } from './engine';

export interface XenPorts {
  readonly gnttab: GrantTable;
  readonly evtchn: EventChannel;
  close(): Promise<void>;
}

export interface DaemonOptions {
  readonly xenstorePath?: string;
  readonly stateDir: string;
  readonly backendType?: string;
  readonly backendDomid?: number;
  readonly settings?: BlockBackendSettings;
  readonly ports: () => Promise<XenPorts>;
  /** Opens images (tests: raw files only); ignored when `storage` is given. */
  readonly openImage?: ImageOpener;
  /** Every storage driver (rbd, nbd, image formats through qemu-storage-daemon). */
  readonly storage?: StorageSettings;
  readonly startDataplane: DataplaneFactory;
  readonly logger: Logger;
  readonly snapshotEvery?: number;
  readonly onTransition?: (t: EngineTransition) => void;
  /** Called after every event the store accepted (test hook: SIGKILL after the Nth). */
  readonly onPersisted?: () => void;
  /** Where the event store is copied to be read when the state folder cannot be written at start (default: the OS temp folder). */
  readonly scratchDir?: string;
  /** Backoff between tries of a write the state folder refused, ms (default 100 to 2000). */
  readonly storeRetry?: { readonly firstMs: number; readonly maxMs: number };
  readonly onRecovered?: (key: string) => void;
  readonly dataPath?: DataPathMode;
  /** Session recording (src/replay): records while a recorder is attached to it. */
  readonly recording?: RecordingSwitch;
}

export class DaemonError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'DaemonError';
  }
}

export interface Daemon {
  readonly engine: BackendEngine;
  readonly effects: ReturnType<typeof blockDeviceEffects>;
  readonly xs: XenStore;
  readonly store: LevelEventStore;
  /** Devices recovered from the store at start. */
  readonly recovered: readonly string[];
  stop(): Promise<void>;
}

/** Old copies of a corrupt store kept for a post-mortem; older ones are deleted. */
const CORRUPT_COPIES_KEPT = 3;

/**
 * Opens the event store. A corrupt one (of any kind) is moved aside once and rebuilt from
 * xenstore; a folder that cannot be written (full, read-only, no permission, failing) is never
 * moved: the store is read from a copy and written again once the folder takes writes.
 */
async function openStore(dir: string, opts: DaemonOptions): Promise<LevelEventStore> {
  const { logger } = opts;
  const storeOpts = {
    scratchDir: opts.scratchDir,
    retry: opts.storeRetry,
    onCommitted: opts.onPersisted && ((events: number) => {
      for (let i = 0; i < events; i++) opts.onPersisted!();
    }),
  };
  try {
    return await LevelEventStore.open(dir, storeOpts);
  } catch (err) {
    if (!(err instanceof StoreError)) throw err;
    if (err.reason !== 'corrupt') throw new DaemonError(err.message);
    const aside = `${dir}.corrupt-${Date.now()}`;
    try {
      fs.renameSync(dir, aside);
    } catch (e) {
      throw new DaemonError(`${err.message}; and it cannot be moved aside: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`);
    }
    logger.error({ aside }, `${err.message}; moved aside, rebuilding device state from xenstore`);
    pruneCorruptCopies(dir, logger);
    try {
      return await LevelEventStore.open(dir, storeOpts);
    } catch (again) {
      throw again instanceof StoreError ? new DaemonError(again.message) : again;
    }
  }
}

function pruneCorruptCopies(dir: string, logger: Logger): void {
  const parent = path.dirname(dir);
  const prefix = `${path.basename(dir)}.corrupt-`;
  const copies = fs
    .readdirSync(parent)
    .filter((n) => n.startsWith(prefix))
    .sort((a, b) => Number(a.slice(prefix.length)) - Number(b.slice(prefix.length)));
  for (const old of copies.slice(0, Math.max(0, copies.length - CORRUPT_COPIES_KEPT))) {
    try {
      fs.rmSync(path.join(parent, old), { recursive: true, force: true });
    } catch (err) {
      logger.warn({ err, copy: old }, 'could not delete an old copy of a corrupt event store');
    }
  }
}

/** One log line when the store stops taking writes, one when it takes them again. */
function logStoreHealth(store: LevelEventStore, logger: Logger): () => void {
  const started = (fault: StoreFault) => {
    const what = fault.reason === 'corrupt' ? 'the event store is corrupt' : `the state folder refuses writes${fault.code ? ` (${fault.code})` : ''}`;
    const advice = fault.reason === 'corrupt' ? '; restart xenblkd to rebuild it from xenstore' : '; connected devices keep serving, state changes and new devices wait until it takes writes again';
    logger.error({ storeFault: fault }, `${what}: ${fault.message}${advice}`);
  };
  if (store.health.fault) started(store.health.fault);
  return store.health.onChange((fault, previous) => {
    if (fault && !previous) started(fault);
    else if (!fault && previous) {
      logger.info({ failedWrites: store.health.failedWrites, faultSeconds: Math.round((Date.now() - previous.since) / 1000) }, 'the event store takes writes again; waiting state changes and devices go on');
    }
  });
}

export async function startDaemon(opts: DaemonOptions): Promise<Daemon> {
  const { logger } = opts;
  fs.mkdirSync(opts.stateDir, { recursive: true });
  const store = await openStore(path.join(opts.stateDir, 'events'), opts);
  const unlogHealth = logStoreHealth(store, logger);
  let xs: XenStore | undefined;
  let ports: XenPorts | undefined;
  let storage: DaemonStorage | undefined;
  try {
    xs = await XenStore.connect({ path: opts.xenstorePath, logger: logger.child({ part: 'xenstore' }) }).catch((err: Error) => {
      throw new DaemonError(`cannot connect to xenstore${opts.xenstorePath ? ` at ${opts.xenstorePath}` : ''}: ${err.message}`);
    });
    ports = await opts.ports();
    storage = opts.storage ? await startStorage({ store, stateDir: opts.stateDir, logger, settings: opts.storage }) : undefined;
    const openImage = storage?.open ?? opts.openImage;
    if (!openImage) throw new DaemonError('no storage: give openImage or storage');
    const images = new ImageRegistry(openImage);
    const effects = blockDeviceEffects({
      xs,
      images,
      startDataplane: opts.startDataplane,
      gnttab: ports.gnttab,
      evtchn: ports.evtchn,
      stateDir: opts.stateDir,
      logger,
      dataPath: opts.dataPath,
      intents: opts.recording,
      durable: (identity) => engine.durable(deviceKey(identity.frontendDomid, identity.devid)),
    });
    const recovered: string[] = [];
    const engine = new BackendEngine({
      xs,
      store,
      health: store.health,
      backendDomid: opts.backendDomid ?? 0,
      backendType: opts.backendType ?? 'vbd',
      settings: opts.settings ?? DEFAULT_BLOCK_BACKEND_SETTINGS,
      deviceActors: effects.actors,
      logger,
      snapshotEvery: opts.snapshotEvery,
      onTransition: opts.onTransition,
      onRecovered: (key) => {
        recovered.push(key);
        opts.onRecovered?.(key);
      },
      tap: opts.recording,
    });
    opts.recording?.processStarted();
    await engine.start();
    // Storage daemons whose device went while this daemon was down are not wanted any more.
    await storage?.reconcile(engine.deviceTargets()).catch((err: Error) => logger.error({ err: err.message }, 'could not reconcile the storage daemons with the devices'));
    const storageRef = storage;
    const xsRef = xs;
    const portsRef = ports;
    return {
      engine,
      effects,
      xs,
      store,
      recovered,
      async stop() {
        // On a full or read-only folder what waits for the store is given up (it was never shown).
        store.stopWaiting();
        await engine.stop();
        opts.recording?.processStopped();
        await effects.quiesce();
        await images.closeAll();
        storageRef?.close();
        await store.close();
        unlogHealth();
        await xsRef.close();
        await portsRef.close();
      },
    };
  } catch (err) {
    storage?.close();
    await ports?.close().catch(() => undefined);
    await xs?.close().catch(() => undefined);
    store.stopWaiting();
    await store.close().catch(() => undefined);
    unlogHealth();
    throw err;
  }
}
