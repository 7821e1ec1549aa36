// The publication journal under faults of its state folder, against the production dataplane
// (the standalone child): the file truncated or deleted under a running ring, its writes failing
// on a full file system, a full folder when the dataplane starts. Never a SIGBUS: the ring keeps
// serving, the fault is logged and counted, the file is repaired once it can be, and a crash after
// the repair is still recovered from the journal.
import { execFileSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { journalBytes, journalFileName } from '../../src/effects/dataplane/journal';
import { DiskModel, runWorkload } from '../../src/sim/guest';
import { DataplaneChild, type Child } from '../dataplane/support/child';
import { guestQueue } from '../dataplane/support/crash-rig';
import { MATRIX_MIX, verifyAll } from '../dataplane/support/kill-matrix';
import { DEVID, startRig, type Rig } from '../dataplane/support/rig';
import { expectClean } from '../dataplane/support/expect-clean';

jest.setTimeout(120_000);

const IMAGE_BYTES = 2 << 20;
const SECTORS = IMAGE_BYTES / 512;

async function until(what: string, cond: () => boolean | Promise<boolean>, ms = 10_000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!(await cond())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

/** A tmpfs of `bytes` mounted on a fresh folder; umounted by the returned function. */
function mountTmpfs(dir: string, bytes: number): () => void {
  fs.mkdirSync(dir, { recursive: true });
  execFileSync('mount', ['-t', 'tmpfs', '-o', `size=${bytes}`, 'tmpfs', dir]);
  return () => execFileSync('umount', ['-l', dir]);
}

/** Fills the file system holding `dir` with one file; returns its path. */
function fill(dir: string): string {
  const filler = path.join(dir, 'filler');
  const fd = fs.openSync(filler, 'w');
  const chunk = Buffer.alloc(4096, 1);
  try {
    for (;;) fs.writeSync(fd, chunk);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== 'ENOSPC') throw e;
  } finally {
    fs.closeSync(fd);
  }
  return filler;
}

async function journalFailures(child: Child): Promise<number> {
  return (await child.stats()).journalFailures as number;
}

describe('publication journal faults', () => {
  let rig: Rig;
  const children: Child[] = [];
  const cleanups: (() => void)[] = [];
  beforeEach(async () => {
    rig = await startRig({ imageBytes: IMAGE_BYTES, guestMemoryBytes: 32 << 20 });
  });
  afterEach(async () => {
    for (const c of children.splice(0)) {
      c.kill();
      await c.exited;
    }
    for (const f of cleanups.splice(0).reverse()) f();
    await rig.close();
  });

  it('a journal truncated, then deleted, under a running ring: it keeps serving, counts, repairs, and a crash after the repair is recovered from it', async () => {
    const { queue, config } = await guestQueue(rig, { order: 0, dataPath: 'copy' });
    const file = path.join(config.stateDir, journalFileName('vbd', config.frontendDomid, DEVID));
    const model = new DiskModel(0, SECTORS);
    const stop = new AbortController();
    const work = runWorkload(queue, { ...MATRIX_MIX, ops: 0, durationMs: 600_000, seed: 5 }, { model, signal: stop.signal });
    // Slowed down (a 1 ms stall in each publication), it dies after its journal record of its
    // 2000th batch, seconds after the repairs below: the next process replays the re-created file.
    const first = await DataplaneChild.start(config, { XENBLKD_STALL_PUBLICATION_MS: '1', XENBLKD_CRASH_AT: 'after-journal:2000' });
    children.push(first.child);
    await until('a journal of full size', () => fs.existsSync(file) && fs.statSync(file).size === journalBytes(32));

    fs.truncateSync(file, 0);
    let answered = queue.responses;
    await until('the truncated journal to be extended again', () => fs.statSync(file).size === journalBytes(32));
    expect(await journalFailures(first.child)).toBe(1);
    await until('responses after the truncation', () => queue.responses > answered + 10);

    const inode = fs.statSync(file).ino;
    fs.rmSync(file);
    answered = queue.responses;
    await until('the deleted journal to be re-created', () => fs.existsSync(file) && fs.statSync(file).ino !== inode);
    expect(await journalFailures(first.child)).toBe(2);
    await until('responses after the deletion', () => queue.responses > answered + 10);
    expect(first.child.stderr.filter((l) => /publication journal .* (extended|recreated): publication is journaled again/.test(l))).toHaveLength(2);

    expect(first.child.alive).toBe(true);
    expect((await first.child.exited).signal).toBe('SIGKILL');
    const second = await DataplaneChild.start(config);
    children.push(second.child);
    expect(second.ready.republished).toBeGreaterThan(0);
    stop.abort();
    expectClean(await work);
    const back = await verifyAll(queue, config, model, SECTORS);
    expectClean(back);
    expect(back.checkedSectors).toBe(SECTORS);
    expect(await journalFailures(second.child)).toBe(0);
    await second.child.stop();
    await queue.close();
  });

  it('journal writes failing on a full file system: the ring keeps serving, one log line, counted; repaired when space returns', async () => {
    const stateDir = path.join(rig.dir, 'small-state');
    cleanups.push(mountTmpfs(stateDir, 256 << 10));
    const { queue, config } = await guestQueue(rig, { order: 0, dataPath: 'copy' });
    const cfg = { ...config, stateDir };
    const file = path.join(stateDir, journalFileName('vbd', cfg.frontendDomid, DEVID));
    const model = new DiskModel(0, SECTORS);
    const stop = new AbortController();
    const work = runWorkload(queue, { ...MATRIX_MIX, ops: 0, durationMs: 600_000, seed: 6 }, { model, signal: stop.signal });
    const { child } = await DataplaneChild.start(cfg);
    children.push(child);
    // Its blocks given back and the file system full: the next record's write cannot get a page.
    fs.truncateSync(file, 0);
    const filler = fill(stateDir);
    const filledAt = Date.now();
    await until('failed journal writes', async () => (await journalFailures(child)) > 5);
    const answered = queue.responses;
    await until('responses while the journal cannot be written', () => queue.responses > answered + 50);
    const failing = child.stderr.filter((l) => l.includes('responses are published without their journal record'));
    // Rate-limited: one line per 10 s at most.
    expect(failing.length).toBeGreaterThanOrEqual(1);
    expect(failing.length).toBeLessThanOrEqual(1 + Math.floor((Date.now() - filledAt) / 10_000));
    expect(failing[0]).toMatch(/ENOSPC/);
    expect(child.alive).toBe(true);

    fs.rmSync(filler);
    await until('the journal repaired', () => child.stderr.some((l) => /publication journal .* (extended|rewritten): publication is journaled again/.test(l)));
    await until('a journal of full size', () => fs.statSync(file).size === journalBytes(32));
    const after = await journalFailures(child);
    const more = queue.responses;
    await until('responses after the repair', () => queue.responses > more + 50);
    expect(await journalFailures(child)).toBe(after);
    stop.abort();
    expectClean(await work);
    expectClean(await verifyAll(queue, cfg, model, SECTORS));
    await child.stop();
    await queue.close();
  });

  it('a full state folder when the dataplane starts: a one-line error and an exit, no SIGBUS; it serves once space returns', async () => {
    const stateDir = path.join(rig.dir, 'full-state');
    cleanups.push(mountTmpfs(stateDir, 64 << 10));
    const filler = fill(stateDir);
    const { queue, config } = await guestQueue(rig, { order: 0, dataPath: 'copy' });
    const cfg = { ...config, stateDir };
    const model = new DiskModel(0, SECTORS);
    const work = runWorkload(queue, { ...MATRIX_MIX, ops: 300, seed: 7 }, { model });
    const { child, ready } = DataplaneChild.launch(cfg);
    children.push(child);
    expect(await ready).toBeNull();
    expect(await child.exited).toEqual({ code: 1, signal: null });
    expect(child.stderr.filter((l) => l.startsWith('dataplane:'))).toEqual([expect.stringMatching(/^dataplane: publication journal .*\.pubjournal: (open|allocate): ENOSPC$/)]);

    fs.rmSync(filler);
    const again = await DataplaneChild.start(cfg);
    children.push(again.child);
    expectClean(await work);
    expectClean(await verifyAll(queue, cfg, model, SECTORS));
    await again.child.stop();
    await queue.close();
  });
});
