// A real single-node Ceph (scripts/ceph/start.sh) for one test file: started in a temporary
// folder before the file's tests, stopped after. Never skipped: without the Ceph packages the
// start fails with one line that says what installs them.
import { execFile, execFileSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';

const SCRIPTS = path.resolve(__dirname, '../../scripts/ceph');

export interface CephCluster {
  readonly dir: string;
  readonly conf: string;
  readonly port: number;
  readonly pool: string;
  /** Runs the rbd CLI against this cluster; returns stdout. */
  rbd(...args: string[]): Promise<string>;
  /** Runs the ceph CLI against this cluster; returns stdout. */
  ceph(...args: string[]): Promise<string>;
  /** The OSD's pid (for SIGSTOP/SIGCONT). */
  osdPid(): number;
}

export interface CephClusterOptions {
  /** osd client watch timeout in seconds; undefined keeps Ceph's default (30). */
  watchTimeout?: number;
  pool?: string;
  /** Created with the pool ('' = none). */
  image?: string;
  imageSize?: string;
  startTimeoutMs?: number;
}

function missingPackages(): string | null {
  for (const tool of ['ceph-mon', 'ceph-osd', 'ceph', 'rbd', 'monmaptool']) {
    try {
      execFileSync('sh', ['-c', `command -v ${tool}`], { stdio: 'ignore' });
    } catch {
      return tool;
    }
  }
  return null;
}

function run(cmd: string, args: string[], env: NodeJS.ProcessEnv, timeoutMs: number): Promise<string> {
  return new Promise((resolve, reject) => {
    execFile(cmd, args, { env, timeout: timeoutMs, maxBuffer: 16 << 20 }, (err, stdout, stderr) => {
      if (err) reject(new Error(`${path.basename(cmd)} ${args.join(' ')}: ${err.message.split('\n')[0]}: ${String(stderr).trim().split('\n').slice(-2).join(' | ')}`));
      else resolve(String(stdout));
    });
  });
}

export async function startCephCluster(opts: CephClusterOptions = {}): Promise<CephCluster> {
  const missing = missingPackages();
  if (missing !== null) throw new Error(`${missing} not found: scripts/install-test-deps.sh installs the Ceph packages`);
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'xenblkd-ceph-'));
  const pool = opts.pool ?? 'rbd';
  const env: NodeJS.ProcessEnv = {
    ...process.env,
    CEPH_DIR: dir,
    CEPH_PORT: '0',
    CEPH_POOL: pool,
    CEPH_IMAGE: opts.image ?? '',
    CEPH_IMAGE_SIZE: opts.imageSize ?? '64M',
    CEPH_WATCH_TIMEOUT: opts.watchTimeout === undefined ? '' : String(opts.watchTimeout),
  };
  let out: string;
  try {
    out = await run(path.join(SCRIPTS, 'start.sh'), [], env, opts.startTimeoutMs ?? 60_000);
  } catch (e) {
    await run(path.join(SCRIPTS, 'stop.sh'), [], { ...env, CEPH_STOP_GRACE: '0' }, 20_000).catch(() => '');
    throw e;
  }
  const port = Number(/CEPH_PORT=(\d+)/.exec(out)?.[1] ?? 0);
  const conf = path.join(dir, 'ceph.conf');
  const cli = (tool: string) => (...args: string[]) => run(tool, ['--conf', conf, ...args], env, 60_000);
  const cluster: CephCluster & { env: NodeJS.ProcessEnv } = {
    dir,
    conf,
    port,
    pool,
    env,
    rbd: cli('rbd'),
    ceph: cli('ceph'),
    osdPid: () => Number(fs.readFileSync(path.join(dir, 'run', 'osd.0.pid'), 'utf8').trim()),
  };
  return cluster;
}

/** Stops the daemons (SIGKILL: the data goes with the folder) and removes the folder. */
export async function stopCephCluster(cluster: CephCluster | undefined): Promise<void> {
  if (!cluster) return;
  const env = { ...process.env, CEPH_DIR: cluster.dir, CEPH_STOP_GRACE: '0' };
  await run(path.join(SCRIPTS, 'stop.sh'), [], env, 30_000);
}
