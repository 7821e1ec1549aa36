import { assign, fromCallback, setup } from 'xstate';
import type { EventStore } from '../../src/store/events';
import { MemoryEventStore } from '../../src/store/memory-store';
import { PersistentActor, type TransitionRecord } from '../../src/store/persistent-actor';

function makeMachine(log: string[]) {
  return setup({
    types: { input: {} as { name: string }, context: {} as { name: string; count: number } },
    actors: {
      link: fromCallback<{ type: 'noop' }, { name: string; count: number }>(({ input }) => {
        log.push(`link start ${input.name} ${input.count}`);
        return () => log.push(`link stop ${input.name}`);
      }),
    },
    actions: { shout: () => log.push('shout') },
  }).createMachine({
    id: 'toy',
    context: ({ input }) => ({ name: input.name, count: 0 }),
    initial: 'idle',
    states: {
      idle: { on: { go: { target: 'linked', actions: [assign({ count: ({ context }) => context.count + 1 }), 'shout'] } } },
      linked: {
        invoke: { src: 'link', input: ({ context }) => context },
        on: { stop: 'idle' },
      },
    },
  });
}

describe('PersistentActor', () => {
  it("persists the events an actor's own effects send back", async () => {
    const store = new MemoryEventStore();
    const machine = setup({
      actors: {
        work: fromCallback(({ sendBack }) => {
          sendBack({ type: 'worked', result: 7 });
        }),
      },
    }).createMachine({
      id: 'w',
      initial: 'busy',
      states: { busy: { invoke: { src: 'work' }, on: { worked: 'done' } }, done: {} },
    });
    const pa = await PersistentActor.create({ store, stream: 'w', machine }, {});
    await pa.flushed();
    expect(pa.getSnapshot().value).toBe('done');
    expect((await store.read('w')).map((e) => [e.type, e.data])).toEqual([
      ['xenblkd.created', {}],
      ['worked', { result: 7 }],
    ]);
    await pa.stop();
  });

  it('persists each event before applying it and reports the transition', async () => {
    const store = new MemoryEventStore(() => 42);
    const log: string[] = [];
    const seen: TransitionRecord[] = [];
    const pa = await PersistentActor.create({ store, stream: 'dev/1', machine: makeMachine(log), onTransition: (t) => seen.push(t) }, { name: 'disk' });
    pa.send({ type: 'go' });
    await pa.flushed();
    expect((await store.read('dev/1')).map((e) => [e.type, e.data])).toEqual([
      ['xenblkd.created', { name: 'disk' }],
      ['go', {}],
    ]);
    expect(seen).toEqual([{ stream: 'dev/1', version: 2, at: expect.any(Number), event: { type: 'go' }, from: 'idle', to: 'linked' }]);
    expect(log).toEqual(['shout', 'link start disk 1']);
    await pa.stop();
  });

  it('comes back in the same state, restarting the invocation without re-running actions', async () => {
    const store = new MemoryEventStore();
    const log: string[] = [];
    const machine = makeMachine(log);
    const first = await PersistentActor.create({ store, stream: 'dev/1', machine }, { name: 'disk' });
    first.send({ type: 'go' });
    first.send({ type: 'stop' });
    first.send({ type: 'go' });
    await first.stop();
    log.length = 0;

    const again = await PersistentActor.recover({ store, stream: 'dev/1', machine });
    expect(again.getSnapshot().value).toBe('linked');
    expect(again.getSnapshot().context).toEqual({ name: 'disk', count: 2 });
    expect(log).toEqual(['link start disk 2']);
    again.send({ type: 'stop' });
    expect(log).toEqual(['link start disk 2', 'link stop disk']);
    expect(again.streamVersion).toBe(5);
    await again.stop();
  });

  it('snapshots and compacts, and recovers from snapshot plus later events', async () => {
    const store = new MemoryEventStore();
    const machine = makeMachine([]);
    const pa = await PersistentActor.create({ store, stream: 's', machine, snapshotEvery: 4 }, { name: 'x' });
    for (const type of ['go', 'stop', 'go', 'stop', 'go']) pa.send({ type });
    await pa.stop();
    const snap = await store.loadSnapshot('s');
    expect(snap?.version).toBe(5);
    expect((await store.read('s')).map((e) => e.metadata.streamVersion)).toEqual([6]);
    const again = await PersistentActor.recover({ store, stream: 's', machine });
    expect(again.getSnapshot().value).toBe('linked');
    expect(again.getSnapshot().context.count).toBe(3);
    await again.stop();
  });

  it('snapshots when the state settles, once per settling, and recovers from that snapshot alone', async () => {
    const store = new MemoryEventStore();
    const log: string[] = [];
    const machine = makeMachine(log);
    const snapshotWhen = (s: { value: unknown }) => s.value === 'linked';
    const pa = await PersistentActor.create({ store, stream: 's', machine, snapshotWhen }, { name: 'x' });
    pa.send({ type: 'go' });
    await pa.flushed();
    expect((await store.loadSnapshot('s'))?.version).toBe(2);
    expect(await store.read('s')).toEqual([]);
    pa.send({ type: 'stop' });
    pa.send({ type: 'go' });
    await pa.stop();
    // Settled again after leaving: a new snapshot at the latest event.
    expect((await store.loadSnapshot('s'))?.version).toBe(4);
    const again = await PersistentActor.recover({ store, stream: 's', machine, snapshotWhen });
    expect(again.getSnapshot().value).toBe('linked');
    expect(again.getSnapshot().context.count).toBe(2);
    expect(again.streamVersion).toBe(4);
    // The restored state restarts its invocation, as a folded one does.
    expect(log.filter((l) => l.startsWith('link start')).length).toBe(3);
    await again.stop();
  });

  it('persists events in the order they were applied', async () => {
    const store = new MemoryEventStore();
    const pa = await PersistentActor.create({ store, stream: 's', machine: makeMachine([]) }, { name: 'x' });
    for (const type of ['go', 'stop', 'go']) pa.send({ type });
    await pa.flushed();
    expect(pa.getSnapshot().value).toBe('linked');
    expect((await store.read('s')).map((e) => e.type)).toEqual(['xenblkd.created', 'go', 'stop', 'go']);
    await pa.destroy();
    expect(await store.streams()).toEqual([]);
  });

  describe('over a store that refuses writes', () => {
    /** A real in-memory store whose writes number `failing` (counted from 1) throw, each `times` times. */
    function refusing(inner: EventStore, failing: number[], times = 1) {
      let writes = 0;
      const left = new Map(failing.map((n) => [n, times]));
      const gate = <T>(op: () => Promise<T>): Promise<T> => {
        const n = ++writes;
        const remaining = left.get(n) ?? 0;
        if (remaining > 0) {
          left.set(n, remaining - 1);
          writes -= 1; // the retry is the same write
          return Promise.reject(new Error(`write ${n} refused`));
        }
        return op();
      };
      const store: EventStore = {
        ...inner,
        append: (s, e, x) => gate(() => inner.append(s, e, x)),
        saveSnapshot: (s, v, st) => gate(() => inner.saveSnapshot(s, v, st)),
        compact: (s, v) => inner.compact(s, v),
        read: (s, a) => inner.read(s, a),
        version: (s) => inner.version(s),
        streams: (p) => inner.streams(p),
        loadSnapshot: (s) => inner.loadSnapshot(s),
        deleteStream: (s) => inner.deleteStream(s),
        sizeBytes: () => inner.sizeBytes(),
        close: () => inner.close(),
      };
      return store;
    }

    it('skips nothing: the refused write and everything after it land in order, and flushed() waits for them', async () => {
      const inner = new MemoryEventStore();
      // Write 1 is CREATED; write 2 is the first event, refused three times.
      const store = refusing(inner, [2], 3);
      const errors: unknown[] = [];
      let recovered = 0;
      const pa = await PersistentActor.create(
        { store, stream: 's', machine: makeMachine([]), retry: { firstMs: 30, maxMs: 60 }, onStoreError: (e) => errors.push(e), onStoreRecovered: () => (recovered += 1) },
        { name: 'x' },
      );
      pa.send({ type: 'go' });
      pa.send({ type: 'stop' });
      let flushed = false;
      const done = pa.flushed().then(() => (flushed = true));
      await new Promise((r) => setTimeout(r, 50));
      // Still refused: nothing stored, and flushed() has not resolved.
      expect(flushed).toBe(false);
      expect((await inner.read('s')).map((e) => e.type)).toEqual(['xenblkd.created']);
      pa.send({ type: 'go' });
      await done;
      expect((await inner.read('s')).map((e) => [e.type, e.metadata.streamVersion])).toEqual([
        ['xenblkd.created', 1],
        ['go', 2],
        ['stop', 3],
        ['go', 4],
      ]);
      // Reported once for the whole refusal, once when it ended.
      expect(errors).toHaveLength(1);
      expect(recovered).toBe(1);
      // And the stream goes on at the right version.
      pa.send({ type: 'stop' });
      await pa.flushed();
      expect(await inner.version('s')).toBe(5);
      await pa.stop();
    });

    it('retries a refused snapshot instead of dropping it', async () => {
      const inner = new MemoryEventStore();
      const snapshotWhen = (s: { value: unknown }) => s.value === 'linked';
      // Write 2: the event 'go'; write 3: the settle snapshot, refused once.
      const pa = await PersistentActor.create({ store: refusing(inner, [3]), stream: 's', machine: makeMachine([]), snapshotWhen, retry: { firstMs: 10, maxMs: 10 } }, { name: 'x' });
      pa.send({ type: 'go' });
      await pa.flushed();
      expect((await inner.loadSnapshot('s'))?.version).toBe(2);
      expect(await inner.read('s')).toEqual([]);
      await pa.stop();
    });
  });
});
