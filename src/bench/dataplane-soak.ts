// Soak: the verifying workload at queue depth 32 while the dataplane process is SIGKILLed at
// random moments and restarted, many times; then the whole disk is read back and checked.
//   node dist/bench/dataplane-soak.js [--kills 200] [--seed 1] [--data-path auto] [--image-mib 64] [--dir /var/tmp]
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import type { DataPathMode } from '../effects/dataplane-port';
import type { StandaloneConfig } from '../effects/dataplane/standalone';
import { openRawImage } from '../io/storage/raw';
import { DiskModel, diskInfoFor, GuestBlockQueue, Rng, runWorkload, type WorkloadReport } from '../sim/guest';
import { Hypervisor } from '../sim/hv/hypervisor';
import { DataplaneChild, defaultChildCommand, type ChildCommand } from './dataplane-child';

export interface SoakOptions {
  kills?: number;
  seed?: number;
  dataPath?: DataPathMode;
  imageBytes?: number;
  /** Default /var/tmp (disk). */
  dir?: string;
  print?: (line: string) => void;
  child?: ChildCommand;
}

export interface SoakResult {
  readonly kills: number;
  readonly workload: WorkloadReport;
  readonly verify: WorkloadReport;
  readonly republishedRestarts: number;
}

export async function runDataplaneSoak(o: SoakOptions = {}): Promise<SoakResult> {
  const kills = o.kills ?? 200;
  const print = o.print ?? ((l: string) => process.stdout.write(`${l}\n`));
  const imageBytes = o.imageBytes ?? 64 << 20;
  const dir = fs.mkdtempSync(path.join(o.dir ?? '/var/tmp', 'xenblkd-soak-'));
  const scratch = fs.mkdtempSync(path.join(os.tmpdir(), 'soak-'));
  const hv = new Hypervisor({ hostId: `soak-${process.pid}`, log: { info: () => {}, warn: () => {} } });
  let child: DataplaneChild | null = null;
  try {
    const socketPath = path.join(scratch, 'hv.sock');
    await hv.listen(socketPath);
    const guest = hv.createDomain(1, { memoryBytes: 256 << 20 });
    const imagePath = path.join(dir, 'image.raw');
    fs.writeFileSync(imagePath, '');
    fs.truncateSync(imagePath, imageBytes);
    const persistent = (o.dataPath ?? 'auto') !== 'copy';
    const queue = await GuestBlockQueue.create(guest, { backendDomid: 0, ringPageOrder: 1, protocol: 'x86_64-abi', persistent, indirectSegments: 256 });
    const config: StandaloneConfig = {
      hvSocket: socketPath, imagePath, stateDir: scratch, frontendDomid: 1, devid: 51712, backendType: 'vbd', params: queue.params,
      readOnly: false, direct: true, order: 'ring',
      features: { barrier: true, discard: true, persistent: true, maxIndirectSegments: 256, dataPath: o.dataPath ?? 'auto' },
    };
    const img = await openRawImage(imagePath);
    queue.start(diskInfoFor(img));
    await img.close();
    const cmd = o.child ?? defaultChildCommand();
    const sectors = imageBytes / 512;
    const model = new DiskModel(0, sectors);
    const stop = new AbortController();
    const work = runWorkload(
      queue,
      { pattern: 'random', mix: { read: 4, write: 4, flush: 0.3, barrier: 0.2, discard: 0.3 }, sizes: [512, 4096, 16384, 65536, 1 << 20], offsetInPage: true, queueDepth: 32, ops: 0, durationMs: 86_400_000, seed: o.seed ?? 1 },
      { model, signal: stop.signal },
    );
    const rng = new Rng(o.seed ?? 1);
    child = (await DataplaneChild.start(config, {}, cmd)).child;
    let republishedRestarts = 0;
    for (let k = 1; k <= kills; k++) {
      const before = queue.responses;
      await new Promise((r) => setTimeout(r, 10 + rng.below(300)));
      while (queue.responses === before) await new Promise((r) => setTimeout(r, 2));
      child.kill();
      await child.exited;
      await new Promise((r) => setTimeout(r, rng.below(50)));
      const next = await DataplaneChild.start(config, {}, cmd);
      if (next.ready.republished > 0) republishedRestarts++;
      child = next.child;
      if (k % 10 === 0 || k === kills) print(`soak: ${k}/${kills} kills, ${queue.responses} responses so far`);
    }
    stop.abort();
    const workload = await work;
    const verify = await runWorkload(queue, { pattern: 'sequential', mix: { read: 1 }, sizes: [1 << 20], queueDepth: 8, ops: imageBytes / (1 << 20), seed: 2 }, { model });
    await child.stop();
    child = null;
    await queue.close();
    print(
      `soak: ${kills} kills, ${workload.ops} requests, ${workload.errors} errors, ${workload.mismatches} mismatches, ${workload.lost} lost, ` +
        `${workload.duplicated} duplicated; read-back: ${verify.checkedSectors}/${sectors} sectors checked, ${verify.mismatches} mismatches; ` +
        `longest stall ${workload.longestStallMs.toFixed(0)} ms; ${republishedRestarts} restarts republished from the journal`,
    );
    return { kills, workload, verify, republishedRestarts };
  } finally {
    child?.kill();
    await hv.close();
    fs.rmSync(dir, { recursive: true, force: true });
    fs.rmSync(scratch, { recursive: true, force: true });
  }
}

if (require.main === module) {
  const args = process.argv.slice(2);
  const opt = (name: string): string | undefined => {
    const i = args.indexOf(name);
    return i >= 0 ? args[i + 1] : undefined;
  };
  runDataplaneSoak({
    kills: opt('--kills') ? Number(opt('--kills')) : undefined,
    seed: opt('--seed') ? Number(opt('--seed')) : undefined,
    dataPath: opt('--data-path') as DataPathMode | undefined,
    imageBytes: opt('--image-mib') ? Number(opt('--image-mib')) << 20 : undefined,
    dir: opt('--dir'),
  }).then(
    (r) => process.exit(r.workload.errors + r.workload.mismatches + r.workload.lost + r.workload.duplicated + r.verify.mismatches > 0 ? 1 : 0),
    (e: Error) => {
      process.stderr.write(`dataplane soak: ${e.message}\n`);
      process.exit(1);
    },
  );
}
