// The LevelDB event store itself on a state folder that fails: full to the last byte, read-only,
// and with damaged files. Real LevelDB, real tmpfs, real bind mounts.
import * as fs from 'node:fs';
import * as path from 'node:path';
import { assign, setup } from 'xstate';
import { StoreError } from '../../src/store/events';
import { LevelEventStore } from '../../src/store/level-store';
import { PersistentActor } from '../../src/store/persistent-actor';
import { tempDir } from '../support/temp';
import { bindReadOnly, damage, fillToLastByte, levelFile, mountTmpfs, type DamageKind, type LevelFileKind } from './store-fs';

const RETRY = { firstMs: 20, maxMs: 200 };

const counter = setup({ types: { context: {} as { n: number } } }).createMachine({
  id: 'counter',
  context: { n: 0 },
  on: { inc: { actions: assign({ n: ({ context }) => context.n + 1 }) } },
});

/** Whether p settles within ms. */
async function settles(p: Promise<unknown>, ms: number): Promise<boolean> {
  let timer: NodeJS.Timeout | undefined;
  const late = new Promise<boolean>((r) => (timer = setTimeout(() => r(false), ms)));
  try {
    return await Promise.race([p.then(() => true), late]);
  } finally {
    clearTimeout(timer);
  }
}

async function until(check: () => boolean | Promise<boolean>, ms = 10_000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error('condition not reached in time');
    await new Promise((r) => setTimeout(r, 20));
  }
}

describe('the event store on a state folder filled to the last byte', () => {
  let unmount: (() => void) | undefined;
  afterEach(() => {
    unmount?.();
    unmount = undefined;
  });

  it('keeps every refused write queued, in order, makes flushed() wait, and lands them once space returns', async () => {
    const dir = path.join(tempDir('xenblkd-full-'), 'state');
    unmount = mountTmpfs(dir, 4 << 20);
    const events = path.join(dir, 'events');
    let committed = 0;
    const store = await LevelEventStore.open(events, { retry: RETRY, onCommitted: (n) => (committed += n) });
    const changes: string[] = [];
    store.health.onChange((fault) => changes.push(fault ? `fault ${fault.code}` : 'writable'));
    const pa = await PersistentActor.create({ store, stream: 'dev/1', machine: counter, retry: RETRY }, {});
    for (let i = 0; i < 5; i++) pa.send({ type: 'inc' });
    await pa.flushed();
    expect(committed).toBe(6);

    const filler = fillToLastByte(dir);
    expect(fs.statfsSync(dir).bavail).toBe(0);
    // Big events, so that the log's buffer cannot hide the full disk.
    for (let i = 0; i < 40; i++) pa.send({ type: 'inc', pad: 'x'.repeat(8192) });
    const flushed = pa.flushed();
    expect(await settles(flushed, 800)).toBe(false);
    expect(store.health.writable).toBe(false);
    expect(store.health.fault?.code).toBe('ENOSPC');
    expect(store.health.failedWrites).toBeGreaterThan(1);
    expect(pa.unstoredWrites).toBeGreaterThan(0);

    fs.rmSync(filler);
    expect(await settles(flushed, 10_000)).toBe(true);
    expect(store.health.writable).toBe(true);
    // One change when the fault started, one when it ended: not one per failed write.
    expect(changes).toEqual(['fault ENOSPC', 'writable']);
    expect(committed).toBe(46);
    await pa.stop();
    await store.close();

    const again = await LevelEventStore.open(events);
    const stored = await again.read('dev/1');
    expect(stored.map((e) => e.metadata.streamVersion)).toEqual(Array.from({ length: 46 }, (_, i) => i + 1));
    await again.close();
  });

  it('opens a store on a full folder from a scratch copy without moving it, and writes the folder once space returns', async () => {
    const dir = path.join(tempDir('xenblkd-full-'), 'state');
    unmount = mountTmpfs(dir, 4 << 20);
    const events = path.join(dir, 'events');
    const first = await LevelEventStore.open(events);
    await first.append('dev/1', [{ type: 'a', data: 1 }, { type: 'b', data: 2 }], 'no_stream');
    await first.close();
    const filler = fillToLastByte(dir);
    // LevelDB's own text log (LOG) turns over at every open: the data files are what must not move.
    const dataFiles = () => fs.readdirSync(events).filter((n) => !n.startsWith('LOG')).sort().map((n) => `${n}:${fs.statSync(path.join(events, n)).size}`);
    const before = dataFiles();

    const scratch = tempDir('xenblkd-scratch-');
    const store = await LevelEventStore.open(events, { retry: RETRY, scratchDir: scratch });
    expect(store.health.fault?.code).toBe('ENOSPC');
    expect(store.readingFrom.startsWith(scratch)).toBe(true);
    expect((await store.read('dev/1')).map((e) => e.type)).toEqual(['a', 'b']);
    expect(fs.readdirSync(dir).filter((n) => n.includes('corrupt'))).toEqual([]);
    const appended = store.append('dev/1', [{ type: 'c', data: 3 }], 2);
    expect(await settles(appended, 500)).toBe(false);
    expect(dataFiles()).toEqual(before);

    fs.rmSync(filler);
    expect(await appended).toBe(3);
    await until(() => store.health.writable);
    expect(store.readingFrom).toBe(events);
    expect(fs.readdirSync(scratch)).toEqual([]);
    await store.close();
    const again = await LevelEventStore.open(events);
    expect((await again.read('dev/1')).map((e) => e.type)).toEqual(['a', 'b', 'c']);
    await again.close();
  });

  it('fails what still waits when it closes on a full folder, so that a stopping daemon does not hang', async () => {
    const dir = path.join(tempDir('xenblkd-full-'), 'state');
    unmount = mountTmpfs(dir, 4 << 20);
    const store = await LevelEventStore.open(path.join(dir, 'events'), { retry: RETRY });
    await store.append('s', [{ type: 'a', data: 1 }], 'no_stream');
    fillToLastByte(dir);
    const waiting = store.append('s', [{ type: 'b', data: 'x'.repeat(65536) }], 1).catch((e: unknown) => e);
    await until(() => !store.health.writable);
    await store.close();
    expect(await waiting).toMatchObject({ reason: 'closed', code: 'ENOSPC' });
  });
});

describe('the event store on a read-only state folder', () => {
  it('is read from a copy and written again when the folder is writable', async () => {
    const dir = tempDir('xenblkd-ro-');
    const events = path.join(dir, 'events');
    const first = await LevelEventStore.open(events);
    await first.append('dev/1', [{ type: 'a', data: 1 }], 'no_stream');
    await first.close();
    // A copy left by a daemon killed while it read from one (pid 999999999: not alive) is removed.
    const scratch = tempDir('xenblkd-scratch-');
    fs.mkdirSync(path.join(scratch, 'xenblkd-events-999999999-abc'));
    const writable = bindReadOnly(dir);
    let store: LevelEventStore | undefined;
    try {
      store = await LevelEventStore.open(events, { retry: RETRY, scratchDir: scratch });
      expect(fs.readdirSync(scratch)).toEqual([path.basename(store.readingFrom)]);
      expect(path.basename(store.readingFrom)).toMatch(new RegExp(`^xenblkd-events-${process.pid}-`));
      expect(store.health.fault?.code).toBe('EROFS');
      expect((await store.read('dev/1')).map((e) => e.type)).toEqual(['a']);
      const appended = store.append('dev/1', [{ type: 'b', data: 2 }], 1);
      expect(await settles(appended, 300)).toBe(false);
      writable();
      expect(await appended).toBe(2);
    } finally {
      try {
        writable();
      } catch {
        // already read-write
      }
      await store?.close();
    }
    const again = await LevelEventStore.open(events);
    expect((await again.read('dev/1')).map((e) => e.type)).toEqual(['a', 'b']);
    await again.close();
  });
});

/** A store with a table file, a manifest and a log holding writes made after the table. */
async function storeWithEveryFile(dir: string): Promise<void> {
  const a = await LevelEventStore.open(dir);
  for (let i = 1; i <= 20; i++) await a.append(`dev/${i}`, [{ type: 'created', data: { i, pad: 'p'.repeat(200) } }], 'no_stream');
  await a.close();
  // Reopening turns the log into a table.
  const b = await LevelEventStore.open(dir);
  for (let i = 1; i <= 20; i++) await b.append(`dev/${i}`, [{ type: 'later', data: i }], 1);
  await b.close();
}

describe('the event store with damaged files', () => {
  const cases: [LevelFileKind, DamageKind][] = [];
  for (const kind of ['ldb', 'log', 'MANIFEST', 'CURRENT'] as const) for (const how of ['corrupt', 'truncate', 'delete'] as const) cases.push([kind, how]);

  it.each(cases)('a %s file damaged (%s) is reported as corrupt, or opens with a whole prefix of what was written', async (kind, how) => {
    const dir = path.join(tempDir('xenblkd-damage-'), 'events');
    await storeWithEveryFile(dir);
    const file = levelFile(dir, kind);
    expect(file).toBeDefined();
    damage(file!, how);
    let store: LevelEventStore;
    try {
      store = await LevelEventStore.open(dir);
    } catch (err) {
      expect(err).toBeInstanceOf(StoreError);
      expect((err as StoreError).reason).toBe('corrupt');
      expect((err as StoreError).message.split('\n')).toHaveLength(1);
      return;
    }
    // What opens must be whole: every stream reads, and holds a prefix of what was appended.
    try {
      for (const s of await store.streams()) {
        const types = (await store.read(s)).map((e) => e.type);
        expect(['created', 'created,later']).toContain(types.join(','));
        expect(await store.version(s)).toBe(types.length);
      }
      // Only a log (the tail of what was written) may lose records silently.
      if (kind !== 'log') expect(await store.streams()).toHaveLength(20);
    } finally {
      await store.close();
    }
  });
});
