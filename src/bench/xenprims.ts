// Benchmark of the simulated Xen primitives, each next to a physical reference measured in the
// same run: grant copy vs plain memcpy, event round trip vs a plain pipe round trip, and
// map+unmap through the hypervisor. The simulated host runs in a child process, as it does for
// a real daemon; this process plays the daemon (domid 0).
import { spawn, type ChildProcess } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import * as readline from 'node:readline';
import { firstValueFrom } from 'rxjs';
import { allocDma } from '../io/dma';
import type { GrantCopySegment } from '../io/ports';
import { connectSimHypervisor } from '../io/sim';

export interface XenprimsBenchOptions {
  /** Time spent on each throughput figure. Default 1000 ms. */
  durationMs?: number;
  /** Round trips measured for each latency figure. Default 5000. */
  roundTrips?: number;
  /** Where lines go. Default: stdout. */
  print?: (line: string) => void;
  /** Node flags for the child processes. Default: this process's. */
  execArgv?: string[];
}

export interface XenprimsBenchResult {
  copy: { bytes: number; direction: 'guest->local' | 'local->guest'; mbPerSec: number; memcpyMbPerSec: number }[];
  mapUnmap: { refs: number; perSec: number }[];
  eventRoundTrip: Latency;
  pipeRoundTrip: Latency;
}

export interface Latency {
  p50us: number;
  p99us: number;
  n: number;
}

const PAGES = 64;

export async function runXenprimsBench(opts: XenprimsBenchOptions = {}): Promise<XenprimsBenchResult> {
  const durationMs = opts.durationMs ?? 1000;
  const roundTrips = opts.roundTrips ?? 5000;
  const print = opts.print ?? ((l: string) => process.stdout.write(`${l}\n`));
  const execArgv = opts.execArgv ?? process.execArgv;
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'xenprims-bench-'));
  const socketPath = path.join(dir, 'hv.sock');
  const host = startChild(execArgv, ['--host', socketPath, `bench-${process.pid}`]);
  const pipePeer = startChild(execArgv, ['--pipe-echo']);
  try {
    const { refs, port } = JSON.parse(await host.line()) as { refs: number[]; port: number };
    const conn = await connectSimHypervisor(socketPath);
    const dma = allocDma(1 << 20);
    const result: XenprimsBenchResult = {
      copy: [],
      mapUnmap: [],
      eventRoundTrip: { p50us: 0, p99us: 0, n: 0 },
      pipeRoundTrip: { p50us: 0, p99us: 0, n: 0 },
    };

    print(`xenprims bench (simulated host in pid ${host.proc.pid}, ${durationMs} ms per figure)`);
    print('grant copy                       sim MB/s   memcpy MB/s');
    const statuses = new Int16Array(16);
    const source = Buffer.alloc(1 << 20, 0x5a);
    for (const bytes of [4096, 65536]) {
      for (const toGuest of [false, true]) {
        const n = bytes / 4096;
        const segs: GrantCopySegment[] = Array.from({ length: n }, (_, i) => ({
          toGuest,
          domid: 1,
          ref: refs[i % PAGES],
          guestOffset: 0,
          len: 4096,
          local: dma,
          localOffset: i * 4096,
        }));
        if (conn.gnttab.copy(segs, n, statuses) !== 0) throw new Error(`grant copy failed: ${[...statuses.subarray(0, n)]}`);
        const mbPerSec = throughput(durationMs, bytes, () => conn.gnttab.copy(segs, n, statuses));
        const memcpyMbPerSec = throughput(durationMs, bytes, () => dma.view.set(source.subarray(0, bytes), 0));
        const direction = toGuest ? 'local->guest' : 'guest->local';
        result.copy.push({ bytes, direction, mbPerSec, memcpyMbPerSec });
        print(`  ${String(bytes / 1024).padStart(2)} KiB ${direction.padEnd(14)}  ${fmt(mbPerSec, 12)}  ${fmt(memcpyMbPerSec, 12)}`);
      }
    }

    print('map+unmap through the hypervisor    per second');
    for (const n of [1, 11]) {
      const r = refs.slice(0, n);
      // The first round trips of a fresh connection are slow (JIT, both sides): not measured.
      const warm = Date.now() + (n === 1 ? durationMs : durationMs / 4);
      while (Date.now() < warm) await (await conn.gnttab.map(1, r, true)).unmap();
      const end = Date.now() + durationMs;
      let ops = 0;
      const t0 = process.hrtime.bigint();
      while (Date.now() < end) {
        const m = await conn.gnttab.map(1, r, true);
        await m.unmap();
        ops++;
      }
      const perSec = ops / (Number(process.hrtime.bigint() - t0) / 1e9);
      result.mapUnmap.push({ refs: n, perSec });
      print(`  ${String(n).padStart(2)} page${n > 1 ? 's' : ' '}                         ${fmt(perSec, 10)}`);
    }

    const be = await conn.evtchn.bindInterdomain(1, port);
    await firstValueFrom(be.events$); // the event a bind raises
    be.unmask();
    result.eventRoundTrip = await latency(roundTrips, (done) => {
      const sub = be.events$.subscribe(() => {
        be.unmask();
        done();
      });
      return { kick: () => be.notify(), stop: () => sub.unsubscribe() };
    });
    result.pipeRoundTrip = await latency(roundTrips, (done) => {
      const one = Buffer.from([1]);
      const onData = () => done();
      pipePeer.proc.stdout!.on('data', onData);
      return { kick: () => pipePeer.proc.stdin!.write(one), stop: () => pipePeer.proc.stdout!.off('data', onData) };
    });
    print('round trip between two processes    p50 us     p99 us');
    print(`  event channel via the sim host  ${fmt(result.eventRoundTrip.p50us, 9)}  ${fmt(result.eventRoundTrip.p99us, 9)}`);
    print(`  plain pipe (reference)          ${fmt(result.pipeRoundTrip.p50us, 9)}  ${fmt(result.pipeRoundTrip.p99us, 9)}`);

    dma.free();
    await conn.close();
    return result;
  } finally {
    host.proc.stdin!.end();
    pipePeer.proc.stdin!.end();
    await Promise.all([host.exited, pipePeer.exited]);
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

function throughput(durationMs: number, bytes: number, op: () => unknown): number {
  let n = 0;
  const t0 = process.hrtime.bigint();
  const end = t0 + BigInt(durationMs) * 1_000_000n;
  let now = t0;
  while (now < end) {
    for (let i = 0; i < 64; i++) op();
    n += 64;
    now = process.hrtime.bigint();
  }
  return (n * bytes) / (Number(now - t0) / 1e3);
}

/** Runs round trips one after another: setup gets `done` to call when one came back. */
function latency(n: number, setup: (done: () => void) => { kick: () => void; stop: () => void }): Promise<Latency> {
  return new Promise((resolve) => {
    const samples = new Float64Array(n);
    const warmup = Math.min(200, n);
    let i = -warmup;
    let t0 = 0n;
    const io = setup(() => {
      const dt = Number(process.hrtime.bigint() - t0) / 1e3;
      if (i >= 0) samples[i] = dt;
      if (++i < n) {
        t0 = process.hrtime.bigint();
        io.kick();
      } else {
        io.stop();
        samples.sort();
        resolve({ p50us: samples[Math.floor(n * 0.5)], p99us: samples[Math.min(n - 1, Math.floor(n * 0.99))], n });
      }
    });
    t0 = process.hrtime.bigint();
    io.kick();
  });
}

function fmt(x: number, width: number): string {
  return (x >= 100 ? x.toFixed(0) : x.toFixed(1)).padStart(width);
}

interface Child {
  proc: ChildProcess;
  exited: Promise<void>;
  line(): Promise<string>;
}

function startChild(execArgv: string[], args: string[]): Child {
  const proc = spawn(process.execPath, [...execArgv, __filename, ...args], { stdio: ['pipe', 'pipe', 'inherit'] });
  const exited = new Promise<void>((r) => proc.once('exit', () => r()));
  return {
    proc,
    exited,
    line: () =>
      new Promise<string>((resolve, reject) => {
        const rl = readline.createInterface({ input: proc.stdout! });
        rl.once('line', (l) => {
          rl.close();
          resolve(l);
        });
        proc.once('exit', (code) => reject(new Error(`bench child ${args[0]} exited with ${code}`)));
      }),
  };
}

/** The simulated host side: a guest that grants pages to dom0 and echoes every event. */
async function hostMain(socketPath: string, hostId: string): Promise<void> {
  const { Hypervisor } = await import('../sim/hv/hypervisor');
  const hv = new Hypervisor({ hostId, log: { info: () => {}, warn: (m) => process.stderr.write(`hv: ${m}\n`) } });
  await hv.listen(socketPath);
  const guest = hv.createDomain(1, { memoryBytes: 64 << 20 });
  const refs = guest.allocPages(PAGES).map((f) => guest.grantAccess(f, 0, false));
  const port = await guest.evtchn.allocUnbound(0);
  port.events$.subscribe(() => {
    port.unmask();
    port.notify();
  });
  process.stdout.write(`${JSON.stringify({ refs, port: port.localPort })}\n`);
  process.stdin.resume();
  process.stdin.on('end', () => void hv.close().then(() => process.exit(0)));
}

function pipeEchoMain(): void {
  process.stdin.on('data', (b: Buffer) => process.stdout.write(b));
  process.stdin.on('end', () => process.exit(0));
}

if (require.main === module) {
  const [mode, ...rest] = process.argv.slice(2);
  if (mode === '--host') void hostMain(rest[0], rest[1]);
  else if (mode === '--pipe-echo') pipeEchoMain();
  else
    void runXenprimsBench().catch((e: Error) => {
      process.stderr.write(`xenprims bench: ${e.message}\n`);
      process.exit(1);
    });
}
