// Helpers for the storage end-to-end tests: real storage servers (qemu-nbd, nbdkit,
// qemu-storage-daemon) as child processes, found by their command lines.
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { until } from '../support/daemon-world';

/** Pids of running (not zombie) processes named `program` whose command line contains `text`. */
export function pidsOf(program: string, text: string): number[] {
  const pids: number[] = [];
  for (const e of fs.readdirSync('/proc')) {
    if (!/^[0-9]+$/.test(e)) continue;
    try {
      const argv = fs.readFileSync(`/proc/${e}/cmdline`, 'utf8').split('\0');
      const state = fs.readFileSync(`/proc/${e}/stat`, 'utf8').replace(/^.*\) /, '')[0];
      if (path.basename(argv[0] ?? '') === program && argv.join(' ').includes(text) && state !== 'Z') pids.push(Number(e));
    } catch {
      // gone meanwhile
    }
  }
  return pids;
}

export function qemuImg(args: string[]): string {
  const r = spawnSync('qemu-img', args, { encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`qemu-img ${args.join(' ')}: ${r.stderr || r.stdout}`);
  return r.stdout;
}

/** `qemu-img check` on an image no process has open: throws unless it is clean. */
export function expectCleanImage(file: string): void {
  const out = qemuImg(['check', '--output=json', file]);
  const report = JSON.parse(out) as { 'check-errors'?: number; corruptions?: number; leaks?: number };
  if ((report['check-errors'] ?? 0) + (report.corruptions ?? 0) + (report.leaks ?? 0) !== 0) throw new Error(`qemu-img check ${file}: ${out}`);
}

/** A qemu-nbd serving a raw file on a unix socket (started again on the same socket by restart()). */
export class QemuNbd {
  private child: ChildProcess | null = null;
  constructor(
    readonly file: string,
    readonly socket: string,
  ) {}

  async start(): Promise<void> {
    fs.rmSync(this.socket, { force: true });
    const child = spawn('qemu-nbd', ['--persistent', '--shared=8', '--format=raw', '--cache=none', `--socket=${this.socket}`, this.file], { stdio: 'ignore' });
    this.child = child;
    await until(() => fs.existsSync(this.socket), `qemu-nbd on ${this.socket}`, 10_000);
  }

  get pid(): number | undefined {
    return this.child?.pid;
  }

  kill(): Promise<void> {
    const child = this.child;
    this.child = null;
    if (!child || child.exitCode !== null) return Promise.resolve();
    return new Promise((resolve) => {
      child.once('exit', () => resolve());
      child.kill('SIGKILL');
    });
  }
}

/** nbdkit's memory plugin on a loopback TCP port: an NBD server independent of QEMU. */
export async function nbdkitMemory(bytes: number, port: number): Promise<ChildProcess> {
  const child = spawn('nbdkit', ['--foreground', '--exit-with-parent', '-i', '127.0.0.1', '-p', String(port), 'memory', String(bytes)], { stdio: 'ignore' });
  await until(async () => {
    const r = spawnSync('nbdinfo', ['--size', `nbd://127.0.0.1:${port}/`], { encoding: 'utf8' });
    return r.status === 0;
  }, `nbdkit on port ${port}`, 10_000);
  return child;
}
