// The storage servers the bench starts for itself and stops afterwards: qemu-nbd exporting a
// raw file, a qemu-storage-daemon exporting a qcow2, a single-node Ceph (scripts/ceph).
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import * as fs from 'node:fs';
import * as net from 'node:net';
import * as path from 'node:path';
import { FileQsdJournal, QsdSupervisor } from '../../io/storage/qsd';
import type { QsdFormat } from '../../io/storage/target';

export interface Server {
  /** The NBD export's unix socket, or the Ceph conf. */
  readonly address: string;
  stop(): Promise<void>;
}

const EXPORT = 'bench';
export const EXPORT_NAME = EXPORT;

/** Waits until a unix socket accepts connections, or the process exits (its last stderr line). */
async function waitForSocket(proc: ChildProcess, socket: string, what: string, stderr: () => string, timeoutMs = 15_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    if (proc.exitCode !== null || proc.signalCode !== null) throw new Error(`${what} exited at start: ${stderr().trim().split('\n').slice(-1)[0] || `code ${proc.exitCode}`}`);
    if (fs.existsSync(socket)) {
      const ok = await new Promise<boolean>((resolve) => {
        const c = net.connect(socket, () => {
          c.destroy();
          resolve(true);
        });
        c.on('error', () => resolve(false));
      });
      if (ok) return;
    }
    if (Date.now() > deadline) throw new Error(`${what} did not listen on ${socket} within ${timeoutMs} ms`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

function spawnServer(file: string, args: string[], socket: string, what: string): Promise<Server> {
  const proc = spawn(file, args, { stdio: ['ignore', 'ignore', 'pipe'] });
  let err = '';
  proc.stderr!.on('data', (d: Buffer) => {
    err = (err + d.toString()).slice(-4096);
  });
  const exited = new Promise<void>((resolve) => proc.once('exit', () => resolve()));
  proc.once('error', (e) => {
    err += e.message;
  });
  const stop = async (): Promise<void> => {
    if (proc.exitCode === null && proc.signalCode === null) {
      proc.kill('SIGTERM');
      const t = setTimeout(() => proc.kill('SIGKILL'), 5000);
      await exited;
      clearTimeout(t);
    }
    fs.rmSync(socket, { force: true });
  };
  return waitForSocket(proc, socket, what, () => err).then(
    () => ({ address: socket, stop }),
    async (e: Error) => {
      await stop();
      throw e;
    },
  );
}

/** qemu-nbd on a raw file; several connections (the bench's two processes and the reference). */
export function startQemuNbd(file: string, socket: string): Promise<Server> {
  return spawnServer('qemu-nbd', ['-f', 'raw', '-k', socket, '-x', EXPORT, '-t', '-e', '8', '--cache=writeback', '--aio=threads', file], socket, 'qemu-nbd');
}

/** A qemu-storage-daemon started by the qsd driver's supervisor (its command line, its export name). */
export async function startSupervisedQsd(file: string, format: QsdFormat, dir: string, progress: (l: string) => void): Promise<Server & { exportName: string }> {
  fs.mkdirSync(dir, { recursive: true });
  const line = (level: string) => (o: object | string, m?: string) => progress(`qemu-storage-daemon ${level}: ${typeof o === 'string' ? o : (m ?? JSON.stringify(o))}`);
  const supervisor = new QsdSupervisor({ dir, journal: new FileQsdJournal(path.join(dir, 'journal.json')), log: { debug: () => {}, info: () => {}, warn: line('warn'), error: line('error') } });
  let record;
  try {
    record = await supervisor.ensure({ driver: 'qsd', format, path: file }, false);
  } catch (e) {
    supervisor.close();
    throw e;
  }
  const id = record.id;
  return {
    address: record.socket,
    exportName: id,
    stop: async () => {
      try {
        await supervisor.stop(id);
      } finally {
        supervisor.close();
      }
    },
  };
}

function sh(file: string, env: NodeJS.ProcessEnv, timeoutMs: number): Promise<string> {
  return new Promise((resolve, reject) =>
    execFile(file, [], { env, timeout: timeoutMs, maxBuffer: 4 << 20 }, (err, stdout, stderr) => {
      if (err) reject(new Error(`${path.basename(file)}: ${(stderr.trim() || err.message).split('\n').slice(-1)[0]}`));
      else resolve(stdout);
    }),
  );
}

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = net.createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const { port } = s.address() as net.AddressInfo;
      s.close(() => resolve(port));
    });
  });
}

/** The project's single-node Ceph scripts (XENBLKD_CEPH_SCRIPTS overrides the folder). */
export function cephScripts(): string {
  return process.env.XENBLKD_CEPH_SCRIPTS ?? path.join(__dirname, '..', '..', '..', 'scripts', 'ceph');
}

/** A single-node Ceph (memstore, no mgr) in dir with an empty pool `rbd`; address: its ceph.conf. */
export async function startCeph(dir: string): Promise<Server & { env: NodeJS.ProcessEnv; pool: string }> {
  const scripts = cephScripts();
  const start = path.join(scripts, 'start.sh');
  if (!fs.existsSync(start)) throw new Error(`${start} is missing: the single-node Ceph scripts are not part of this build`);
  const env = { ...process.env, CEPH_DIR: dir, CEPH_PORT: String(await freePort()), CEPH_POOL: 'rbd', CEPH_IMAGE: '' };
  const stop = async (): Promise<void> => {
    await sh(path.join(scripts, 'stop.sh'), { ...env, CEPH_STOP_GRACE: '2' }, 30_000).catch(() => undefined);
  };
  try {
    await sh(start, env, 120_000);
  } catch (e) {
    await stop();
    throw e;
  }
  const conf = path.join(dir, 'ceph.conf');
  return { address: conf, env: { ...process.env, CEPH_CONF: conf }, pool: 'rbd', stop };
}
