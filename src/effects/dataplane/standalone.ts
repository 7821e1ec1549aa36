// One dataplane in a process of its own, started from command-line arguments: what the crash
// tests and the benchmark kill and restart (the full daemon adds xenstore and the event store).
//
//   node standalone-main.js --hv HVSOCK --image PATH --state-dir DIR --ring-refs 8[,9...]
//       --event-channel PORT [--frontend-domid 1] [--devid 51712] [--ring-page-order 0]
//       [--protocol x86_64-abi] [--frontend-persistent] [--read-only] [--data-path auto]
//       [--max-indirect 256] [--no-barrier] [--no-discard] [--no-persistent] [--order ring]
//       [--buffered]
//
// stdout carries JSON lines: {"ready":...} once serving, {"fatal":...} if the ring stops,
// {"stats":...} for each "stats" line on stdin, {"stopped":...} after "stop", SIGTERM or the end
// of stdin (the parent went away): in-flight requests are answered first.
import { performance } from 'node:perf_hooks';
import * as readline from 'node:readline';
import { parseArgs } from 'node:util';
import { connectSimHypervisor } from '../../io/sim';
import type { BlockImage, OpenImageOptions } from '../../io/storage/port';
import { openRawImage } from '../../io/storage/raw';
import pino from 'pino';
import { BLKIF_PROTOCOLS, type BlkifProtocol, type ConnectParams } from '../../machines/block/connect-params';
import { deviceIdentity } from '../../machines/xenbus/identity';
import type { DataPathMode, DataplaneFeatures } from '../dataplane-port';
import type { CrashHooks } from './crash-points';
import { startDataplane, type PublicationOrder } from './index';

export interface StandaloneConfig {
  readonly hvSocket: string;
  readonly imagePath: string;
  readonly stateDir: string;
  readonly frontendDomid: number;
  readonly devid: number;
  readonly backendType: string;
  readonly params: ConnectParams;
  readonly readOnly: boolean;
  readonly direct: boolean;
  readonly features: DataplaneFeatures;
  readonly order: PublicationOrder;
}

export class StandaloneUsageError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'StandaloneUsageError';
  }
}

const DATA_PATHS: readonly DataPathMode[] = ['copy', 'map', 'persistent', 'auto'];

/** Pure: argv to a checked configuration, or one StandaloneUsageError line. */
export function parseStandaloneArgs(argv: readonly string[]): StandaloneConfig {
  let values: Record<string, string | boolean | undefined>;
  try {
    ({ values } = parseArgs({
      args: [...argv],
      strict: true,
      options: {
        hv: { type: 'string' },
        image: { type: 'string' },
        'state-dir': { type: 'string' },
        'ring-refs': { type: 'string' },
        'event-channel': { type: 'string' },
        'frontend-domid': { type: 'string', default: '1' },
        devid: { type: 'string', default: '51712' },
        'backend-type': { type: 'string', default: 'vbd' },
        'ring-page-order': { type: 'string', default: '0' },
        protocol: { type: 'string', default: 'x86_64-abi' },
        'frontend-persistent': { type: 'boolean', default: false },
        'read-only': { type: 'boolean', default: false },
        'data-path': { type: 'string', default: 'auto' },
        'max-indirect': { type: 'string', default: '256' },
        'no-barrier': { type: 'boolean', default: false },
        'no-discard': { type: 'boolean', default: false },
        'no-persistent': { type: 'boolean', default: false },
        order: { type: 'string', default: 'ring' },
        buffered: { type: 'boolean', default: false },
      },
    }));
  } catch (e) {
    throw new StandaloneUsageError((e as Error).message);
  }
  const str = (k: string): string => {
    const v = values[k];
    if (typeof v !== 'string' || v === '') throw new StandaloneUsageError(`--${k} is required`);
    return v;
  };
  const uint = (k: string, max: number): number => {
    const t = str(k);
    if (!/^(0|[1-9][0-9]*)$/.test(t) || Number(t) > max) throw new StandaloneUsageError(`--${k} must be an integer in 0..${max}, got ${t}`);
    return Number(t);
  };
  const hvSocket = str('hv');
  const imagePath = str('image');
  const stateDir = str('state-dir');
  const order = uint('ring-page-order', 4);
  const refs = str('ring-refs').split(',').map((t) => {
    if (!/^(0|[1-9][0-9]*)$/.test(t) || Number(t) > 0xffffffff) throw new StandaloneUsageError(`--ring-refs: ${JSON.stringify(t)} is not a grant ref`);
    return Number(t);
  });
  if (refs.length !== 1 << order) throw new StandaloneUsageError(`--ring-refs: ${refs.length} refs for a ring of order ${order} (${1 << order} needed)`);
  const protocol = str('protocol');
  if (!(BLKIF_PROTOCOLS as readonly string[]).includes(protocol)) throw new StandaloneUsageError(`--protocol must be one of ${BLKIF_PROTOCOLS.join(', ')}`);
  const dataPath = str('data-path') as DataPathMode;
  if (!DATA_PATHS.includes(dataPath)) throw new StandaloneUsageError(`--data-path must be one of ${DATA_PATHS.join(', ')}`);
  const pubOrder = str('order');
  if (pubOrder !== 'ring' && pubOrder !== 'completion') throw new StandaloneUsageError('--order must be ring or completion');
  return {
    hvSocket,
    imagePath,
    stateDir,
    frontendDomid: uint('frontend-domid', 0x7fef),
    devid: uint('devid', 0xffffffff),
    backendType: str('backend-type'),
    params: {
      ringPageOrder: order,
      ringRefs: refs,
      eventChannel: uint('event-channel', 0xffffffff),
      protocol: protocol as BlkifProtocol,
      persistent: values['frontend-persistent'] === true,
    },
    readOnly: values['read-only'] === true,
    direct: values.buffered !== true,
    features: {
      barrier: values['no-barrier'] !== true,
      discard: values['no-discard'] !== true,
      persistent: values['no-persistent'] !== true,
      maxIndirectSegments: uint('max-indirect', 4096),
      dataPath,
    },
    order: pubOrder,
  };
}

/** Arguments for a config (the inverse of parseStandaloneArgs), for parents spawning one. */
export function standaloneArgs(c: StandaloneConfig): string[] {
  const a = [
    '--hv', c.hvSocket, '--image', c.imagePath, '--state-dir', c.stateDir,
    '--ring-refs', c.params.ringRefs.join(','), '--event-channel', String(c.params.eventChannel),
    '--frontend-domid', String(c.frontendDomid), '--devid', String(c.devid), '--backend-type', c.backendType,
    '--ring-page-order', String(c.params.ringPageOrder), '--protocol', c.params.protocol,
    '--data-path', c.features.dataPath, '--max-indirect', String(c.features.maxIndirectSegments), '--order', c.order,
  ];
  if (c.params.persistent) a.push('--frontend-persistent');
  if (c.readOnly) a.push('--read-only');
  if (!c.features.barrier) a.push('--no-barrier');
  if (!c.features.discard) a.push('--no-discard');
  if (!c.features.persistent) a.push('--no-persistent');
  if (!c.direct) a.push('--buffered');
  return a;
}

/** What only a test entry passes (test/support/hooked-dataplane.ts): the shipped program has none. */
export interface StandaloneHooks {
  readonly crash?: CrashHooks;
  /** Opens --image (a target spec where the entry knows more drivers; the storage bench). Default: a raw file. */
  readonly openImage?: (path: string, opts: OpenImageOptions) => Promise<BlockImage>;
}

/** The program: returns its exit code. */
export async function runStandalone(argv: string[], hooks: StandaloneHooks = {}): Promise<number> {
  // Milliseconds since the process started: node's own start, then this program's modules.
  const mainAt = performance.now();
  let config: StandaloneConfig;
  try {
    config = parseStandaloneArgs(argv);
  } catch (e) {
    process.stderr.write(`dataplane: ${(e as Error).message}\n`);
    return 2;
  }
  const out = (o: object): void => {
    process.stdout.write(`${JSON.stringify(o)}\n`);
  };
  // JSON to stderr, synchronous (a line before a SIGKILL must not be lost); no pretty-printer
  // to load: a restart is on the guest's critical path.
  const logger = pino({ name: 'dataplane', level: process.env.XENBLKD_LOG_LEVEL ?? 'info' }, pino.destination({ fd: 2, sync: true }));
  let conn: Awaited<ReturnType<typeof connectSimHypervisor>>;
  let image: BlockImage & { issue?: string };
  let dp: Awaited<ReturnType<typeof startDataplane>>;
  try {
    conn = await connectSimHypervisor(config.hvSocket, { log: { warn: (m) => logger.warn(m) } });
    image = await (hooks.openImage ?? openRawImage)(config.imagePath, { readOnly: config.readOnly, direct: config.direct });
    dp = await startDataplane({
      identity: deviceIdentity({ backendDomid: 0, frontendDomid: config.frontendDomid, devid: config.devid, backendType: config.backendType }),
      params: config.params,
      image,
      readOnly: config.readOnly,
      gnttab: conn.gnttab,
      evtchn: conn.evtchn,
      stateDir: config.stateDir,
      logger,
      onFatal: (e) => out({ fatal: e.message }),
      features: config.features,
    }, { order: config.order, crash: hooks.crash });
  } catch (e) {
    process.stderr.write(`dataplane: ${(e as Error).message}\n`);
    return 1;
  }
  const bootMs = performance.nodeTiming.bootstrapComplete;
  const startup = { nodeMs: bootMs, modulesMs: mainAt - bootMs, setupMs: performance.now() - mainAt };
  out({ ready: true, pid: process.pid, dataPath: dp.dataPath, republished: dp.republished, resumedAt: dp.resumedAt, direct: image.direct, issue: image.issue ?? image.driver ?? 'file', startup });

  return new Promise<number>((resolve) => {
    let stopping = false;
    const stop = async (): Promise<void> => {
      if (stopping) return;
      stopping = true;
      await dp.stop();
      await image.close();
      await conn.close();
      out({ stopped: true, stats: dp.stats });
      resolve(0);
    };
    process.once('SIGTERM', () => void stop());
    const rl = readline.createInterface({ input: process.stdin });
    rl.on('line', (line) => {
      if (line === 'stats') out({ stats: dp.stats, persistentGrants: dp.persistentGrants });
      else if (line === 'stop') void stop();
    });
    rl.on('close', () => void stop());
  });
}

/** Runs the program in this process and exits with its code. */
export function standaloneMain(hooks: StandaloneHooks = {}): void {
  runStandalone(process.argv.slice(2), hooks).then(
    // Nothing may linger (stdin, timers): the parent waits for the exit.
    (code) => process.exit(code),
    (e: unknown) => {
      process.stderr.write(`dataplane: internal error: ${(e as Error)?.stack ?? String(e)}\n`);
      process.exitCode = 70;
    },
  );
}
