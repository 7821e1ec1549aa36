// Shared test plumbing: temp folders, an embedded xenstored on a unix socket, and running the
// real xenstore clients (xenstore-utils, pyxs, test-xenstore) as subprocesses without blocking
// the event loop the in-process server runs on.
import { spawn } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { XenstoredServer, type XenstoredOptions } from '../../src/io/xs/server/server';

export function tempDir(prefix = 'xs-test-'): string {
  return fs.mkdtempSync(path.join(os.tmpdir(), prefix));
}

export interface RunResult {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
}

/** Runs a program to completion (asynchronously) with extra environment variables. */
export function run(
  cmd: string,
  args: readonly string[],
  opts: { env?: Record<string, string>; input?: string; timeoutMs?: number } = {},
): Promise<RunResult> {
  return new Promise((resolve, reject) => {
    const withInput = opts.input !== undefined;
    const child = spawn(cmd, args, { env: { ...process.env, ...opts.env }, stdio: [withInput ? 'pipe' : 'ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout!.setEncoding('utf8').on('data', (d: string) => (stdout += d));
    child.stderr!.setEncoding('utf8').on('data', (d: string) => (stderr += d));
    const timer = setTimeout(() => child.kill('SIGKILL'), opts.timeoutMs ?? 20000);
    child.on('error', (e) => {
      clearTimeout(timer);
      reject(e);
    });
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      resolve({ code, signal, stdout, stderr });
    });
    if (withInput) {
      child.stdin!.on('error', () => {});
      child.stdin!.end(opts.input);
    }
  });
}

/** Runs a python3 script (with pyxs importable) and returns its result. */
export function python(script: string, env: Record<string, string> = {}): Promise<RunResult> {
  return run('/usr/bin/python3', ['-c', script], { env });
}

export interface TestServer {
  server: XenstoredServer;
  dir: string;
  /** dom0 socket. */
  socket: string;
  /** Environment pointing libxenstore and pyxs at the dom0 socket. */
  env: Record<string, string>;
  close(): Promise<void>;
}

export async function startServer(opts: XenstoredOptions = {}): Promise<TestServer> {
  const dir = tempDir();
  const server = await XenstoredServer.open(opts);
  const socket = path.join(dir, 'socket');
  await server.listen(socket);
  return {
    server,
    dir,
    socket,
    env: { XENSTORED_PATH: socket },
    async close() {
      await server.close();
      fs.rmSync(dir, { recursive: true, force: true });
    },
  };
}

export const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

/** Polls until check() returns true (or fails after timeoutMs). */
export async function until(check: () => boolean | Promise<boolean>, timeoutMs = 5000, what = 'condition'): Promise<void> {
  const end = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await sleep(5);
  }
}
