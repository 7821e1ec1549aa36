// The exclusive lock after a SIGKILL. A killed client keeps the image's lock until its watch
// times out (Ceph's default 30 s, kept here so the test can fail). A new opener with the same
// ownerFile knows the holder is its own dead previous incarnation and breaks the lock at once;
// an opener without it never breaks anyone's lock and waits for librbd's hand-over.
import { spawn, type ChildProcess } from 'node:child_process';
import * as path from 'node:path';
import { buildSync } from 'esbuild';
import { allocDma, type DmaRegion } from '../../../src/io/dma';
import { openRbdImage, type RbdImage } from '../../../src/io/storage/rbd';
import { startCephCluster, stopCephCluster, type CephCluster } from '../../support/ceph-cluster';
import { tempDir } from '../../support/temp';
import { blockGeneration, fillBlock, read, runQueued } from './support/io';

jest.setTimeout(90_000);

const BS = 4096;
const BLOCKS = 512;
let cluster: CephCluster;
let dir: string;
let writerJs: string;
const children: ChildProcess[] = [];
const opened: RbdImage[] = [];
const regions: DmaRegion[] = [];

beforeAll(async () => {
  dir = tempDir('xenblkd-rbd-lock-');
  writerJs = path.join(dir, 'rbd-writer.js');
  buildSync({
    entryPoints: [path.join(__dirname, 'support/rbd-writer.ts')],
    bundle: true,
    platform: 'node',
    target: 'node20',
    external: ['koffi'],
    outfile: writerJs,
    logLevel: 'error',
  });
  cluster = await startCephCluster(); // Ceph's default watch timeout (30 s)
  await cluster.rbd('create', '--size', '16M', `${cluster.pool}/mine`);
  await cluster.rbd('create', '--size', '16M', `${cluster.pool}/theirs`);
}, 90_000);

afterAll(async () => {
  for (const c of children) if (c.exitCode === null && c.signalCode === null) c.kill('SIGKILL');
  for (const img of opened.splice(0)) await img.close().catch(() => undefined);
  for (const r of regions.splice(0)) r.free();
  await stopCephCluster(cluster);
}, 60_000);

/** Starts a writer on image and resolves once it finished `passes` full passes. */
function startWriter(image: string, ownerFile: string, passes: number): Promise<{ child: ChildProcess; address: string; lastPass: () => number }> {
  const child = spawn(process.execPath, [writerJs], {
    env: { ...process.env, NODE_PATH: path.resolve(__dirname, '../../../node_modules'), RBD_WRITER: JSON.stringify({ conf: cluster.conf, pool: cluster.pool, image, ownerFile, blocks: BLOCKS }) },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  children.push(child);
  let address = '';
  let last = 0;
  let stderr = '';
  child.stderr!.on('data', (d) => (stderr += String(d)));
  return new Promise((resolve, reject) => {
    let buffered = '';
    child.stdout!.on('data', (d) => {
      buffered += String(d);
      let nl;
      while ((nl = buffered.indexOf('\n')) >= 0) {
        const line = buffered.slice(0, nl);
        buffered = buffered.slice(nl + 1);
        if (line.startsWith('open ')) address = line.slice(5);
        if (line.startsWith('pass ')) last = Number(line.slice(5));
        if (last === passes) resolve({ child, address, lastPass: () => last });
      }
    });
    child.on('exit', (code, sig) => {
      if (sig !== 'SIGKILL') reject(new Error(`writer exited (${code ?? sig}): ${stderr.trim()}`));
    });
  });
}

function killed(child: ChildProcess): Promise<void> {
  return new Promise((resolve) => {
    child.once('exit', () => resolve());
    child.kill('SIGKILL');
  });
}

/** Every block holds one whole generation, at least `atLeast` (the last pass it finished). */
async function verifyWriterData(img: RbdImage, atLeast: number): Promise<void> {
  const buf = allocDma(BLOCKS * BS);
  regions.push(buf);
  await read(img, buf.view, 0, BLOCKS * BS, 0);
  const gens = new Set<number>();
  for (let k = 0; k < BLOCKS; k++) gens.add(blockGeneration(buf.view, k * BS, BS, k * BS));
  for (const g of gens) expect(g).toBeGreaterThanOrEqual(atLeast);
}

/** Resolves with the ms the first write took; rejects on error. */
function timedWrite(img: RbdImage, buf: Uint8Array, pos: number): { done: Promise<number>; finished: () => boolean } {
  const t0 = Date.now();
  let finished = false;
  const done = new Promise<number>((resolve, reject) =>
    img.write(buf, 0, BS, pos, (err) => {
      finished = true;
      if (err) reject(err);
      else resolve(Date.now() - t0);
    }),
  );
  return { done, finished: () => finished };
}

test('after a SIGKILL the same ownerFile takes the lock over at once; another opener waits for the hand-over', async () => {
  const mineOwner = path.join(dir, 'mine.owner');
  const theirsOwner = path.join(dir, 'theirs.owner');
  const [mine, theirs] = await Promise.all([startWriter('mine', mineOwner, 2), startWriter('theirs', theirsOwner, 2)]);
  // Killed with up to 32 writes in flight each, holding both locks.
  await Promise.all([killed(mine.child), killed(theirs.child)]);
  const killedAt = Date.now();
  const minePasses = mine.lastPass();
  const theirsPasses = theirs.lastPass();
  expect(minePasses).toBeGreaterThanOrEqual(2);

  const infos: string[] = [];
  const log = { info: (_o: object, m: string) => infos.push(m), warn: () => undefined, error: () => undefined };
  const heir = await openRbdImage(
    { driver: 'rbd', pool: cluster.pool, namespace: null, image: 'mine', snap: null, id: null, conf: cluster.conf, options: {} },
    { ownerFile: mineOwner, log },
  );
  opened.push(heir);
  expect(heir.takeover).toBe('broke-dead-owner');
  expect(heir.lockOwnerAtOpen).toBe(mine.address);
  expect(infos.some((m) => /killed previous client broken/.test(m))).toBe(true);

  // Another opener (no ownerFile: say another host) finds a lock it must not break.
  const other = await openRbdImage(
    { driver: 'rbd', pool: cluster.pool, namespace: null, image: 'theirs', snap: null, id: null, conf: cluster.conf, options: {} },
    {},
  );
  opened.push(other);
  expect(other.takeover).toBe('cooperative');
  expect(other.lockOwnerAtOpen).toBe(theirs.address);

  const wbuf = allocDma(2 * BS);
  regions.push(wbuf);
  fillBlock(wbuf.view, 0, BS, 0, 1000);
  fillBlock(wbuf.view, BS, BS, 0, 1000);
  const heirWrite = timedWrite(heir, wbuf.view, 0);
  const otherWrite = timedWrite(other, wbuf.view.subarray(BS), 0);
  const firstWriteMs = await heirWrite.done;
  process.stdout.write(`first write after the take-over: ${firstWriteMs} ms\n`);
  expect(firstWriteMs).toBeLessThan(3000);
  // Its data: every block of the dead writer whole, none older than its last finished pass.
  await verifyWriterData(heir, minePasses);
  const all = allocDma(BLOCKS * BS);
  regions.push(all);
  const b = allocDma(BLOCKS * BS);
  regions.push(b);
  await runQueued(BLOCKS, 32, (k, _s, cb) => {
    fillBlock(all.view, k * BS, BS, k * BS, 1001);
    heir.write(all.view, k * BS, BS, k * BS, cb);
  });
  await read(heir, b.view, 0, BLOCKS * BS, 0);
  for (let k = 0; k < BLOCKS; k++) expect(blockGeneration(b.view, k * BS, BS, k * BS)).toBe(1001);

  // The dead writer of 'theirs' was blocklisted by nobody: the other opener still waits.
  expect(otherWrite.finished()).toBe(false);
  const blocklist = await cluster.ceph('osd', 'blocklist', 'ls');
  expect(blocklist).toContain(mine.address);
  expect(blocklist).not.toContain(theirs.address);
  // ...until the dead client's watch times out and librbd hands the lock over.
  await otherWrite.done;
  const waited = Date.now() - killedAt;
  expect(waited).toBeGreaterThan(15_000);
  await verifyWriterData(other, theirsPasses);
  await other.close();
  await heir.close();
  opened.splice(0);
}, 80_000);
