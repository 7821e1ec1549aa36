// Benchmark of our xenstore client against the embedded xenstored over a unix socket, with pyxs
// (an independent Python client) doing the same operations on the same server in the same run
// as the reference line. Prints figures; asserts nothing. Run: node dist/bench/xenstore.js [--quick]
import { spawn, type ChildProcess } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { XenStore } from '../io/xs/client';
import { XenstoredServer } from '../io/xs/server/server';

export interface XenstoreBenchOptions {
  /** Fewer operations (a smoke run). */
  quick?: boolean;
  /** Run the server in this process instead of a separate `xenblkd xenstored` process. */
  inProcessServer?: boolean;
  /** Requests kept in flight by our client for the pipelined figures (default 256). */
  window?: number;
  /** Where progress lines go (default: nowhere). */
  log?: (line: string) => void;
}

export interface XenstoreBenchRow {
  metric: string;
  unit: string;
  ours: number;
  pyxs: number;
  /** true when larger is better (throughput), false for latencies. */
  higherIsBetter: boolean;
}

export interface XenstoreBenchReport {
  rows: XenstoreBenchRow[];
  /** Transactions retried because of conflicts in the conflicting run (ours, pyxs). */
  conflicts: { ours: number; pyxs: number };
  targets: { throughputAtLeast10x: boolean; watchP99UnderOneMs: boolean };
  /** The printed table. */
  table: string;
}

interface Figures {
  readsPerSec: number;
  writesPerSec: number;
  watchP50Ms: number;
  watchP99Ms: number;
  txPerSec: number;
  txConflictPerSec: number;
  conflicts: number;
}

function percentile(sorted: number[], p: number): number {
  if (sorted.length === 0) return NaN;
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))];
}

/** Runs `total` operations keeping `window` in flight; returns operations per second. */
async function pipelined(total: number, window: number, op: (i: number) => Promise<unknown>): Promise<number> {
  const t0 = process.hrtime.bigint();
  let next = 0;
  let done = 0;
  await new Promise<void>((resolve, reject) => {
    const launch = (): void => {
      const i = next++;
      op(i).then(() => {
        done++;
        if (next < total) launch();
        else if (done === total) resolve();
      }, reject);
    };
    for (let k = 0; k < Math.min(window, total); k++) launch();
  });
  return total / (Number(process.hrtime.bigint() - t0) / 1e9);
}

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)];
}

interface OurParams {
  n: number;
  watchN: number;
  txN: number;
  runs: number;
  window: number;
  /** Transactions in flight on the main connection (the daemon runs its transactions on one). */
  txConcurrency: number;
  /** Connections contending for the hot key, one transaction each at a time. */
  hotContenders: number;
}

/** Watch delivery: one write at a time, timed from the write call to the watcher's event. */
async function watchLatencies(xs: XenStore, watcher: XenStore, count: number): Promise<number[]> {
  const latencies: number[] = [];
  let t0 = 0n;
  let onEvent: (() => void) | undefined;
  await xs.write('/bench/ours/watch/v', '');
  const sub = watcher.watch('/bench/ours/watch').subscribe((e) => {
    if (e.path !== '/bench/ours/watch/v' || !onEvent) return;
    latencies.push(Number(process.hrtime.bigint() - t0) / 1e6);
    const f = onEvent;
    onEvent = undefined;
    f();
  });
  await new Promise((r) => setTimeout(r, 20));
  for (let i = 0; i < count; i++) {
    const seen = new Promise<void>((r) => (onEvent = r));
    t0 = process.hrtime.bigint();
    await xs.write('/bench/ours/watch/v', String(i));
    await seen;
  }
  sub.unsubscribe();
  return latencies;
}

/** `total` increment transactions of key(i), `perClient` at a time on each of `clients`. */
async function transactions(clients: XenStore[], perClient: number, total: number, key: (i: number) => string): Promise<{ perSec: number; attempts: number }> {
  let attempts = 0;
  let next = 0;
  const t0 = process.hrtime.bigint();
  const worker = async (c: XenStore) => {
    while (next < total) {
      const k = key(next++);
      await c.transaction(
        async (tx) => {
          attempts++;
          const v = Number(await tx.read(k));
          await tx.write(k, String(v + 1));
        },
        { maxAttempts: 10000 },
      );
    }
  };
  await Promise.all(clients.flatMap((c) => Array.from({ length: perClient }, () => worker(c))));
  return { perSec: total / (Number(process.hrtime.bigint() - t0) / 1e9), attempts };
}

async function measureOurs(socket: string, o: OurParams): Promise<Figures> {
  const xs = await XenStore.connect({ path: socket, reconnect: false });
  const watcher = await XenStore.connect({ path: socket, reconnect: false });
  const clients = await Promise.all(Array.from({ length: o.hotContenders }, () => XenStore.connect({ path: socket, reconnect: false })));
  try {
    await xs.write('/bench/ours/r', 'x'.repeat(32));
    for (let k = 0; k < 100; k++) await xs.write(`/bench/ours/w/k${k}`, '');
    const concurrency = o.txConcurrency;
    for (let k = 0; k < concurrency; k++) await xs.write(`/bench/ours/tx/k${k}`, '0');
    await xs.write('/bench/ours/tx/counter', '0');

    // Warm up every path (the JIT of both processes) before measuring.
    await pipelined(5000, o.window, () => xs.read('/bench/ours/r'));
    await pipelined(5000, o.window, (i) => xs.write(`/bench/ours/w/k${i % 100}`, String(i)));
    await watchLatencies(xs, watcher, 200);
    for (let w = 0; w < 3; w++) await transactions([xs], concurrency, 2000, (i) => `/bench/ours/tx/k${i % concurrency}`);
    await transactions(clients, 1, 500, () => '/bench/ours/tx/counter');

    const lat = (await watchLatencies(xs, watcher, o.watchN)).sort((a, b) => a - b);
    const reads: number[] = [];
    const writes: number[] = [];
    const free: number[] = [];
    const hot: number[] = [];
    let conflicts = 0;
    let hotCommits = 0;
    const counterBefore = Number(await xs.read('/bench/ours/tx/counter'));
    for (let r = 0; r < o.runs; r++) {
      reads.push(await pipelined(o.n, o.window, () => xs.read('/bench/ours/r')));
      writes.push(await pipelined(o.n, o.window, (i) => xs.write(`/bench/ours/w/k${i % 100}`, String(i))));
      free.push((await transactions([xs], concurrency, o.txN, (i) => `/bench/ours/tx/k${i % concurrency}`)).perSec);
      // One transaction per connection on the hot key: more contenders only add conflicts.
      const h = await transactions(clients, 1, o.txN, () => '/bench/ours/tx/counter');
      hot.push(h.perSec);
      conflicts += h.attempts - o.txN;
      hotCommits += o.txN;
    }
    const final = Number(await xs.read('/bench/ours/tx/counter'));
    if (final !== counterBefore + hotCommits) throw new Error(`conflicting increments lost updates: ${final - counterBefore} != ${hotCommits}`);
    return {
      readsPerSec: median(reads),
      writesPerSec: median(writes),
      watchP50Ms: percentile(lat, 50),
      watchP99Ms: percentile(lat, 99),
      txPerSec: median(free),
      txConflictPerSec: median(hot),
      conflicts: Math.round(conflicts / o.runs),
    };
  } finally {
    await Promise.all(clients.map((c) => c.close()));
    await xs.close();
    await watcher.close();
  }
}

// The same operations through pyxs. pyxs is synchronous: its pipelining is several threads
// sharing one connection (its Router), which is how it is meant to be used concurrently.
const PYXS_BENCH = String.raw`
import json, statistics, sys, threading, time
from pyxs import Client
n, watch_n, tx_n, threads, tx_threads, runs = (int(a) for a in sys.argv[1:7])

def timed_threads(count, fn):
    ts = [threading.Thread(target=fn, args=(k,)) for k in range(count)]
    t0 = time.perf_counter()
    for t in ts: t.start()
    for t in ts: t.join()
    return time.perf_counter() - t0

out = {}
with Client() as c:
    c.write(b"/bench/pyxs/r", b"x" * 32)
    for k in range(100):
        c.write(b"/bench/pyxs/w/k%d" % k, b"")
    for w in range(tx_threads):
        c.write(b"/bench/pyxs/tx/k%d" % w, b"0")
    c.write(b"/bench/pyxs/tx/counter", b"0")

    # Watch delivery first, one write at a time, timed from the write call to the event.
    c.write(b"/bench/pyxs/watch/v", b"")
    with Client() as wc:
        m = wc.monitor()
        m.watch(b"/bench/pyxs/watch", b"t")
        events = m.wait()
        next(events)
        lat = []
        for i in range(watch_n + 100):
            t0 = time.perf_counter()
            c.write(b"/bench/pyxs/watch/v", str(i).encode())
            while True:
                e = next(events)
                if e.path == b"/bench/pyxs/watch/v":
                    break
            lat.append((time.perf_counter() - t0) * 1000)
        m.unwatch(b"/bench/pyxs/watch", b"t")
    lat = sorted(lat[100:])
    out["watchP50Ms"] = lat[len(lat) // 2]
    out["watchP99Ms"] = lat[min(len(lat) - 1, int(len(lat) * 0.99))]

    per = n // threads
    def reader(k):
        cc = c.__copy__()   # threads share one connection (pyxs's Router): its pipelining
        for i in range(per):
            cc.read(b"/bench/pyxs/r")
    def writer(k):
        cc = c.__copy__()
        for i in range(per):
            cc.write(b"/bench/pyxs/w/k%d" % ((i * threads + k) % 100), str(i).encode())
    attempts = [0]
    lock = threading.Lock()
    def incr(cl, key):
        while True:
            with lock:
                attempts[0] += 1
            cl.transaction()
            v = int(cl.read(key))
            cl.write(key, str(v + 1).encode())
            if cl.commit():
                return
    per_tx = max(1, tx_n // tx_threads)
    def free(k):
        with Client() as cl:
            for i in range(per_tx):
                incr(cl, b"/bench/pyxs/tx/k%d" % k)
    def hot(k):
        with Client() as cl:
            for i in range(per_tx):
                incr(cl, b"/bench/pyxs/tx/counter")
    reads, writes, frees, hots, conflicts = [], [], [], [], 0
    for r in range(runs):
        reads.append(per * threads / timed_threads(threads, reader))
        writes.append(per * threads / timed_threads(threads, writer))
        frees.append(per_tx * tx_threads / timed_threads(tx_threads, free))
        attempts[0] = 0
        hots.append(per_tx * tx_threads / timed_threads(tx_threads, hot))
        conflicts += attempts[0] - per_tx * tx_threads
    if int(c.read(b"/bench/pyxs/tx/counter")) != per_tx * tx_threads * runs:
        raise SystemExit("pyxs conflicting increments lost updates")
    out["readsPerSec"] = statistics.median(reads)
    out["writesPerSec"] = statistics.median(writes)
    out["txPerSec"] = statistics.median(frees)
    out["txConflictPerSec"] = statistics.median(hots)
    out["conflicts"] = round(conflicts / runs)
print(json.dumps(out))
`;

interface PyxsParams {
  n: number;
  watchN: number;
  txN: number;
  threads: number;
  txThreads: number;
  runs: number;
}

function measurePyxs(socket: string, o: PyxsParams): Promise<Figures> {
  const args = [o.n, o.watchN, o.txN, o.threads, o.txThreads, o.runs].map(String);
  return new Promise((resolve, reject) => {
    const p = spawn('/usr/bin/python3', ['-c', PYXS_BENCH, ...args], {
      env: { ...process.env, XENSTORED_PATH: socket },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let out = '';
    let err = '';
    p.stdout.setEncoding('utf8').on('data', (d: string) => (out += d));
    p.stderr.setEncoding('utf8').on('data', (d: string) => (err += d));
    p.on('error', reject);
    p.on('close', (code) => {
      if (code !== 0) reject(new Error(`pyxs benchmark failed (exit ${code}): ${err.trim().split('\n').pop()}`));
      else resolve(JSON.parse(out) as Figures);
    });
  });
}

async function startServerProcess(main: string, socket: string): Promise<ChildProcess> {
  const p = spawn(process.execPath, [main, 'xenstored', '--socket', socket], { stdio: ['ignore', 'pipe', 'inherit'] });
  await new Promise<void>((resolve, reject) => {
    let out = '';
    p.stdout!.setEncoding('utf8').on('data', (d: string) => {
      out += d;
      if (out.includes('ready')) resolve();
    });
    p.on('close', (code) => reject(new Error(`xenstored exited (${code}) before it was ready`)));
  });
  return p;
}

function fmt(v: number, unit: string): string {
  if (!Number.isFinite(v)) return 'n/a';
  if (unit === 'ms') return v.toFixed(3);
  return Math.round(v).toLocaleString('en-US');
}

interface TableNotes {
  server: string;
  ours: string;
  pyxs: string;
  runs: number;
}

function renderTable(rows: XenstoreBenchRow[], conflicts: { ours: number; pyxs: number }, notes: TableNotes): string {
  const lines = [
    `xenstore: our client + embedded xenstored (${notes.server}) over a unix socket; reference: pyxs on the same server, same run`,
    `${'metric'.padEnd(34)}${'xenblkd'.padStart(12)}${'pyxs'.padStart(12)}${'ratio'.padStart(10)}`,
  ];
  for (const r of rows) {
    const ratio = r.higherIsBetter ? r.ours / r.pyxs : r.pyxs / r.ours;
    lines.push(
      `${`${r.metric} (${r.unit})`.padEnd(34)}${fmt(r.ours, r.unit).padStart(12)}${fmt(r.pyxs, r.unit).padStart(12)}${`${ratio.toFixed(1)}x`.padStart(10)}`,
    );
  }
  lines.push(`throughput: median of ${notes.runs} run(s); ratio: how many times better xenblkd is`);
  lines.push(`xenblkd: ${notes.ours}`);
  lines.push(`pyxs: ${notes.pyxs}`);
  lines.push(`conflicting transactions retried per run: xenblkd ${conflicts.ours}, pyxs ${conflicts.pyxs}`);
  return lines.join('\n');
}

export async function runXenstoreBench(opts: XenstoreBenchOptions = {}): Promise<XenstoreBenchReport> {
  const log = opts.log ?? (() => {});
  const q = opts.quick === true;
  const ourParams: OurParams = {
    n: q ? 5000 : 40000,
    watchN: q ? 300 : 2000,
    txN: q ? 500 : 8000,
    runs: q ? 1 : 3,
    window: opts.window ?? 256,
    txConcurrency: 64,
    hotContenders: 8,
  };
  const pyParams: PyxsParams = { n: q ? 800 : 4000, watchN: q ? 200 : 1000, txN: q ? 80 : 400, threads: 4, txThreads: 8, runs: q ? 1 : 3 };
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'xenblkd-xs-bench-'));
  const socket = path.join(dir, 'socket');
  let proc: ChildProcess | undefined;
  let server: XenstoredServer | undefined;
  try {
    const main = path.resolve(__dirname, '../cli/main.js');
    const inProcess = opts.inProcessServer === true || !fs.existsSync(main);
    if (inProcess) {
      server = await XenstoredServer.open();
      await server.listen(socket);
    } else {
      proc = await startServerProcess(main, socket);
    }
    log('xenstore bench: our client...');
    const ours = await measureOurs(socket, ourParams);
    log('xenstore bench: pyxs...');
    const py = await measurePyxs(socket, pyParams);
    const rows: XenstoreBenchRow[] = [
      { metric: 'pipelined reads', unit: '/s', ours: ours.readsPerSec, pyxs: py.readsPerSec, higherIsBetter: true },
      { metric: 'pipelined writes', unit: '/s', ours: ours.writesPerSec, pyxs: py.writesPerSec, higherIsBetter: true },
      { metric: 'watch event latency p50', unit: 'ms', ours: ours.watchP50Ms, pyxs: py.watchP50Ms, higherIsBetter: false },
      { metric: 'watch event latency p99', unit: 'ms', ours: ours.watchP99Ms, pyxs: py.watchP99Ms, higherIsBetter: false },
      { metric: 'tx commits, no conflicts', unit: '/s', ours: ours.txPerSec, pyxs: py.txPerSec, higherIsBetter: true },
      { metric: 'tx commits, one hot key', unit: '/s', ours: ours.txConflictPerSec, pyxs: py.txConflictPerSec, higherIsBetter: true },
    ];
    const conflicts = { ours: ours.conflicts, pyxs: py.conflicts };
    const throughput = rows.filter((r) => r.higherIsBetter);
    return {
      rows,
      conflicts,
      targets: {
        throughputAtLeast10x: throughput.every((r) => r.ours >= 10 * r.pyxs),
        watchP99UnderOneMs: ours.watchP99Ms < 1,
      },
      table: renderTable(rows, conflicts, {
        server: inProcess ? 'in-process' : 'separate process',
        ours:
          `${ourParams.window} requests, or ${ourParams.txConcurrency} transactions, in flight on one connection; ` +
          `${ourParams.hotContenders} connections on the hot key`,
        pyxs: `${pyParams.threads} threads sharing one connection; ${pyParams.txThreads} threads each with its own connection for transactions`,
        runs: ourParams.runs,
      }),
    };
  } finally {
    if (server) await server.close();
    if (proc && proc.exitCode === null) {
      const gone = new Promise((r) => proc!.on('close', r));
      proc.kill('SIGTERM');
      await gone;
    }
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

if (require.main === module) {
  const args = process.argv.slice(2);
  runXenstoreBench({
    quick: args.includes('--quick'),
    inProcessServer: args.includes('--in-process'),
    log: (l) => process.stderr.write(l + '\n'),
  }).then(
    (r) => {
      process.stdout.write(r.table + '\n');
      process.stdout.write(
        `targets: throughput >= 10x pyxs: ${r.targets.throughputAtLeast10x ? 'met' : 'NOT met'}; ` +
          `watch p99 < 1 ms: ${r.targets.watchP99UnderOneMs ? 'met' : 'NOT met'}\n`,
      );
    },
    (e: unknown) => {
      process.stderr.write(`xenstore bench failed: ${(e as Error).message}\n`);
      process.exitCode = 1;
    },
  );
}
