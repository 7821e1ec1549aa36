// Test helpers: a hypervisor in this process on a socket in a temp dir, with a log we can read,
// and clients in child processes.
import { spawn, type ChildProcess } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import * as readline from 'node:readline';
import { Hypervisor } from '../../../src/sim/hv/hypervisor';

export interface TestHost {
  hv: Hypervisor;
  socketPath: string;
  logs: string[];
  close(): Promise<void>;
}

export async function startHost(): Promise<TestHost> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'sim-hv-'));
  const logs: string[] = [];
  const hv = new Hypervisor({
    hostId: `test-${process.pid}-${path.basename(dir)}`,
    log: { info: (m) => logs.push(`info ${m}`), warn: (m) => logs.push(`warn ${m}`) },
  });
  const socketPath = path.join(dir, 'hv.sock');
  await hv.listen(socketPath);
  return {
    hv,
    socketPath,
    logs,
    async close() {
      await hv.close();
      fs.rmSync(dir, { recursive: true, force: true });
    },
  };
}

export type Reply = { ok: boolean; code?: string; message?: string; [k: string]: unknown };

/** A hypervisor client in a child process (test/sim-hv/support/client-child.ts). */
export class ChildClient {
  readonly events: number[] = [];
  /** Why the child gave up, if it did. */
  fatal: string | undefined;
  readonly exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  private readonly proc: ChildProcess;
  private seq = 0;
  private readonly waiting = new Map<number, (r: Reply) => void>();
  private eventWaiters: (() => void)[] = [];
  private readyResolve!: () => void;
  readonly ready = new Promise<void>((r) => (this.readyResolve = r));

  constructor(socketPath: string, domid = 0) {
    this.proc = spawn(
      process.execPath,
      ['-r', path.join(__dirname, 'register.js'), path.join(__dirname, 'client-child.ts'), socketPath, String(domid)],
      { stdio: ['pipe', 'pipe', 'inherit'] },
    );
    this.exited = new Promise((resolve) => this.proc.on('exit', (code, signal) => resolve({ code, signal })));
    readline.createInterface({ input: this.proc.stdout! }).on('line', (line) => {
      const msg = JSON.parse(line) as Reply & { seq?: number; event?: number; ready?: boolean; fatal?: string };
      if (msg.ready) this.readyResolve();
      else if (msg.fatal) this.fatal = msg.fatal;
      else if (msg.event !== undefined) {
        this.events.push(msg.event);
        const w = this.eventWaiters;
        this.eventWaiters = [];
        for (const f of w) f();
      } else if (msg.seq !== undefined) this.waiting.get(msg.seq)?.(msg);
    });
  }

  static async start(socketPath: string, domid = 0): Promise<ChildClient> {
    const c = new ChildClient(socketPath, domid);
    await c.ready;
    return c;
  }

  request(cmd: string, args: Record<string, unknown> = {}): Promise<Reply> {
    const seq = ++this.seq;
    return new Promise((resolve) => {
      this.waiting.set(seq, resolve);
      this.proc.stdin!.write(`${JSON.stringify({ seq, cmd, ...args })}\n`);
    });
  }

  async ok(cmd: string, args: Record<string, unknown> = {}): Promise<Reply> {
    const r = await this.request(cmd, args);
    if (!r.ok) throw new Error(`${cmd} failed in child: ${r.code} ${r.message}`);
    return r;
  }

  /** Resolves once `n` events in total have been seen. */
  async waitEvents(n: number): Promise<void> {
    while (this.events.length < n) await new Promise<void>((r) => this.eventWaiters.push(r));
  }

  kill(): void {
    this.proc.kill('SIGKILL');
  }
}

/** Resolves when cond() holds, polling the event loop (for effects of another process). */
export async function eventually(cond: () => boolean, what: string, timeoutMs = 5000): Promise<void> {
  const end = Date.now() + timeoutMs;
  while (!cond()) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 5));
  }
}
