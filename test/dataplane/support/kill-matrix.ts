// One cell of the crash matrix: a guest runs a verifying workload while its dataplane (the
// production standalone child and journal) is killed at one kill point, at hit 1, then at hit 2 of
// the restarted process, ... hit K; a last process serves the rest. Each restart reports how many
// responses it re-published from the journal, which tells whether the kill needed a republish.
import type { CrashPoint } from '../../../src/effects/dataplane/crash-points';
import type { StandaloneConfig } from '../../../src/effects/dataplane/standalone';
import type { BlkifProtocol } from '../../../src/machines/block/connect-params';
import { DiskModel, runWorkload, type WorkloadReport, type WorkloadSpecInput } from '../../../src/sim/guest';
import { DataplaneChild, type Child } from './child';
import { guestQueue } from './crash-rig';
import type { Rig } from './rig';

export type DataPath = 'copy' | 'map' | 'persistent';

export interface KillCell {
  point: CrashPoint;
  /** For 'slot': which slot of the batch. */
  slot?: number;
  dataPath: DataPath;
  protocol: BlkifProtocol;
  /** Default: the rig's image file. */
  imagePath?: string;
}

export interface CellResult {
  /** Per kill (hit 1..K): responses the next process re-published. */
  republished: number[];
  report: WorkloadReport;
  verify: WorkloadReport;
}

export const MATRIX_MIX: WorkloadSpecInput = {
  pattern: 'random',
  mix: { read: 4, write: 4, flush: 0.3, barrier: 0.2, discard: 0.3 },
  // Up to 16 pages: direct and indirect requests (more than 11 segments).
  sizes: [512, 4096, 8192, 65536],
  offsetInPage: true,
  queueDepth: 32,
};

export function specOf(c: KillCell, hit: number): string {
  return c.point === 'slot' ? `slot/${c.slot}:${hit}` : `${c.point}:${hit}`;
}

export function cellName(c: KillCell): string {
  return `${c.point === 'slot' ? `slot/${c.slot}` : c.point} ${c.dataPath} ${c.protocol}`;
}

/** Kills the dataplane at hits 1..hits of the cell's point; returns what each restart re-published. */
export async function runCell(rig: Rig, sectors: number, c: KillCell, hits: number, seed: number, children: Child[]): Promise<CellResult> {
  const { queue, config } = await guestQueue(rig, { order: 0, protocol: c.protocol, persistent: c.dataPath === 'persistent', dataPath: c.dataPath, imagePath: c.imagePath });
  const model = new DiskModel(0, sectors);
  const stop = new AbortController();
  const work = runWorkload(queue, { ...MATRIX_MIX, ops: 0, durationMs: 600_000, seed }, { model, signal: stop.signal });
  const republished: number[] = [];
  try {
    for (let hit = 1; hit <= hits + 1; hit++) {
      const armed = hit <= hits;
      const { child, ready } = DataplaneChild.launch(config, armed ? { XENBLKD_CRASH_AT: specOf(c, hit) } : {});
      children.push(child);
      const info = await ready;
      if (hit > 1) {
        // The previous process was killed: this one found what it left.
        if (info === null) throw new Error(`${cellName(c)}: the process after kill ${hit - 1} died before it re-published (${child.stderr.join(' ')})`);
        republished.push(info.republished);
      }
      if (!armed) {
        stop.abort();
        const report = await work;
        const verify = await verifyAll(queue, config, model, sectors);
        await child.stop();
        await queue.close();
        return { republished, report, verify };
      }
      const exit = await within(child.exited, 20_000, () => `${cellName(c)}: hit ${hit} was never reached (${queue.responses} responses)`);
      if (exit.signal !== 'SIGKILL') throw new Error(`${cellName(c)} hit ${hit}: exited ${JSON.stringify(exit)} ${child.stderr.join(' ')}`);
    }
    throw new Error('unreachable');
  } catch (e) {
    stop.abort();
    throw e;
  }
}

/** Reads the whole disk back and checks it against the model. */
export async function verifyAll(queue: Parameters<typeof runWorkload>[0], _config: StandaloneConfig, model: DiskModel, sectors: number): Promise<WorkloadReport> {
  return runWorkload(queue, { pattern: 'sequential', mix: { read: 1 }, sizes: [65536], queueDepth: 16, ops: sectors / 128, seed: 7 }, { model });
}

async function within<T>(p: Promise<T>, ms: number, why: () => string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  try {
    return await Promise.race([p, new Promise<never>((_, reject) => (timer = setTimeout(() => reject(new Error(why())), ms)))]);
  } finally {
    clearTimeout(timer);
  }
}
