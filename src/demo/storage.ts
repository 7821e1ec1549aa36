// Where the demo's disks live (`--storage`): raw files, qcow2 images (the daemon serves them
// through qemu-storage-daemon), NBD exports (a qemu-nbd per disk, started here), or RBD images
// on a single-node Ceph cluster started here. Each kind needs its Debian packages: a missing one
// is one line saying what to install.
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';

export const DEMO_STORAGE_KINDS = ['file', 'qcow2', 'nbd', 'rbd'] as const;
export type DemoStorageKind = (typeof DEMO_STORAGE_KINDS)[number];

export class DemoStorageError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'DemoStorageError';
  }
}

export interface DemoStorage {
  readonly kind: DemoStorageKind;
  /** One line for the demo's output: what serves the disks. */
  readonly description: string;
  /** Creates guest domid's disk; returns the target its params carry. */
  create(domid: number): Promise<string>;
  close(): Promise<void>;
}

/** The programs each kind runs here, and the Debian packages that bring them. */
const NEEDS: Record<DemoStorageKind, readonly [string, string][]> = {
  file: [],
  qcow2: [['qemu-img', 'qemu-utils'], ['qemu-storage-daemon', 'qemu-system-common']],
  nbd: [['qemu-nbd', 'qemu-utils']],
  rbd: [['ceph-mon', 'ceph-mon'], ['ceph-osd', 'ceph-osd'], ['rbd', 'ceph-common'], ['monmaptool', 'ceph-common']],
};

function onPath(program: string): boolean {
  const dirs = [...(process.env.PATH ?? '/usr/bin:/bin').split(':'), '/usr/sbin', '/sbin'];
  return dirs.some((d) => d !== '' && fs.existsSync(path.join(d, program)));
}

/** Throws one line naming the packages to install when a program is missing. */
export function checkDemoStorage(kind: DemoStorageKind): void {
  const missing = NEEDS[kind].filter(([program]) => !onPath(program));
  if (missing.length === 0) return;
  const packages = [...new Set(missing.map(([, pkg]) => pkg))].join(' ');
  throw new DemoStorageError(`--storage ${kind} needs ${missing.map(([p]) => p).join(', ')}: apt-get install ${packages}`);
}

function run(program: string, args: string[], what: string): string {
  const r = spawnSync(program, args, { encoding: 'utf8', timeout: 120_000 });
  if (r.status !== 0) {
    const why = (r.stderr || r.stdout || r.error?.message || '').trim().split('\n').pop();
    throw new DemoStorageError(`${what} failed: ${why || `exit ${r.status}`}`);
  }
  return r.stdout;
}

async function waitForSocket(socket: string, child: ChildProcess, what: string): Promise<void> {
  const deadline = Date.now() + 15_000;
  while (!fs.existsSync(socket)) {
    if (child.exitCode !== null) throw new DemoStorageError(`${what} exited (${child.exitCode}) before listening`);
    if (Date.now() > deadline) throw new DemoStorageError(`${what} did not listen within 15 s`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

/** SIGTERMs every `program` whose command line names `text` (this demo's folder). */
function stopProcessesNaming(program: string, text: string): void {
  for (const pid of fs.readdirSync('/proc').filter((e) => /^[0-9]+$/.test(e))) {
    let cmdline: string;
    try {
      cmdline = fs.readFileSync(`/proc/${pid}/cmdline`, 'utf8');
    } catch {
      continue;
    }
    const argv = cmdline.split('\0');
    if (path.basename(argv[0] ?? '') === program && cmdline.includes(text)) {
      try {
        process.kill(Number(pid), 'SIGTERM');
      } catch {
        // gone meanwhile
      }
    }
  }
}

function sparseFile(file: string, mib: number): void {
  fs.writeFileSync(file, '');
  fs.truncateSync(file, mib << 20);
}

/** The folder holding scripts/ (the repository, or the installed package's share folder). */
function scriptsDir(): string {
  for (const up of ['..', '../..', '../../..']) {
    const dir = path.resolve(__dirname, up, 'scripts');
    if (fs.existsSync(path.join(dir, 'ceph'))) return dir;
  }
  throw new DemoStorageError('--storage rbd needs scripts/ceph from the xenblkd source tree');
}

export async function demoStorage(kind: DemoStorageKind, dir: string, imageMiB: number): Promise<DemoStorage> {
  checkDemoStorage(kind);
  switch (kind) {
    case 'file':
      return {
        kind,
        description: 'raw image files',
        async create(domid) {
          const file = path.join(dir, `guest${domid}-xvda.img`);
          sparseFile(file, imageMiB);
          return file;
        },
        async close() {},
      };
    case 'qcow2':
      return {
        kind,
        description: 'qcow2 images served through qemu-storage-daemon (one per disk, supervised by the daemon)',
        async create(domid) {
          const file = path.join(dir, `guest${domid}-xvda.qcow2`);
          run('qemu-img', ['create', '-q', '-f', 'qcow2', file, `${imageMiB}M`], `qemu-img create ${file}`);
          return `qcow2:${file}`;
        },
        // A daemon that stops leaves its storage daemons running for its next start (they are
        // adopted): the demo is over, so they go.
        async close() {
          stopProcessesNaming('qemu-storage-daemon', dir);
        },
      };
    case 'nbd': {
      const servers: ChildProcess[] = [];
      return {
        kind,
        description: 'NBD exports (a qemu-nbd per disk, on a unix socket)',
        async create(domid) {
          const file = path.join(dir, `guest${domid}-xvda.img`);
          const socket = path.join(dir, `guest${domid}-nbd.sock`);
          sparseFile(file, imageMiB);
          const child = spawn('qemu-nbd', ['--persistent', '--shared=4', '--format=raw', '--cache=none', '--aio=native', `--socket=${socket}`, file], { stdio: 'ignore' });
          servers.push(child);
          await waitForSocket(socket, child, `qemu-nbd for guest ${domid}`);
          return `nbd:unix:${socket}`;
        },
        async close() {
          for (const s of servers) s.kill('SIGTERM');
        },
      };
    }
    case 'rbd': {
      const cephDir = path.join(dir, 'ceph');
      const scripts = scriptsDir();
      const env = { ...process.env, CEPH_DIR: cephDir, CEPH_PORT: '0', CEPH_POOL: 'rbd', CEPH_IMAGE: '' };
      const started = spawnSync('bash', [path.join(scripts, 'ceph', 'start.sh')], { env, encoding: 'utf8', timeout: 180_000 });
      if (started.status !== 0) {
        throw new DemoStorageError(`the single-node Ceph cluster did not start: ${(started.stderr || started.stdout).trim().split('\n').pop()}`);
      }
      const conf = path.join(cephDir, 'ceph.conf');
      return {
        kind,
        description: `RBD images on a single-node Ceph cluster (${cephDir})`,
        async create(domid) {
          const image = `guest${domid}-xvda`;
          run('rbd', ['--conf', conf, 'create', '--size', `${imageMiB}M`, `rbd/${image}`], `rbd create ${image}`);
          return `rbd:rbd/${image}:conf=${conf}`;
        },
        async close() {
          spawnSync('bash', [path.join(scripts, 'ceph', 'stop.sh')], { env: { ...env, CEPH_STOP_GRACE: '0' }, stdio: 'ignore', timeout: 60_000 });
        },
      };
    }
  }
}
