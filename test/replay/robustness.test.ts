// A session that parses but holds values no recording would (a hand-edited or corrupted file) is
// replayed to a divergence that names the record, never to a crash of the replay.
import { parseSession, replaySession, type LocatedRecord } from '../../src/replay';
import { fixtureNames, loadFixture } from './support/fixtures';

function rng(seed: number): () => number {
  let s = seed;
  return () => (s = (s * 1103515245 + 12345) & 0x7fffffff) / 0x7fffffff;
}

const ODD_VALUES: unknown[] = [null, 0, -1, 1e12, '', 'x', true, [], {}, [1, 'a'], { type: 'x' }, 'backend.changed'];

/** Replaces one leaf inside a record's event, input or persisted part with an odd value. */
function corrupt(record: LocatedRecord, rnd: () => number): LocatedRecord {
  const copy = JSON.parse(JSON.stringify(record)) as Record<string, unknown>;
  const roots = ['event', 'input', 'persisted', 'snapshot'].filter((k) => typeof copy[k] === 'object' && copy[k] !== null);
  if (roots.length === 0) return record;
  let node = copy[roots[Math.floor(rnd() * roots.length)]] as Record<string, unknown>;
  for (;;) {
    const keys = Object.keys(node);
    if (keys.length === 0) break;
    const k = keys[Math.floor(rnd() * keys.length)];
    const child = node[k];
    if (typeof child === 'object' && child !== null && rnd() < 0.6) {
      node = child as Record<string, unknown>;
      continue;
    }
    node[k] = ODD_VALUES[Math.floor(rnd() * ODD_VALUES.length)];
    break;
  }
  return { ...(copy as object), line: record.line } as LocatedRecord;
}

describe('replaying corrupted sessions', () => {
  it('ends every one in a result (identical or a divergence), never an exception', async () => {
    const rnd = rng(20240611);
    const uncaught: unknown[] = [];
    const onUncaught = (err: unknown) => uncaught.push(err);
    process.on('uncaughtException', onUncaught);
    try {
      let diverged = 0;
      for (const name of fixtureNames()) {
        const session = loadFixture(name);
        for (let round = 0; round < 8; round++) {
          const records = session.records.map((r) => (rnd() < 0.15 ? corrupt(r, rnd) : r));
          const result = await replaySession({ ...session, records });
          if (result.first) {
            diverged += 1;
            expect(result.first.line).toBeGreaterThan(1);
          }
        }
      }
      // Let any timer XState might have armed fire.
      await new Promise((r) => setTimeout(r, 50));
      expect(uncaught).toEqual([]);
      expect(diverged).toBeGreaterThan(15);
    } finally {
      process.off('uncaughtException', onUncaught);
    }
  });

  it('names the record whose input the machine cannot start from', async () => {
    const session = loadFixture('online-resize');
    const records = session.records.map((r) => (r.kind === 'created' && r.machine === 'vbd' ? ({ ...r, input: { identity: 1 } } as LocatedRecord) : r));
    const result = await replaySession({ ...session, records });
    const created = records.find((r) => r.kind === 'created' && r.machine === 'vbd')!;
    expect(result.first).toMatchObject({ n: created.n, line: created.line, differs: ['actor'] });
    expect(result.first!.actual.problem).toMatch(/vbd machine cannot start from the recorded input/);
  });

  it('refuses a recovery whose persisted stream cannot be folded', async () => {
    const session = loadFixture('crash-recovery');
    const records = session.records.map((r) =>
      r.kind === 'recovered' && r.machine === 'vbd' ? ({ ...r, persisted: { ...r.persisted, events: r.persisted.events.slice(1) } } as LocatedRecord) : r,
    );
    const result = await replaySession({ ...session, records });
    expect(result.first!.actual.problem).toMatch(/recovery failed: .*does not start with xenblkd.created/);
  });

  it('parses what it writes back', () => {
    const session = loadFixture('driver-reload');
    const text = [JSON.stringify(session.header), ...session.records.map(({ line: _l, ...r }) => JSON.stringify(r))].join('\n') + '\n';
    expect(parseSession(text).records).toEqual(session.records);
  });
});
