// `xenblkd xenstored` as a process (the built CLI), driven by real xenstore clients.
import { spawn, type ChildProcess } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { XenStore } from '../../src/io/xs/client';
import { run, tempDir, until } from './helpers';

const cli = path.join(__dirname, '../../dist/cli/main.js');
let dir: string;
const procs: ChildProcess[] = [];

beforeEach(() => {
  dir = tempDir();
});

afterEach(() => {
  for (const p of procs.splice(0)) if (p.exitCode === null && p.signalCode === null) p.kill('SIGKILL');
  fs.rmSync(dir, { recursive: true, force: true });
});

interface Daemon {
  proc: ChildProcess;
  out: () => string;
  err: () => string;
  exited: Promise<number | null>;
}

async function startDaemon(args: string[]): Promise<Daemon> {
  const proc = spawn('node', [cli, 'xenstored', ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
  procs.push(proc);
  let out = '';
  let err = '';
  proc.stdout!.setEncoding('utf8').on('data', (d: string) => (out += d));
  proc.stderr!.setEncoding('utf8').on('data', (d: string) => (err += d));
  const exited = new Promise<number | null>((r) => proc.on('close', (code) => r(code)));
  await until(() => out.includes('ready') || proc.exitCode !== null, 15000, 'xenstored to be ready');
  return { proc, out: () => out, err: () => err, exited };
}

describe('xenblkd xenstored', () => {
  it('serves dom0 and guest sockets until SIGTERM', async () => {
    const sock = path.join(dir, 'sock');
    const guest = path.join(dir, 'dom3');
    const d = await startDaemon(['--socket', sock, '--domain-socket', `3:${guest}`]);
    expect(d.out()).toBe(`xenstored ready on ${sock} (dom0), ${guest} (dom3)\n`);
    expect((await run('xenstore-write', ['/local/domain/3/x', 'by-dom0'], { env: { XENSTORED_PATH: sock } })).code).toBe(0);
    expect((await run('xenstore-chmod', ['/local/domain/3', 'n3'], { env: { XENSTORED_PATH: sock } })).code).toBe(0);
    // dom0 made /local/domain/3/x before the chmod, so it stays dom0's: the guest cannot write it.
    const asGuest = { XENSTORED_PATH: guest };
    expect((await run('xenstore-write', ['/local/domain/3/x', 'by-guest'], { env: asGuest })).code).toBe(1);
    expect((await run('xenstore-write', ['/local/domain/3/y', 'by-guest'], { env: asGuest })).code).toBe(0);
    expect((await run('xenstore-read', ['/local/domain/3/y'], { env: { XENSTORED_PATH: sock } })).stdout).toBe('by-guest\n');
    d.proc.kill('SIGTERM');
    expect(await d.exited).toBe(0);
    expect(fs.existsSync(sock)).toBe(false);
    expect(d.err()).toBe('');
  });

  it('keeps acknowledged writes across a kill -9 with --persist', async () => {
    const sock = path.join(dir, 'sock');
    const db = path.join(dir, 'db');
    const env = { XENSTORED_PATH: sock };
    const first = await startDaemon(['--socket', sock, '--persist', db]);
    for (let i = 0; i < 20; i++) expect((await run('xenstore-write', [`/p/k${i}`, `v${i}`], { env })).code).toBe(0);
    expect((await run('xenstore-rm', ['/p/k7'], { env })).code).toBe(0);
    // A pipelined burst of reads and writes, killed the moment its last acknowledgement arrives.
    // (A read's reply may leave before the data is on disk; a write's must not.)
    const xs = await XenStore.connect({ path: sock, reconnect: false });
    await Promise.all(
      Array.from({ length: 500 }, (_, i) => Promise.all([xs.read('/p/k0'), xs.write(`/burst/b${i}`, 'x'.repeat(100))])),
    );
    first.proc.kill('SIGKILL');
    await xs.close();
    await first.exited;
    // The socket file is left behind by the killed process; the new one replaces it.
    const second = await startDaemon(['--socket', sock, '--persist', db]);
    expect(second.out()).toMatch(/ready/);
    const listed = await run('xenstore-list', ['/p'], { env });
    expect(listed.stdout.split('\n').filter(Boolean)).toEqual(Array.from({ length: 20 }, (_, i) => `k${i}`).filter((k) => k !== 'k7'));
    expect((await run('xenstore-read', ['/p/k19'], { env })).stdout).toBe('v19\n');
    const after = await XenStore.connect({ path: sock, reconnect: false });
    expect((await after.directory('/burst')).length).toBe(500);
    await after.close();
    second.proc.kill('SIGTERM');
    expect(await second.exited).toBe(0);
  });

  it('refuses a socket another server is listening on, in one line', async () => {
    const sock = path.join(dir, 'sock');
    const d = await startDaemon(['--socket', sock]);
    const r = await run('node', [cli, 'xenstored', '--socket', sock]);
    expect(r.code).toBe(2);
    expect(r.stderr.trim().split('\n')).toHaveLength(1);
    expect(r.stderr).toMatch(/cannot listen: .*already listening/);
    d.proc.kill('SIGTERM');
    expect(await d.exited).toBe(0);
  });

  it('rejects bad usage in one line', async () => {
    for (const args of [[], ['--socket'], ['--socket', 's', '--domain-socket', '0:x'], ['--socket', 's', '--domain-socket', 'nope'], ['--bogus']]) {
      const r = await run('node', [cli, 'xenstored', ...args]);
      expect(r.code).toBe(2);
      expect(r.stderr.trim().split('\n')).toHaveLength(1);
      expect(r.stderr).toMatch(/^xenblkd: /);
    }
    const help = await run('node', [cli, 'xenstored', '--help']);
    expect(help.code).toBe(0);
    expect(help.stdout).toMatch(/--domain-socket N:PATH/);
  });
});
