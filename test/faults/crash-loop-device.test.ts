// Kills on a block-device image: a loop device over a file. The image layer's block-device parts
// (size probe, exclusive open, discard and secure discard by ioctl) against the real kernel, then
// the production dataplane (standalone child) killed at kill points and at random moments while
// the guest verifies its disk. The loop device is detached in cleanup, whatever happened.
import { execFileSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { openRawImage } from '../../src/io/storage/raw';
import { DiskModel, runWorkload } from '../../src/sim/guest';
import { Rng } from '../../src/sim/guest/rng';
import { DataplaneChild, type Child } from '../dataplane/support/child';
import { guestQueue } from '../dataplane/support/crash-rig';
import { MATRIX_MIX, runCell, verifyAll } from '../dataplane/support/kill-matrix';
import { startRig, type Rig } from '../dataplane/support/rig';
import { expectClean } from '../dataplane/support/expect-clean';

jest.setTimeout(180_000);

const BYTES = 4 << 20;
const SECTORS = BYTES / 512;

describe('dataplane on a loop device', () => {
  let rig: Rig;
  let device: string | undefined;
  let backing: string;
  const children: Child[] = [];
  beforeEach(async () => {
    rig = await startRig({ imageBytes: 4096, guestMemoryBytes: 32 << 20 });
    backing = path.join(rig.dir, 'loop-backing.img');
    fs.writeFileSync(backing, '');
    fs.truncateSync(backing, BYTES);
    device = execFileSync('losetup', ['--find', '--show', backing], { encoding: 'utf8' }).trim();
  });
  afterEach(async () => {
    try {
      for (const c of children.splice(0)) {
        c.kill();
        await c.exited;
      }
    } finally {
      if (device !== undefined) execFileSync('losetup', ['-d', device]);
      device = undefined;
      await rig.close();
    }
  });

  it('probes its size, claims it exclusively, discards, and drops secure discard the loop driver refuses', async () => {
    // Buffered: the test's buffers are not aligned for O_DIRECT.
    const image = await openRawImage(device!, { secureDiscard: true, direct: false });
    try {
      expect({ kind: image.kind, size: image.sizeBytes, discard: image.discardSupport }).toEqual({
        kind: 'block-device',
        size: BYTES,
        discard: { granularity: 4096, alignment: 0, secure: true },
      });
      // O_EXCL: a second writer is refused while the first holds it (as blkback claims its device).
      await expect(openRawImage(device!)).rejects.toMatchObject({ code: 'EBUSY' });
      // Data, then a discard: the loop driver punches the backing file, which reads back zeros.
      const data = Buffer.alloc(65536, 0x5a);
      await new Promise<void>((resolve, reject) => image.write(data, 0, data.length, 65536, (e) => (e ? reject(e) : resolve())));
      await new Promise<void>((resolve, reject) => image.flush((e) => (e ? reject(e) : resolve())));
      expect(fs.readFileSync(backing).subarray(65536, 131072).every((b) => b === 0x5a)).toBe(true);
      await new Promise<void>((resolve, reject) => image.discard(65536, 65536, false, (e) => (e ? reject(e) : resolve())));
      const back = Buffer.alloc(65536, 1);
      await new Promise<void>((resolve, reject) => image.read(back, 0, back.length, 65536, (e) => (e ? reject(e) : resolve())));
      expect(back.every((b) => b === 0)).toBe(true);
      // BLKSECDISCARD: loop has no secure erase; refused once, then no longer offered.
      const secure = await new Promise<NodeJS.ErrnoException | null>((resolve) => image.discard(0, 4096, true, resolve));
      expect(secure?.code).toBe('EOPNOTSUPP');
      expect(image.discardSupport).toEqual({ granularity: 4096, alignment: 0, secure: false });
    } finally {
      await image.close();
    }
    // Released with the descriptor.
    const again = await openRawImage(device!);
    await again.close();
  });

  it.each([
    ['torn-journal', false],
    ['after-journal', true],
    ['slot', true],
    ['after-publish', false],
  ] as const)('answers exactly once across kills at %s, hits 1..3, persistent grants', async (point, republish) => {
    const r = await runCell(rig, SECTORS, { point, slot: point === 'slot' ? 2 : undefined, dataPath: 'persistent', protocol: 'x86_64-abi', imagePath: device! }, 3, 77, children);
    expectClean(r.report);
    expectClean(r.verify);
    expect(r.verify.checkedSectors).toBe(SECTORS);
    expect(r.republished.map((n) => n > 0)).toEqual([republish, republish, republish]);
  });

  it('answers exactly once across 10 kills at random moments (grant copy, x86_32)', async () => {
    const { queue, config } = await guestQueue(rig, { order: 1, protocol: 'x86_32-abi', dataPath: 'copy', imagePath: device! });
    const model = new DiskModel(0, SECTORS);
    const stop = new AbortController();
    const work = runWorkload(queue, { ...MATRIX_MIX, ops: 0, durationMs: 600_000, seed: 3 }, { model, signal: stop.signal });
    const rng = new Rng(3);
    const env = { XENBLKD_STALL_PUBLICATION_MS: '10' };
    let current = (await DataplaneChild.start(config, env)).child;
    children.push(current);
    let inside = 0;
    for (let k = 0; k < 10; k++) {
      const before = queue.responses;
      await new Promise((r) => setTimeout(r, 20 + rng.below(150)));
      while (queue.responses === before) await new Promise((r) => setTimeout(r, 5));
      current.kill();
      await current.exited;
      const next = await DataplaneChild.start(config, env);
      children.push(next.child);
      if (next.ready.republished > 0) inside++;
      current = next.child;
    }
    stop.abort();
    expectClean(await work);
    const back = await verifyAll(queue, config, model, SECTORS);
    expectClean(back);
    expect(back.checkedSectors).toBe(SECTORS);
    expect(inside).toBeGreaterThan(0);
    await current.stop();
    await queue.close();
  });
});
