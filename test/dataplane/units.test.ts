// The dataplane's pure and local parts: crash-hook parsing, the publication journal file,
// limits and data-path choice, the latency histogram, the buffer pool, command-line parsing.
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { BufferPool } from '../../src/effects/dataplane/buffers';
import { CrashHooks, parseCrashSpec } from '../../src/effects/dataplane/crash-points';
import { journalFileName, PublicationJournal, ringKey } from '../../src/effects/dataplane/journal';
import { LatencyHistogram } from '../../src/effects/dataplane/latency-histogram';
import { chooseDataPath, deviceLimits, resolveFeatures } from '../../src/effects/dataplane/limits';
import { parseStandaloneArgs, standaloneArgs, StandaloneUsageError } from '../../src/effects/dataplane/standalone';

describe('crash hooks', () => {
  it('parses <point>[:<n>] and refuses anything else with one line', () => {
    expect(parseCrashSpec(undefined)).toBeNull();
    expect(parseCrashSpec('')).toBeNull();
    expect(parseCrashSpec('after-slots')).toEqual({ point: 'after-slots', nth: 1 });
    expect(parseCrashSpec('mid-io:12')).toEqual({ point: 'mid-io', nth: 12 });
    for (const bad of ['nope', 'after-slots:0', 'after-slots:x', 'after-slots:', ':3', 'after-slots:1:2']) {
      expect(() => parseCrashSpec(bad)).toThrow(/^XENBLKD_CRASH_AT=.*: expected <point>\[:<n>\] with point one of after-consume, /);
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
    const off = new CrashHooks(null, (p) => fired.push(p));
    off.at('after-journal');
    expect(off.armed).toBe(false);
    expect(fired).toHaveLength(1);
  });
});

describe('publication journal', () => {
  let dir: string;
  beforeEach(() => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'journal-'));
  });
  afterEach(() => fs.rmSync(dir, { recursive: true, force: true }));

  it('keeps a committed batch across close and reopen, with its responses', () => {
    const file = path.join(dir, journalFileName('vbd', 3, 51712));
    expect(path.basename(file)).toBe('vbd-3-51712.pubjournal');
    const key = ringKey([3, 51712, 0, 112, 5, 8]);
    const { journal, reset } = PublicationJournal.open(file, 32, key);
    expect(reset).toBeNull();
    expect(journal.recorded()).toBeNull();
    journal.begin();
    journal.setEntry(0, 0xdeadbeef, 7, 1, 0);
    journal.setEntry(1, 2, 0, 0, -1);
    journal.setEntry(2, 3, 0, 5, -2);
    journal.commit(0xfffffffe, 3);
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

  it('a record being rewritten is invalid until committed; another ring or layout resets it', () => {
    const file = path.join(dir, 'j');
    const { journal } = PublicationJournal.open(file, 32, 1);
    journal.begin();
    journal.setEntry(0, 1, 0, 0, 0);
    journal.commit(10, 1);
    journal.begin(); // a kill from here on leaves no valid record
    journal.setEntry(0, 2, 0, 0, 0);
    expect(journal.recorded()).toBeNull();
    journal.commit(11, 1);
    journal.close(false);
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

  it('refuses a journal it cannot create, with one line', () => {
    expect(() => PublicationJournal.open(path.join(dir, 'missing', 'j'), 32, 1)).toThrow(/^publication journal .*\/missing\/j: ENOENT$/);
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
