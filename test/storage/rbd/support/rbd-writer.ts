// A child process for the lock take-over test: opens an RBD image with an ownerFile and
// rewrites a region block by block, QD 32, pass after pass, printing "pass N" after each full
// pass, until it is SIGKILLed. Bundled by the test with esbuild (koffi stays external).
import { allocDma } from '../../../../src/io/dma';
import { openRbdImage } from '../../../../src/io/storage/rbd';
import { fillBlock, runQueued } from './io';

const cfg = JSON.parse(process.env.RBD_WRITER ?? '{}') as { conf: string; pool: string; image: string; ownerFile: string; blocks: number };
const BS = 4096;
const QD = 32;

async function main(): Promise<void> {
  const img = await openRbdImage(
    { driver: 'rbd', pool: cfg.pool, namespace: null, image: cfg.image, snap: null, id: null, conf: cfg.conf, options: {} },
    { ownerFile: cfg.ownerFile },
  );
  process.stdout.write(`open ${img.clientAddress}\n`);
  const buf = allocDma(QD * BS);
  for (let pass = 1; ; pass++) {
    await runQueued(cfg.blocks, QD, (k, slot, cb) => {
      fillBlock(buf.view, slot * BS, BS, k * BS, pass);
      img.write(buf.view, slot * BS, BS, k * BS, cb);
    });
    process.stdout.write(`pass ${pass}\n`);
  }
}

main().catch((e: Error) => {
  process.stderr.write(`${e.message}\n`);
  process.exit(1);
});
