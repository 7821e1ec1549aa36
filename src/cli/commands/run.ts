import * as fs from 'node:fs';
import * as path from 'node:path';
import { UserError, parseOptions, type Command } from '../command';
import { type ConfigKey, parseBool, parseIntIn, parseListen, readConfig } from '../config';
import { loggerFrom, untilSignal } from '../logging';
import type { Logger } from '../../log';
import { DEFAULT_BLOCK_BACKEND_SETTINGS } from '../../machines';
import { DaemonError, type XenPorts } from '../../daemon/daemon';
import { serve } from '../../daemon/serve';
import { connectSimHypervisor } from '../../io/sim';
import { RealEventChannel } from '../../io/real/evtchn';
import { RealGrantTable } from '../../io/real/gnttab';
import { createDataplane, startDataplane, type CrashHooks } from '../../effects/dataplane';
import type { DataPathMode } from '../../effects/dataplane-port';
import { RecorderError } from '../../replay/recorder';

const usage = `usage: xenblkd run [options]

Runs the backend daemon in the foreground: serves the virtual disks the toolstack creates under
/local/domain/<backend-domid>/backend/<type>, and resumes every device it served before after a
restart or a crash. SIGTERM or SIGINT stops it gracefully, leaving every device connected for the
next start.

  --config FILE              read options from FILE ("key = value"; see packaging/xenblkd.conf)
  --xenstore PATH            xenstored's socket or /dev/xen/xenbus (default: auto-detected)
  --state-dir DIR            event store and journals (default /var/lib/xenblkd)
  --backend-type TYPE        backend directory to serve: vbd, qdisk, vbd3 (default vbd)
  --backend-domid N          this backend's domain (default 0)
  --sim HVSOCK               use the simulated host's grant tables and event channels
                             (xenblkd sim) instead of /dev/xen
  --http HOST:PORT           serve the dashboard and /metrics (e.g. 127.0.0.1:8455)
  --log-format json|pretty   default: pretty on a terminal, json otherwise
  --log-level LEVEL          default info
  --data-path MODE           auto (default), copy, map or persistent
  --storage-timeout SECONDS  how long lost storage (an NBD server, a Ceph cluster, a storage
                             daemon) stalls the guest's requests before they fail (default 60)
  --max-ring-page-order N    offered to frontends (default 4)
  --max-indirect-segments N  offered to frontends (default 256; 0: no indirect requests)
  --feature-persistent BOOL  offer persistent grants (default true)
  --feature-barrier BOOL     offer write barriers (default true)
  --record FILE              record a session (inputs, transitions, xenstore writes) into FILE,
                             appending if it exists; 'xenblkd record' turns recording on and off
                             while the daemon runs, 'xenblkd replay FILE' checks it`;

const OPTIONS = {
  config: { type: 'string' },
  xenstore: { type: 'string' },
  'state-dir': { type: 'string' },
  'backend-type': { type: 'string' },
  'backend-domid': { type: 'string' },
  sim: { type: 'string' },
  http: { type: 'string' },
  'log-format': { type: 'string' },
  'log-level': { type: 'string' },
  'data-path': { type: 'string' },
  'storage-timeout': { type: 'string' },
  'max-ring-page-order': { type: 'string' },
  'max-indirect-segments': { type: 'string' },
  'feature-persistent': { type: 'string' },
  'feature-barrier': { type: 'string' },
  record: { type: 'string' },
} as const;

function realPorts(): XenPorts {
  const gnttab = new RealGrantTable();
  const evtchn = new RealEventChannel();
  try {
    gnttab.open();
    evtchn.open();
  } catch (err) {
    throw new DaemonError(`${(err as Error).message} (use --sim HVSOCK with 'xenblkd sim' to run without Xen)`);
  }
  return { gnttab, evtchn, close: async () => { await gnttab.close(); await evtchn.close(); } };
}

/** What only a test entry passes (test/support/hooked-cli.ts): the shipped command has none. */
export interface RunHooks {
  /** Called once per event persisted to the event store (DaemonOptions.onPersisted). */
  readonly onPersisted?: (logger: Logger) => () => void;
  /** Kill points armed in every dataplane of the daemon. */
  readonly crash?: CrashHooks;
}

export const command: Command = runCommand();

/** The run command; the daemon it runs calls the given hooks. */
export function runCommand(hooks: RunHooks = {}): Command {
  return {
    summary: 'run the backend daemon (real dom0, or --sim with the simulated host)',
    usage,
    async run(argv) {
      const { values: cli } = parseOptions(argv, OPTIONS);
      const file = cli.config ? readConfig(cli.config) : {};
      const opt = (key: ConfigKey): string | undefined => (cli as Record<string, string | undefined>)[key] ?? file[key];
      const stateDir = opt('state-dir') ?? '/var/lib/xenblkd';
      const backendType = opt('backend-type') ?? 'vbd';
      if (!/^[A-Za-z0-9_-]{1,32}$/.test(backendType)) throw new UserError(`--backend-type takes a name like vbd, got '${backendType}'`);
      const backendDomid = opt('backend-domid') === undefined ? 0 : parseIntIn(opt('backend-domid')!, '--backend-domid', 0, 0x7fef);
      const dataPath = (opt('data-path') ?? 'auto') as DataPathMode;
      if (!['auto', 'copy', 'map', 'persistent'].includes(dataPath)) throw new UserError(`--data-path takes auto, copy, map or persistent, got '${dataPath}'`);
      const settings = {
        ...DEFAULT_BLOCK_BACKEND_SETTINGS,
        ...(opt('max-ring-page-order') !== undefined && { maxRingPageOrder: parseIntIn(opt('max-ring-page-order')!, '--max-ring-page-order', 0, 4) }),
        ...(opt('max-indirect-segments') !== undefined && { maxIndirectSegments: parseIntIn(opt('max-indirect-segments')!, '--max-indirect-segments', 0, 4096) }),
        ...(opt('feature-persistent') !== undefined && { featurePersistent: parseBool(opt('feature-persistent')!, '--feature-persistent') }),
        ...(opt('feature-barrier') !== undefined && { featureBarrier: parseBool(opt('feature-barrier')!, '--feature-barrier') }),
      };
      const storageTimeoutS = opt('storage-timeout') === undefined ? 60 : parseIntIn(opt('storage-timeout')!, '--storage-timeout', 1, 86_400);
      const http = opt('http') === undefined ? undefined : parseListen(opt('http')!);
      const sim = opt('sim');
      if (sim !== undefined && !fs.existsSync(sim)) throw new UserError(`simulated host socket ${sim} not found (is 'xenblkd sim' running?)`);
      const logger = loggerFrom(opt('log-format'), opt('log-level'), 'xenblkd');
      let serving;
      const serveStart = performance.now();
      try {
        serving = await serve({
          xenstorePath: opt('xenstore'),
          stateDir,
          backendType,
          backendDomid,
          settings,
          dataPath,
          http,
          record: cli.record === undefined ? undefined : path.resolve(cli.record),
          logger,
          ports: async () => {
            if (sim === undefined) return realPorts();
            try {
              return await connectSimHypervisor(sim);
            } catch (err) {
              throw new DaemonError(`cannot connect to the simulated host at ${sim}: ${(err as Error).message}`);
            }
          },
          storage: { timeoutMs: storageTimeoutS * 1000 },
          startDataplane: hooks.crash === undefined ? createDataplane : (o) => startDataplane(o, { crash: hooks.crash }),
          onPersisted: hooks.onPersisted?.(logger),
        });
      } catch (err) {
        if (err instanceof RecorderError) throw new UserError(err.message);
        if (err instanceof DaemonError) throw new UserError(err.message);
        const code = (err as NodeJS.ErrnoException).code;
        if (code === 'EACCES' || code === 'EPERM') throw new UserError(`state folder ${stateDir}: permission denied`);
        if (code === 'ENOTDIR' || code === 'EEXIST' || code === 'EROFS' || code === 'ENOSPC') throw new UserError(`state folder ${stateDir}: ${code}`);
        throw err;
      }
      const recovered = serving.daemon.recovered.length;
      logger.info(
        {
          stateDir,
          backendType,
          backendDomid,
          recovered,
          dashboard: serving.dashboardUrl,
          // Start-up cost: loading the program, then recovering and reconciling the devices.
          loadMs: Math.round(process.uptime() * 1000 - (performance.now() - serveStart)),
          recoveryMs: Math.round(performance.now() - serveStart),
        },
        `serving backend/${backendType} of domain ${backendDomid}${recovered ? `, ${recovered} device(s) recovered` : ''}`,
      );
      const signal = await untilSignal();
      logger.info({ signal }, 'stopping: quiescing dataplanes, devices stay connected for the next start');
      await serving.stop();
      return 0;
    },
  };
}
