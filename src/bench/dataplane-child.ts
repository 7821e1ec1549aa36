// The dataplane in a child process (src/effects/dataplane/standalone.ts): started, asked for
// stats, stopped, or killed at any moment. Used by the benchmark, the soak and the crash tests.
import { spawn, type ChildProcess } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { performance } from 'node:perf_hooks';
import * as readline from 'node:readline';
import { standaloneArgs, type StandaloneConfig } from '../effects/dataplane/standalone';

/** How to run standalone-main.js: by default its bundle (dist/xenblkd-dataplane.js), with this node's flags. */
export interface ChildCommand {
  file: string;
  execArgv: string[];
  env: NodeJS.ProcessEnv;
}

/** The bundle when the build made one (a restart then loads one file), else the compiled modules. */
export function defaultChildCommand(): ChildCommand {
  // The crash tests' CLI build (test/support/hooked-cli.ts) sets this: its children are hooked too.
  const hooked = (globalThis as { __XENBLKD_DATAPLANE_ENTRY__?: string }).__XENBLKD_DATAPLANE_ENTRY__;
  if (hooked !== undefined) return { file: hooked, execArgv: process.execArgv, env: process.env };
  const bundle = path.join(__dirname, '..', 'xenblkd-dataplane.js');
  const file = fs.existsSync(bundle) ? bundle : path.join(__dirname, '..', 'effects', 'dataplane', 'standalone-main.js');
  return { file, execArgv: process.execArgv, env: process.env };
}

export interface ReadyInfo {
  pid: number;
  dataPath: string;
  republished: number;
  resumedAt: number;
  direct: boolean;
  /** How reads and writes reach the image: inline, aio or threads. */
  issue: string;
  /** Where the start went, in ms since the process began: node itself, loading modules, setting up the ring. */
  startup: { nodeMs: number; modulesMs: number; setupMs: number };
}

type Msg = { ready?: boolean; fatal?: string; stats?: Record<string, unknown>; stopped?: boolean } & Record<string, unknown>;

export class DataplaneChild {
  readonly exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  readonly fatal: string[] = [];
  readonly stderr: string[] = [];
  private readonly proc: ChildProcess;
  private readonly waiters: ((m: Msg) => boolean)[] = [];
  private exitInfo: { code: number | null; signal: NodeJS.Signals | null } | null = null;
  /** When the process was spawned (performance.now()). */
  readonly spawnedAt = performance.now();

  private constructor(config: StandaloneConfig, env: NodeJS.ProcessEnv, cmd: ChildCommand) {
    this.proc = spawn(process.execPath, [...cmd.execArgv, cmd.file, ...standaloneArgs(config)], {
      stdio: ['pipe', 'pipe', 'pipe'],
      // NODE_EXTRA_CA_CERTS makes node parse that CA bundle before running anything (about 90 ms
      // of a 140 ms bare start where it is set): the dataplane makes no TLS connection.
      env: { ...cmd.env, NODE_EXTRA_CA_CERTS: undefined, XENBLKD_LOG_LEVEL: 'warn', ...env },
    });
    this.exited = new Promise((resolve) =>
      this.proc.on('exit', (code, signal) => {
        this.exitInfo = { code, signal };
        for (const w of this.waiters.splice(0)) w({ exited: true });
        resolve({ code, signal });
      }),
    );
    readline.createInterface({ input: this.proc.stdout! }).on('line', (line) => {
      const msg = JSON.parse(line) as Msg;
      if (msg.fatal) this.fatal.push(msg.fatal);
      for (let i = 0; i < this.waiters.length; i++) {
        if (this.waiters[i](msg)) this.waiters.splice(i--, 1);
      }
    });
    readline.createInterface({ input: this.proc.stderr! }).on('line', (line) => this.stderr.push(line));
  }

  /**
   * Starts one without waiting: ready resolves with its ready line, or null if it exited first
   * (a crash test's kill may come before the line).
   */
  static launch(config: StandaloneConfig, env: NodeJS.ProcessEnv = {}, cmd: ChildCommand = defaultChildCommand()): { child: DataplaneChild; ready: Promise<ReadyInfo | null> } {
    const child = new DataplaneChild(config, env, cmd);
    const ready = child.next((m) => m.ready === true || m.exited === true).then((m) => (m.ready ? (m as unknown as ReadyInfo) : null));
    return { child, ready };
  }

  /** Starts one and waits until it serves the ring; rejects if it exits first. */
  static async start(
    config: StandaloneConfig,
    env: NodeJS.ProcessEnv = {},
    cmd: ChildCommand = defaultChildCommand(),
  ): Promise<{ child: DataplaneChild; ready: ReadyInfo }> {
    const child = new DataplaneChild(config, env, cmd);
    const msg = await child.next((m) => m.ready === true || m.exited === true);
    if (!msg.ready) {
      await child.exited;
      throw new Error(`dataplane child exited before ready: ${JSON.stringify(child.exitInfo)} ${child.stderr.join('\n')}`);
    }
    return { child, ready: msg as unknown as ReadyInfo };
  }

  get pid(): number {
    return this.proc.pid!;
  }

  get alive(): boolean {
    return this.exitInfo === null;
  }

  async stats(): Promise<Record<string, unknown>> {
    const p = this.next((m) => m.stats !== undefined || m.exited === true);
    this.proc.stdin!.write('stats\n');
    const m = await p;
    if (!m.stats) throw new Error('dataplane child exited');
    return m.stats;
  }

  /** Graceful stop: answers in-flight requests, exits 0. Returns the final stats. */
  async stop(): Promise<Record<string, unknown>> {
    const p = this.next((m) => m.stopped === true || m.exited === true);
    this.proc.stdin!.write('stop\n');
    const m = await p;
    await this.exited;
    return m.stats ?? {};
  }

  kill(): void {
    if (this.alive) this.proc.kill('SIGKILL');
  }

  private next(pred: (m: Msg) => boolean): Promise<Msg> {
    return new Promise((resolve) => {
      if (this.exitInfo !== null) return resolve({ exited: true });
      this.waiters.push((m) => {
        if (!pred(m)) return false;
        resolve(m);
        return true;
      });
    });
  }
}
