// Real NBD servers for the tests: qemu-nbd (forked, its pid from a pid file, so it can be
// SIGKILLed and started again on the same socket or port) and nbdkit's memory plugin.
import { execFileSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as net from 'node:net';
import * as path from 'node:path';
import type { NbdTarget } from '../../../src/io/storage/nbd';

export interface Server {
  readonly target: NbdTarget;
  readonly pid: number;
  /** SIGKILL, and wait until the process is gone. */
  kill(): Promise<void>;
  /** Starts the same server again (same socket or port). */
  start(): Promise<void>;
}

/** A free TCP port on loopback (closed again; the server binds it next). */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = net.createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const port = (s.address() as net.AddressInfo).port;
      s.close(() => resolve(port));
    });
  });
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

async function gone(pid: number): Promise<void> {
  for (let i = 0; i < 200 && alive(pid); i++) await new Promise((r) => setTimeout(r, 10));
}

const running = new Set<number>();
afterAll(async () => {
  for (const pid of running) {
    try {
      process.kill(pid, 'SIGKILL');
    } catch {
      /* already gone */
    }
    await gone(pid);
  }
  running.clear();
});

export interface QemuNbdOptions {
  dir: string;
  file: string;
  format?: 'raw' | 'qcow2';
  transport?: 'unix' | 'tcp';
  exportName?: string;
  readOnly?: boolean;
  /** e.g. ['--cache=none'] */
  extra?: string[];
}

/** qemu-nbd serving a file; --fork returns once the socket listens. */
export async function qemuNbd(o: QemuNbdOptions): Promise<Server> {
  const pidFile = path.join(o.dir, `qemu-nbd-${Math.random().toString(36).slice(2)}.pid`);
  const transport = o.transport ?? 'unix';
  const exportName = o.exportName ?? '';
  let target: NbdTarget;
  let where: string[];
  if (transport === 'unix') {
    const sock = path.join(o.dir, `nbd-${Math.random().toString(36).slice(2)}.sock`);
    target = { driver: 'nbd', transport: 'unix', path: sock, exportName };
    where = ['-k', sock];
  } else {
    const port = await freePort();
    target = { driver: 'nbd', transport: 'tcp', host: '127.0.0.1', port, exportName };
    where = ['-b', '127.0.0.1', '-p', String(port)];
  }
  const args = [
    '--fork',
    '--persistent',
    '--pid-file', pidFile,
    '-f', o.format ?? 'raw',
    '--discard=unmap',
    '--shared=4',
    '-x', exportName,
    ...(o.readOnly ? ['-r'] : []),
    ...(o.extra ?? []),
    ...where,
    o.file,
  ];
  let pid = 0;
  const server: Server = {
    target,
    get pid() {
      return pid;
    },
    async start() {
      if (target.transport === 'unix') fs.rmSync(target.path, { force: true });
      execFileSync('qemu-nbd', args, { stdio: ['ignore', 'ignore', 'pipe'], timeout: 20_000 });
      pid = Number(fs.readFileSync(pidFile, 'utf8').trim());
      running.add(pid);
    },
    async kill() {
      process.kill(pid, 'SIGKILL');
      await gone(pid);
      running.delete(pid);
    },
  };
  await server.start();
  return server;
}

/** nbdkit's memory plugin on a unix socket (a RAM disk with trim, zeroes, FUA). */
export async function nbdkitMemory(dir: string, size: string, filters: string[] = [], params: string[] = []): Promise<Server> {
  const sock = path.join(dir, `nbdkit-${Math.random().toString(36).slice(2)}.sock`);
  const pidFile = `${sock}.pid`;
  const target: NbdTarget = { driver: 'nbd', transport: 'unix', path: sock, exportName: '' };
  let pid = 0;
  const server: Server = {
    target,
    get pid() {
      return pid;
    },
    async start() {
      fs.rmSync(sock, { force: true });
      // nbdkit forks into the background once it listens (without -f).
      execFileSync('nbdkit', ['-U', sock, '-P', pidFile, ...filters, 'memory', size, ...params], { stdio: ['ignore', 'ignore', 'pipe'], timeout: 20_000 });
      for (let i = 0; i < 200 && !fs.existsSync(pidFile); i++) await new Promise((r) => setTimeout(r, 10));
      pid = Number(fs.readFileSync(pidFile, 'utf8').trim());
      running.add(pid);
    },
    async kill() {
      process.kill(pid, 'SIGKILL');
      await gone(pid);
      running.delete(pid);
    },
  };
  await server.start();
  return server;
}

