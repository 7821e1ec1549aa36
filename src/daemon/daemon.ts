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
import type { DataplaneFactory, DataPathMode } from '../effects/dataplane-port';
import { blockDeviceEffects } from '../effects/block-device';
import { ImageRegistry, type ImageOpener } from '../effects/images';
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
  readonly openImage: ImageOpener;
  readonly startDataplane: DataplaneFactory;
  readonly logger: Logger;
  readonly snapshotEvery?: number;
  readonly onTransition?: (t: EngineTransition) => void;
  /** Called after every event the store accepted (test hook: SIGKILL after the Nth). */
  readonly onPersisted?: () => void;
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

/** Opens the event store; a corrupt one is moved aside and rebuilt from xenstore. */
async function openStore(dir: string, logger: Logger): Promise<LevelEventStore> {
  try {
    return await LevelEventStore.open(dir);
  } catch (err) {
    if (err instanceof StoreError && err.reason === 'corrupt') {
      const aside = `${dir}.corrupt-${Date.now()}`;
      logger.error({ aside }, `${err.message}; moved aside, rebuilding device state from xenstore`);
      fs.renameSync(dir, aside);
      return LevelEventStore.open(dir);
    }
    if (err instanceof StoreError) throw new DaemonError(err.message);
    throw err;
  }
}

export async function startDaemon(opts: DaemonOptions): Promise<Daemon> {
  const { logger } = opts;
  fs.mkdirSync(opts.stateDir, { recursive: true });
  const store = await openStore(path.join(opts.stateDir, 'events'), logger);
  let xs: XenStore | undefined;
  let ports: XenPorts | undefined;
  try {
    xs = await XenStore.connect({ path: opts.xenstorePath, logger: logger.child({ part: 'xenstore' }) }).catch((err: Error) => {
      throw new DaemonError(`cannot connect to xenstore${opts.xenstorePath ? ` at ${opts.xenstorePath}` : ''}: ${err.message}`);
    });
    ports = await opts.ports();
    const images = new ImageRegistry(opts.openImage);
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
    if (opts.onPersisted) wrapAppend(store, opts.onPersisted);
    const engine = new BackendEngine({
      xs,
      store,
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
    const xsRef = xs;
    const portsRef = ports;
    return {
      engine,
      effects,
      xs,
      store,
      recovered,
      async stop() {
        await engine.stop();
        opts.recording?.processStopped();
        await effects.quiesce();
        await images.closeAll();
        await store.close();
        await xsRef.close();
        await portsRef.close();
      },
    };
  } catch (err) {
    await ports?.close().catch(() => undefined);
    await xs?.close().catch(() => undefined);
    await store.close().catch(() => undefined);
    throw err;
  }
}

/** Calls hook after every successful append (the kill-after-event test hook rides on it). */
function wrapAppend(store: LevelEventStore, hook: () => void): void {
  const append = store.append.bind(store);
  store.append = async (...args) => {
    const version = await append(...args);
    for (let i = 0; i < args[1].length; i++) hook();
    return version;
  };
}
