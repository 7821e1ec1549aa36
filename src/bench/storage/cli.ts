// `xenblkd bench storage` options and output (the command's dispatch is in src/cli/commands/bench.ts).
import { BENCH_DRIVERS, type BenchDriver } from './tools';
import { formatTable } from './table';
import type { StorageBenchOptions, StorageBenchResult } from './index';

export function parseStorageBenchArgs(
  args: { drivers?: string; seconds?: string },
  quick: boolean,
  userError: (message: string) => Error,
): StorageBenchOptions {
  let drivers: BenchDriver[] | undefined;
  if (args.drivers !== undefined) {
    drivers = [];
    for (const d of args.drivers.split(',')) {
      if (!(BENCH_DRIVERS as readonly string[]).includes(d)) throw userError(`unknown storage driver '${d}' (${BENCH_DRIVERS.join(', ')})`);
      if (!drivers.includes(d as BenchDriver)) drivers.push(d as BenchDriver);
    }
  }
  let seconds = quick ? 0.3 : undefined;
  if (args.seconds !== undefined) {
    seconds = Number(args.seconds);
    if (!/^[0-9]+(\.[0-9]+)?$/.test(args.seconds) || seconds < 0.1 || seconds > 600) throw userError(`--seconds must be a number from 0.1 to 600, got '${args.seconds}'`);
  }
  return {
    drivers,
    seconds,
    imageBytes: quick ? 32 << 20 : undefined,
    progress: (l) => process.stderr.write(`${l}\n`),
  };
}

/** Prints the table (or the JSON); a driver that could not be measured makes the run fail. */
export function printStorageBench(r: unknown, json: boolean, print: (l: string) => void): void {
  const result = r as StorageBenchResult;
  print(json ? JSON.stringify(result, null, 2) : formatTable(result));
  if (result.failures.length > 0) throw new Error(`not measured: ${result.failures.map((f) => `${f.driver} (${f.message})`).join('; ')}`);
}
