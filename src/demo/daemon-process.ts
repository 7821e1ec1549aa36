// The daemon as a child process, so that the demo (and tests) can SIGKILL and restart it while
// the simulated guests, living in this process, keep running.
import { type ChildProcess, spawn } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';

export interface DaemonProcessOptions {
  readonly xenstoreSocket: string;
  readonly hvSocket: string;
  readonly stateDir: string;
  readonly logFile: string;
  readonly http?: string;
  readonly extraArgs?: readonly string[];
  readonly env?: NodeJS.ProcessEnv;
  /** The CLI file to run (default CLI_MAIN; the crash tests run their hooked build). */
  readonly main?: string;
  /** How long start() waits for the control socket (recovering thousands of devices takes longer). */
  readonly readyTimeoutMs?: number;
}

/** The bundled CLI (dist/xenblkd.js), whether this runs from the bundle, dist/ or the sources. */
export const CLI_MAIN = (() => {
  const candidates = [
    path.join(__dirname, 'xenblkd.js'),
    path.join(__dirname, '..', 'xenblkd.js'),
    path.join(__dirname, '..', '..', 'dist', 'xenblkd.js'),
  ];
  const found = candidates.find((c) => fs.existsSync(c));
  if (!found) throw new Error(`the built CLI is missing (looked for ${candidates.join(', ')}): run npm run build`);
  return found;
})();

export class DaemonProcess {
  private child?: ChildProcess;
  private exited?: Promise<number | null>;
  /** When the current process was spawned (ms, performance clock). */
  startedAt = 0;
  starts = 0;

  constructor(private readonly opts: DaemonProcessOptions) {}

  get pid(): number | undefined {
    return this.child?.pid;
  }

  get running(): boolean {
    return this.child !== undefined && this.child.exitCode === null && this.child.signalCode === null;
  }

  /** Spawns the daemon and resolves once it serves (its control socket answers a ping). */
  async start(env: NodeJS.ProcessEnv = {}): Promise<void> {
    const args = [this.opts.main ?? CLI_MAIN, 'run', '--sim', this.opts.hvSocket, '--xenstore', this.opts.xenstoreSocket, '--state-dir', this.opts.stateDir, '--log-format', 'json'];
    if (this.opts.http) args.push('--http', this.opts.http);
    args.push(...(this.opts.extraArgs ?? []));
    const log = fs.openSync(this.opts.logFile, 'a');
    const logFrom = fs.fstatSync(log).size;
    this.startedAt = performance.now();
    this.starts += 1;
    // The daemon talks TLS to nobody: without NODE_EXTRA_CA_CERTS node does not parse a CA
    // bundle at every start, which is a third of a bare start here.
    const childEnv: NodeJS.ProcessEnv = { ...process.env, ...this.opts.env, ...env };
    delete childEnv.NODE_EXTRA_CA_CERTS;
    const child = spawn(process.execPath, args, { stdio: ['ignore', log, log], env: childEnv });
    fs.closeSync(log);
    this.child = child;
    this.exited = new Promise((resolve) => child.once('exit', (code) => resolve(code)));
    await this.waitReady(child, logFrom);
  }

  /**
   * Ready: its control socket answers a ping, or (a state folder that refuses the socket) its log
   * says it serves.
   */
  private async waitReady(child: ChildProcess, logFrom: number, timeoutMs = this.opts.readyTimeoutMs ?? 15_000): Promise<void> {
    const { controlRequest } = await import('../daemon/control');
    const sock = path.join(this.opts.stateDir, 'control.sock');
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      if (child.exitCode !== null || child.signalCode !== null) {
        throw new Error(`the daemon exited (${child.exitCode ?? child.signalCode}) before it was ready${this.lastError()}; see ${this.opts.logFile}`);
      }
      try {
        const r = (await controlRequest(sock, { op: 'ping' }, 1000)) as { pid: number };
        if (r.pid === child.pid) return;
      } catch {
        // not listening yet
      }
      if (this.servingWithoutControl(child.pid!, logFrom)) return;
      if (Date.now() > deadline) throw new Error(`the daemon was not ready within ${timeoutMs} ms; see ${this.opts.logFile}`);
      await new Promise((r) => setTimeout(r, 25));
    }
  }

  /** Whether this process logged that it serves, and that it serves without its control socket. */
  private servingWithoutControl(pid: number, from: number): boolean {
    let text: string;
    try {
      const fd = fs.openSync(this.opts.logFile, 'r');
      try {
        const size = fs.fstatSync(fd).size;
        const buf = Buffer.alloc(Math.max(0, size - from));
        fs.readSync(fd, buf, 0, buf.length, from);
        text = buf.toString('utf8');
      } finally {
        fs.closeSync(fd);
      }
    } catch {
      return false;
    }
    const mine = text.split('\n').filter((l) => l.includes(`"pid":${pid},`));
    return mine.some((l) => l.includes('serving without it')) && mine.some((l) => l.includes('"msg":"serving backend'));
  }

  /** The one-line error the daemon printed last, if any (": <message>"). */
  private lastError(): string {
    try {
      const lines = fs.readFileSync(this.opts.logFile, 'utf8').trimEnd().split('\n');
      const line = [...lines].reverse().find((l) => l.startsWith('xenblkd: '));
      return line ? `: ${line.slice('xenblkd: '.length)}` : '';
    } catch {
      return '';
    }
  }

  /** SIGKILL: no cleanup at all, as a crash. */
  async kill(): Promise<void> {
    if (!this.running) return;
    this.child!.kill('SIGKILL');
    await this.exited;
  }

  /** SIGTERM: the graceful stop; returns the exit code. */
  async stop(): Promise<number | null> {
    if (!this.running) return (await this.exited) ?? null;
    this.child!.kill('SIGTERM');
    return (await this.exited) ?? null;
  }

  /** Resolves with the exit code when the process ends by itself. */
  waitExit(): Promise<number | null> {
    return this.exited ?? Promise.resolve(null);
  }
}
