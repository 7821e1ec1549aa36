// The dataplane's pure and local parts: crash-hook parsing, the publication journal file,
// limits and data-path choice, the latency histogram, the buffer pool, command-line parsing.
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { BufferPool } from '../../src/effects/dataplane/buffers';
import { CrashHooks, parseCrashSpec } from '../../src/effects/dataplane/crash-points';
import { JournalError, journalBytes, journalFileName, PublicationJournal, ringKey } from '../../src/effects/dataplane/journal';
import { LatencyHistogram } from '../../src/effects/dataplane/latency-histogram';
import { chooseDataPath, deviceLimits, resolveFeatures } from '../../src/effects/dataplane/limits';
import { parseStandaloneArgs, standaloneArgs, StandaloneUsageError } from '../../src/effects/dataplane/standalone';

describe('crash hooks', () => {
  it('parses <point>[:<n>] and slot/<k>[:<n>], and refuses anything else with one line', () => {
    expect(parseCrashSpec(undefined)).toBeNull();
    expect(parseCrashSpec('')).toBeNull();
    expect(parseCrashSpec('after-slots')).toEqual({ point: 'after-slots', nth: 1 });
    expect(parseCrashSpec('mid-io:12')).toEqual({ point: 'mid-io', nth: 12 });
    expect(parseCrashSpec('slot/3:2')).toEqual({ point: 'slot', nth: 2, slot: 3 });
    for (const bad of ['nope', 'after-slots:0', 'after-slots:x', 'after-slots:', ':3', 'after-slots:1:2', 'slot', 'slot:2', 'slot/0', 'mid-io/2']) {
      expect(() => parseCrashSpec(bad)).toThrow(/^.*: expected <point>\[:<n>\] or slot\/<k>\[:<n>\] with point one of after-consume, /);
    }
  });

  it('fires on the n-th time its point is reached, and only there', () => {
    const fired: string[] = [];
    const h = new CrashHooks({ point: 'after-journal', nth: 3 }, (p) => fired.push(p));
    for (let i = 0; i < 5; i++) {
      h.at('after-slots');
      h.at('after-journal');
    }
    expect(fired).toEqual(['after-journal']);
    const off = CrashHooks.none;
    off.at('after-journal');
    expect(off.armed).toBe(false);
    expect(fired).toHaveLength(1);
  });

  it('slot/<k> fires before slot k of the nth batch long enough to have it; last-slot before the last of a batch of 2 or more', () => {
    const fired: string[] = [];
    const slot = new CrashHooks({ point: 'slot', nth: 2, slot: 2 }, (p) => fired.push(p));
    const last = new CrashHooks({ point: 'last-slot', nth: 2 }, (p) => fired.push(`${p}`));
    const batch = (n: number, tag: string) => {
      for (let k = 0; k < n; k++) {
        const before = fired.length;
        slot.atSlot(k, n);
        last.atSlot(k, n);
        for (let i = before; i < fired.length; i++) fired[i] = `${fired[i]} ${tag} k=${k}`;
      }
    };
    batch(1, 'a');
    batch(2, 'b');
    batch(3, 'c');
    batch(5, 'd');
    batch(5, 'e');
    expect(fired).toEqual(['last-slot c k=2', 'slot d k=2']);
  });
});

describe('publication journal', () => {
  let dir: string;
  beforeEach(() => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'journal-'));
  });
  afterEach(() => fs.rmSync(dir, { recursive: true, force: true }));

  it('keeps a committed batch across close and reopen, with its responses; its space is allocated at open', () => {
    const file = path.join(dir, journalFileName('vbd', 3, 51712));
    expect(path.basename(file)).toBe('vbd-3-51712.pubjournal');
    const key = ringKey([3, 51712, 0, 112, 5, 8]);
    const { journal, reset } = PublicationJournal.open(file, 32, key);
    expect(reset).toBeNull();
    expect(journal.recorded()).toBeNull();
    // Written, not sparse: every block of the file is allocated before the first batch.
    const st = fs.statSync(file);
    expect(st.size).toBe(journalBytes(32));
    expect(st.blocks * 512).toBeGreaterThanOrEqual(st.size);
    journal.setEntry(0, 0xdeadbeef, 7, 1, 0);
    journal.setEntry(1, 2, 0, 0, -1);
    journal.setEntry(2, 3, 0, 5, -2);
    expect(journal.commit(0xfffffffe, 3)).toBe(true);
    journal.close(false);
    const again = PublicationJournal.open(file, 32, key).journal;
    expect(again.recorded()).toEqual({ start: 0xfffffffe, count: 3 });
    expect([0, 1, 2].map((i) => [again.entryIdLo(i), again.entryIdHi(i), again.entryOperation(i), again.entryStatus(i)])).toEqual([
      [0xdeadbeef, 7, 1, 0],
      [2, 0, 0, -1],
      [3, 0, 5, -2],
    ]);
    again.close(true);
    expect(fs.existsSync(file)).toBe(false);
  });

  it('a torn record, or any byte of a record changed, is never replayed; another ring or layout resets it', () => {
    const file = path.join(dir, 'j');
    const { journal } = PublicationJournal.open(file, 32, 1);
    for (let i = 0; i < 8; i++) journal.setEntry(i, i, 0, 0, 0);
    expect(journal.commit(10, 8)).toBe(true);
    // A kill in the middle of the next record's write: half of it on file, the rest old.
    for (let i = 0; i < 8; i++) journal.setEntry(i, 100 + i, 0, 1, 0);
    journal.commit(18, 8, true);
    journal.close(false);
    const torn = PublicationJournal.open(file, 32, 1);
    expect(torn.reset).toBeNull();
    expect(torn.journal.recorded()).toBeNull();
    expect(torn.journal.commit(18, 8)).toBe(true);
    torn.journal.close(false);
    const whole = fs.readFileSync(file);
    // Each word of the header (but the reserved ones) and of every entry is covered by the check.
    for (const word of [0, 1, 2, 3, 4, 5, 6, 16, 17, 18, 19, 16 + 4 * 7 + 3]) {
      const bad = Buffer.from(whole);
      bad[word * 4] ^= 1;
      fs.writeFileSync(file, bad);
      const j = PublicationJournal.open(file, 32, 1).journal;
      expect([word, j.recorded()]).toEqual([word, null]);
      j.close(false);
    }
    fs.writeFileSync(file, whole);
    const other = PublicationJournal.open(file, 32, 2);
    expect(other.reset).toBe('written for another ring');
    expect(other.journal.recorded()).toBeNull();
    other.journal.close(false);
    const bigger = PublicationJournal.open(file, 64, 2);
    expect(bigger.reset).toBe('written by another layout');
    bigger.journal.close(false);
    // Garbage in the file is never taken for a record.
    fs.writeFileSync(file, Buffer.alloc(8192, 0xa5));
    const g = PublicationJournal.open(file, 32, 1);
    expect(g.journal.recorded()).toBeNull();
    g.journal.close(true);
  });

  it('refuses a journal it cannot create with a JournalError naming the errno', () => {
    let err: unknown;
    try {
      PublicationJournal.open(path.join(dir, 'missing', 'j'), 32, 1);
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(JournalError);
    expect((err as JournalError).code).toBe('ENOENT');
    expect((err as Error).message).toMatch(/^publication journal .*\/missing\/j: open: ENOENT$/);
  });

  it('repairs a journal deleted or truncated under it, keeping its record', () => {
    const file = path.join(dir, 'j');
    const { journal } = PublicationJournal.open(file, 32, 1);
    journal.setEntry(0, 9, 0, 0, 0);
    journal.commit(5, 1);
    expect(journal.check()).toBeNull();
    fs.truncateSync(file, 0);
    expect(journal.check()).toBe('extended');
    expect(fs.statSync(file).size).toBe(journalBytes(32));
    fs.rmSync(file);
    expect(journal.check()).toBe('recreated');
    journal.setEntry(0, 10, 0, 0, 0);
    journal.commit(6, 1);
    const again = PublicationJournal.open(file, 32, 1).journal;
    expect(again.recorded()).toEqual({ start: 6, count: 1 });
    again.close(false);
    journal.close(true);
  });
});

describe('limits and data path', () => {
  const image = { sizeBytes: 1 << 20, sectorSize: 512, readOnly: false, discardSupport: { granularity: 4096, alignment: 0, secure: false } };

  it('offers what the backend advertised and the image can do', () => {
    const f = resolveFeatures({});
    expect(deviceLimits(image, false, f)).toEqual({
      sectors: 2048, sectorSize: 512, readOnly: false, flush: true, barrier: true, discard: true, discardSecure: false, maxIndirectSegments: 256,
    });
    expect(deviceLimits(image, true, f)).toMatchObject({ readOnly: true, discard: false });
    expect(deviceLimits({ ...image, discardSupport: null }, false, f).discard).toBe(false);
    expect(deviceLimits(image, false, resolveFeatures({ discard: false, barrier: false })).barrier).toBe(false);
    expect(resolveFeatures({ maxIndirectSegments: 4 }).maxIndirectSegments).toBe(11);
    expect(() => resolveFeatures({ maxIndirectSegments: 5000 })).toThrow('maxIndirectSegments 5000 outside 0..4096');
  });

  it('uses persistent grants only when both ends advertise them', () => {
    expect(chooseDataPath('auto', true, true)).toBe('persistent');
    expect(chooseDataPath('auto', true, false)).toBe('copy');
    expect(chooseDataPath('auto', false, true)).toBe('copy');
    expect(chooseDataPath('persistent', false, true)).toBe('copy');
    expect(chooseDataPath('map', false, false)).toBe('map');
    expect(chooseDataPath('copy', true, true)).toBe('copy');
  });
});

describe('latency histogram', () => {
  it('puts each value in its power-of-two bucket and answers quantiles within a factor of 2', () => {
    const h = new LatencyHistogram();
    for (const v of [0.5, 1, 3, 3, 100, 1e12]) h.record(v);
    const s = h.snapshot();
    expect(s.counts[0]).toBe(1);
    expect(s.counts[1]).toBe(1);
    expect(s.counts[2]).toBe(2);
    expect(s.counts[7]).toBe(1);
    expect(s.counts[31]).toBe(1);
    expect(s.boundsUs[31]).toBe(Infinity);
    expect(h.count).toBe(6);
    expect(h.quantileUs(0.5)).toBe(4);
    expect(h.quantileUs(1)).toBe(1e12);
    expect(new LatencyHistogram().quantileUs(0.5)).toBe(0);
  });
});

describe('buffer pool', () => {
  it('hands out one small buffer per slot and a bounded number of big ones', () => {
    const p = new BufferPool(2, 256, 1);
    const a = p.acquire(11);
    const b = p.acquire(1);
    expect(p.acquire(3)).toBe(-1);
    expect(p.offset(b) - p.offset(a)).toBe(Math.abs(b - a) * 11 * 4096);
    const big = p.acquire(256);
    expect(big).toBeGreaterThanOrEqual(2);
    expect(p.region(big).length).toBe(256 * 4096);
    expect(p.acquire(12)).toBe(-1);
    expect(p.acquire(257)).toBe(-1);
    p.release(big);
    expect(p.acquire(100)).toBe(big);
    p.release(a);
    expect(p.acquire(5)).toBe(a);
    expect(p.fits(256)).toBe(true);
    expect(p.fits(257)).toBe(false);
    p.free();
  });
});

describe('standalone command line', () => {
  const base = ['--hv', '/run/hv.sock', '--image', '/img', '--state-dir', '/st', '--ring-refs', '8,9', '--ring-page-order', '1', '--event-channel', '5'];

  it('round-trips through standaloneArgs', () => {
    const c = parseStandaloneArgs([...base, '--protocol', 'x86_32-abi', '--frontend-persistent', '--data-path', 'map', '--no-barrier', '--order', 'completion']);
    expect(c.params).toEqual({ ringPageOrder: 1, ringRefs: [8, 9], eventChannel: 5, protocol: 'x86_32-abi', persistent: true });
    expect(c.features).toEqual({ barrier: false, discard: true, persistent: true, maxIndirectSegments: 256, dataPath: 'map' });
    expect(parseStandaloneArgs(standaloneArgs(c))).toEqual(c);
  });

  it.each([
    [['--image', '/i'], '--hv is required'],
    [[...base.slice(0, 6), '--ring-refs', '8', '--ring-page-order', '1', '--event-channel', '5'], '--ring-refs: 1 refs for a ring of order 1 (2 needed)'],
    [[...base, '--protocol', 'arm'], '--protocol must be one of x86_32-abi, x86_64-abi'],
    [[...base, '--ring-page-order', '5'], '--ring-page-order must be an integer in 0..4, got 5'],
    [[...base, '--data-path', 'dma'], '--data-path must be one of copy, map, persistent, auto'],
    [[...base, '--bogus'], "Unknown option '--bogus'"],
  ])('refuses %j with one line', (argv, message) => {
    let err: unknown;
    try {
      parseStandaloneArgs(argv);
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(StandaloneUsageError);
    expect((err as Error).message).toContain(message);
    expect((err as Error).message).not.toContain('\n');
  });
});
