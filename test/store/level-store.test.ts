import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { ClassicLevel } from 'classic-level';
import { StoreError } from '../../src/store/events';
import { LevelEventStore } from '../../src/store/level-store';
import { eventStoreContract } from './event-store.contract';

const dirs: string[] = [];
const tempDir = () => {
  const d = fs.mkdtempSync(path.join(os.tmpdir(), 'xenblkd-store-'));
  dirs.push(d);
  return d;
};
afterAll(() => dirs.forEach((d) => fs.rmSync(d, { recursive: true, force: true })));

eventStoreContract('LevelDB', (clock) => LevelEventStore.open(tempDir(), { clock }));

describe('LevelEventStore', () => {
  it('keeps streams, versions and snapshots across a reopen', async () => {
    const dir = tempDir();
    const a = await LevelEventStore.open(dir);
    await a.append('dev/1', [{ type: 'x', data: 1 }, { type: 'y', data: 2 }], 'no_stream');
    await a.saveSnapshot('dev/1', 1, { s: 'one' });
    await a.close();
    const b = await LevelEventStore.open(dir);
    expect(await b.version('dev/1')).toBe(2);
    expect((await b.read('dev/1', 1)).map((e) => e.type)).toEqual(['y']);
    expect((await b.loadSnapshot('dev/1'))?.state).toEqual({ s: 'one' });
    await b.close();
  });

  it('refuses a state folder another process holds, with a clear reason', async () => {
    const dir = tempDir();
    const a = await LevelEventStore.open(dir);
    const script = `
      const { LevelEventStore } = require(${JSON.stringify(path.join(__dirname, '../../dist/store/level-store.js'))});
      LevelEventStore.open(${JSON.stringify(dir)}).then(() => process.exit(0), (e) => { console.log(e.reason + ': ' + e.message); process.exit(3); });`;
    const r = spawnSync('node', ['-e', script], { encoding: 'utf8' });
    expect(r.status).toBe(3);
    expect(r.stdout).toMatch(/^locked: state folder .* is in use by another xenblkd/);
    await a.close();
  });

  it('names a corrupt record instead of failing obscurely', async () => {
    const dir = tempDir();
    const a = await LevelEventStore.open(dir);
    await a.append('dev/1', [{ type: 'x', data: 1 }], 'no_stream');
    await a.close();
    const raw = new ClassicLevel<string, string>(dir);
    await raw.put('e!dev/1!0000000001', '{not json');
    await raw.close();
    const b = await LevelEventStore.open(dir);
    await expect(b.read('dev/1')).rejects.toThrow(/record e!dev\/1!0000000001 is not valid JSON/);
    await b.close();
  });

  it('refuses a folder written by a newer format', async () => {
    const dir = tempDir();
    const raw = new ClassicLevel<string, string>(dir);
    await raw.put('meta!format', '99');
    await raw.close();
    await expect(LevelEventStore.open(dir)).rejects.toMatchObject({ reason: 'newer-format' });
  });

  it('reports an unreadable folder as corrupt', async () => {
    const dir = tempDir();
    fs.writeFileSync(path.join(dir, 'CURRENT'), 'MANIFEST-999999\n');
    const err = await LevelEventStore.open(dir).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(StoreError);
    expect((err as StoreError).reason).toBe('corrupt');
    expect((err as StoreError).message.split('\n')).toHaveLength(1);
  });

  it('reports each landed batch to onCommitted with its number of events, before the appenders learn it landed', async () => {
    const batches: number[] = [];
    const seen: string[] = [];
    const store = await LevelEventStore.open(tempDir(), { onCommitted: (n) => { batches.push(n); seen.push(`committed ${n}`); } });
    // Group commit: appends made together go out as one batch.
    const a = store.append('a', [{ type: 'x', data: 1 }, { type: 'y', data: 2 }], 'no_stream').then(() => seen.push('a resolved'));
    const b = store.append('b', [{ type: 'x', data: 1 }], 'no_stream').then(() => seen.push('b resolved'));
    await Promise.all([a, b]);
    await store.saveSnapshot('a', 2, {});
    await store.compact('a', 2);
    await store.deleteStream('b');
    await store.close();
    // The first batch may hold the format record alone (no events: not reported).
    expect(batches.reduce((x, y) => x + y, 0)).toBe(3);
    expect(batches.every((n) => n > 0)).toBe(true);
    expect(seen.indexOf('a resolved')).toBeGreaterThan(seen.findIndex((l) => l.startsWith('committed')));
    expect(seen.indexOf('b resolved')).toBeGreaterThan(seen.findIndex((l) => l.startsWith('committed')));
  });
});
