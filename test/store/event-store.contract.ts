// One contract, run against every EventStore implementation.
import { ConcurrencyError, type EventStore } from '../../src/store/events';

export function eventStoreContract(name: string, make: (clock: () => number) => Promise<EventStore>): void {
  describe(`EventStore contract: ${name}`, () => {
    let now = 1_000;
    const clock = () => now;
    let store: EventStore;
    beforeEach(async () => {
      now = 1_000;
      store = await make(clock);
    });
    afterEach(async () => {
      await store.close();
    });

    it('appends to a new stream and reads the events back in order with their metadata', async () => {
      expect(await store.append('dev/1', [{ type: 'a', data: { x: 1 } }, { type: 'b', data: null }], 'no_stream')).toBe(2);
      now = 2_000;
      expect(await store.append('dev/1', [{ type: 'c', data: 'z' }], 2)).toBe(3);
      const events = await store.read('dev/1');
      expect(events.map((e) => [e.type, e.data, e.metadata.streamVersion, e.metadata.recordedAt])).toEqual([
        ['a', { x: 1 }, 1, 1_000],
        ['b', null, 2, 1_000],
        ['c', 'z', 3, 2_000],
      ]);
      expect(events.every((e) => e.metadata.formatVersion === 1)).toBe(true);
      expect(await store.version('dev/1')).toBe(3);
    });

    it('refuses an append whose expected version is stale, and writes nothing', async () => {
      await store.append('dev/1', [{ type: 'a', data: 1 }], 'no_stream');
      await expect(store.append('dev/1', [{ type: 'b', data: 2 }], 0)).rejects.toBeInstanceOf(ConcurrencyError);
      await expect(store.append('dev/1', [{ type: 'b', data: 2 }], 'no_stream')).rejects.toBeInstanceOf(ConcurrencyError);
      expect((await store.read('dev/1')).map((e) => e.type)).toEqual(['a']);
    });

    it('lets exactly one of two concurrent appends at the same version win', async () => {
      await store.append('dev/1', [{ type: 'a', data: 1 }], 'no_stream');
      const results = await Promise.allSettled([
        store.append('dev/1', [{ type: 'x', data: 1 }], 1),
        store.append('dev/1', [{ type: 'y', data: 2 }], 1),
      ]);
      expect(results.filter((r) => r.status === 'fulfilled')).toHaveLength(1);
      expect(results.filter((r) => r.status === 'rejected')).toHaveLength(1);
      expect(await store.read('dev/1')).toHaveLength(2);
    });

    it("appends with 'any' regardless of the version", async () => {
      await store.append('s', [{ type: 'a', data: 1 }], 'any');
      await store.append('s', [{ type: 'b', data: 1 }], 'any');
      expect(await store.version('s')).toBe(2);
    });

    it('reads from a version on', async () => {
      await store.append('s', [1, 2, 3, 4].map((n) => ({ type: `e${n}`, data: n })), 'no_stream');
      expect((await store.read('s', 2)).map((e) => e.data)).toEqual([3, 4]);
      expect(await store.read('s', 4)).toEqual([]);
      expect(await store.read('missing')).toEqual([]);
    });

    it('keeps streams apart and lists them by prefix', async () => {
      await store.append('device/vbd/1/51712', [{ type: 'a', data: 1 }], 'no_stream');
      await store.append('device/vbd/2/51712', [{ type: 'b', data: 1 }], 'no_stream');
      await store.append('bus/vbd', [{ type: 'c', data: 1 }], 'no_stream');
      expect(await store.streams('device/')).toEqual(['device/vbd/1/51712', 'device/vbd/2/51712']);
      expect(await store.streams()).toHaveLength(3);
      expect((await store.read('device/vbd/2/51712')).map((e) => e.type)).toEqual(['b']);
    });

    it('keeps a snapshot and compacts the events it covers without losing the version', async () => {
      await store.append('s', [1, 2, 3].map((n) => ({ type: 'e', data: n })), 'no_stream');
      await store.saveSnapshot('s', 2, { folded: [1, 2] });
      expect(await store.compact('s', 2)).toBe(2);
      expect(await store.loadSnapshot('s')).toEqual({ version: 2, state: { folded: [1, 2] }, formatVersion: 1 });
      expect((await store.read('s')).map((e) => e.data)).toEqual([3]);
      expect(await store.version('s')).toBe(3);
      expect(await store.append('s', [{ type: 'e', data: 4 }], 3)).toBe(4);
      expect(await store.loadSnapshot('other')).toBeUndefined();
    });

    it('deletes a stream with its snapshot', async () => {
      await store.append('s', [{ type: 'e', data: 1 }], 'no_stream');
      await store.saveSnapshot('s', 1, {});
      await store.deleteStream('s');
      expect(await store.read('s')).toEqual([]);
      expect(await store.loadSnapshot('s')).toBeUndefined();
      expect(await store.version('s')).toBe(0);
      expect(await store.streams()).toEqual([]);
      expect(await store.append('s', [{ type: 'e', data: 1 }], 'no_stream')).toBe(1);
    });

    it('hands out copies: changing what was read changes nothing stored', async () => {
      await store.append('s', [{ type: 'e', data: { n: 1 } }], 'no_stream');
      const [e] = await store.read('s');
      (e.data as { n: number }).n = 99;
      expect((await store.read('s'))[0].data).toEqual({ n: 1 });
    });

    it('lands every one of many concurrent appends to many streams', async () => {
      await Promise.all(
        Array.from({ length: 200 }, (_, i) => store.append(`d/${i % 20}`, [{ type: 'e', data: i }], 'any')),
      );
      let total = 0;
      for (const s of await store.streams('d/')) total += (await store.read(s)).length;
      expect(total).toBe(200);
    });
  });
}
