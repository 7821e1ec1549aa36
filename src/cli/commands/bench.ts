import * as path from 'node:path';
import { UserError, parseOptions, type Command } from '../command';

const usage = `usage: xenblkd bench [xenstore|xenprims|dataplane|engine|replay|all] [--quick]
       xenblkd bench storage [--drivers file,nbd,qcow2,rbd] [--seconds N] [--json] [--quick]

Runs the benchmarks; each prints its figures next to a reference measured in the same run on
this machine (pyxs for xenstore, memcpy and a pipe for the Xen primitives, fio for the
dataplane, ...). Nothing is asserted: compare the columns. Default: all.

  xenstore    our xenstore client against the embedded xenstored, pyxs as the reference
  xenprims    simulated grant copy, map/unmap and event channel round trips
  dataplane   the blkif dataplane against fio on the same files
  engine      devices connected per second (1, 100, 1000), recovery of 1000 devices after
              SIGKILL, persisted events per second, memory per idle device
  replay      recorded sessions replayed per second, next to JSON.parse and bare XState
  storage     each storage driver through the dataplane against the storage's own tool on the
              same image (fio, fio's nbd engine on qemu-nbd and qemu-storage-daemon, qemu-img
              bench, rbd bench on a single-node Ceph it starts); not part of all
  --drivers   storage: which drivers (default all four); --seconds: per figure (default 2)
  --json      storage: the result as JSON on stdout (progress on stderr)
  --quick     short runs (a smoke test of the benchmark itself, figures are rough)`;

type Print = (line: string) => void;

/** Options only some benchmarks read. */
interface BenchArgs {
  json: boolean;
  drivers?: string;
  seconds?: string;
}

/** A benchmark module of src/bench, loaded only when asked for (some are large). */
function load<T>(name: string): T | undefined {
  const file = path.join(__dirname, '..', '..', 'bench', name);
  try {
    return require(file) as T;
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'MODULE_NOT_FOUND' && (err as Error).message.includes(file)) return undefined;
    throw err;
  }
}

interface Table {
  table?: string;
}

const BENCHES: Record<string, { module: string; fn: string; run: (fn: (opts: object) => Promise<unknown>, quick: boolean, print: Print, args: BenchArgs) => Promise<void>; notInAll?: boolean }> = {
  xenstore: {
    module: 'xenstore',
    fn: 'runXenstoreBench',
    async run(fn, quick, print) {
      const r = (await fn({ quick, log: (l: string) => process.stderr.write(`${l}\n`) })) as Table & { targets?: Record<string, boolean> };
      if (r.table) print(r.table);
      if (r.targets) print(`targets: ${Object.entries(r.targets).map(([k, v]) => `${k} ${v ? 'met' : 'NOT met'}`).join('; ')}`);
    },
  },
  xenprims: {
    module: 'xenprims',
    fn: 'runXenprimsBench',
    async run(fn, quick, print) {
      await fn(quick ? { durationMs: 150, roundTrips: 300, print } : { print });
    },
  },
  dataplane: {
    module: 'dataplane',
    fn: 'runDataplaneBench',
    async run(fn, quick, print) {
      await fn(quick ? { durationMs: 300, imageBytes: 32 << 20, locations: ['tmpfs'], print } : { print });
    },
  },
  engine: {
    module: 'engine',
    fn: 'runEngineBench',
    async run(fn, quick, print) {
      await fn(quick ? { counts: [1, 10], print } : { print });
    },
  },
  storage: {
    module: 'storage',
    fn: 'runStorageBench',
    notInAll: true,
    async run(fn, quick, print, args) {
      const { parseStorageBenchArgs, printStorageBench } = require('../../bench/storage/cli') as typeof import('../../bench/storage/cli');
      const opts = parseStorageBenchArgs(args, quick, (m) => new UserError(m));
      printStorageBench(await fn(opts), args.json, print);
    },
  },
  replay: {
    module: 'replay',
    fn: 'runReplayBench',
    async run(fn, quick, print) {
      await fn(quick ? { devices: 2, cycles: 10, print } : { print });
    },
  },
};

export const command: Command = {
  summary: 'run the benchmarks (xenstore, xenprims, dataplane, engine, replay)',
  usage,
  async run(argv) {
    const { values, positionals } = parseOptions(argv, { quick: { type: 'boolean' }, json: { type: 'boolean' }, drivers: { type: 'string' }, seconds: { type: 'string' } }, true);
    if (positionals.length > 1) throw new UserError(`bench takes one benchmark name, got '${positionals.join(' ')}'`);
    const which = positionals[0] ?? 'all';
    if (which !== 'all' && !(which in BENCHES)) throw new UserError(`unknown benchmark '${which}' (xenstore, xenprims, dataplane, engine, replay, storage or all)`);
    const names = which === 'all' ? Object.keys(BENCHES).filter((n) => !BENCHES[n].notInAll) : [which];
    const args: BenchArgs = { json: values.json === true, drivers: values.drivers, seconds: values.seconds };
    const print: Print = (l) => process.stdout.write(`${l}\n`);
    let failed = 0;
    for (const name of names) {
      const b = BENCHES[name];
      const mod = load<Record<string, unknown>>(b.module);
      const fn = mod?.[b.fn];
      if (typeof fn !== 'function') {
        if (which !== 'all') throw new UserError(`the ${name} benchmark is not part of this build`);
        print(`== ${name}: not part of this build, skipped`);
        continue;
      }
      if (!args.json) print(`== ${name}`);
      try {
        await b.run(fn as (opts: object) => Promise<unknown>, values.quick === true, print, args);
      } catch (err) {
        if (err instanceof UserError || (err as Error).name === 'MissingToolError') throw new UserError((err as Error).message);
        failed++;
        process.stderr.write(`xenblkd: the ${name} benchmark failed: ${(err as Error).message.split('\n')[0]}\n`);
      }
    }
    return failed ? 1 : 0;
  },
};
