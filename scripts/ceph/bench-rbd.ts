// Throughput of the rbd driver (src/io/storage/rbd) on an image, the way the dataplane uses it:
// DMA buffers, callbacks, QD 32. bench-rbd.sh runs it next to `rbd bench` on the same image.
// Env: CEPH_CONF, POOL, IMAGE, QD (32), OPS (20000 4 KiB ops).
import { allocDma } from '../../src/io/dma';
import { openRbdImage } from '../../src/io/storage/rbd';

const QD = Number(process.env.QD ?? 32);
const OPS = Number(process.env.OPS ?? 20000);

function run(n: number, op: (k: number, slot: number, cb: (err: Error | null) => void) => void): Promise<number> {
  const t0 = process.hrtime.bigint();
  return new Promise((resolve, reject) => {
    let next = 0;
    let done = 0;
    const issue = (slot: number): void => {
      if (next >= n) return;
      const k = next++;
      op(k, slot, (err) => {
        if (err) return reject(err);
        if (++done === n) resolve(Number(process.hrtime.bigint() - t0) / 1e9);
        else issue(slot);
      });
    };
    for (let s = 0; s < Math.min(QD, n); s++) issue(s);
  });
}

async function main(): Promise<void> {
  const img = await openRbdImage({
    driver: 'rbd', pool: process.env.POOL ?? 'rbd', namespace: null, image: process.env.IMAGE ?? 'img',
    snap: null, id: null, conf: process.env.CEPH_CONF ?? null, options: {},
  });
  const size = img.sizeBytes;
  const buf = allocDma(QD * 65536);
  for (let i = 0; i < buf.view.length; i++) buf.view[i] = (i * 31) & 0xff;
  const rand4k = (): number => Math.floor(Math.random() * (size / 4096)) * 4096;
  const line = (what: string, n: number, bs: number, s: number): void =>
    console.log(`xenblkd rbd ${what.padEnd(14)} QD${QD}: ${(n / s).toFixed(0).padStart(6)} IOPS ${((n * bs) / s / 1048576).toFixed(1).padStart(7)} MiB/s`);
  let s = await run(OPS, (_k, slot, cb) => img.write(buf.view, slot * 65536, 4096, rand4k(), cb));
  line('write 4K rand', OPS, 4096, s);
  s = await run(OPS, (_k, slot, cb) => img.read(buf.view, slot * 65536, 4096, rand4k(), cb));
  line('read 4K rand', OPS, 4096, s);
  const seq = size / 65536;
  s = await run(seq, (k, slot, cb) => img.write(buf.view, slot * 65536, 65536, k * 65536, cb));
  line('write 64K seq', seq, 65536, s);
  s = await run(seq, (k, slot, cb) => img.read(buf.view, slot * 65536, 65536, k * 65536, cb));
  line('read 64K seq', seq, 65536, s);
  await img.close();
  buf.free();
}

main().catch((e: Error) => {
  console.error(e.message);
  process.exit(1);
});
