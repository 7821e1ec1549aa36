import { RunLog, countsLine, parseLine, summarize } from './lib/markers';

describe('harness console markers', () => {
  it('tells markers from log lines and reads the origin prefix', () => {
    expect(parseLine('[   17.8] io scheduler mq-deadline registered').marker).toBeUndefined();
    expect(parseLine('    | XENTEST INFO answer 42').marker).toBeUndefined();
    expect(parseLine('domu1|=XENTEST STEP g PASS 1.00s').marker).toBeUndefined();
    const relayed = parseLine('domu1| XENTEST STEP guest-facts PASS 0.31s\r');
    expect(relayed.origin).toBe('domu1');
    expect(relayed.marker).toMatchObject({ kind: 'STEP', step: 'guest-facts', event: 'PASS', seconds: 0.31 });
    expect(parseLine('XENTEST STEP x FAIL 2.01s timeout after 2s').marker).toMatchObject({
      event: 'FAIL',
      seconds: 2.01,
      detail: 'timeout after 2s',
    });
    expect(parseLine('XENTEST INFO blkfront-keys {"state":"3"}').marker).toMatchObject({
      key: 'blkfront-keys',
      value: '{"state":"3"}',
    });
    expect(parseLine('XENTEST STEP nonsense').marker?.kind).toBe('BAD');
  });

  it('judges planned steps: passed, failed, skipped, stopped, not reached', () => {
    const log = new RunLog();
    const lines = [
      'XENTEST BOOT dom0 uptime=3.1',
      'XENTEST PLAN 5 a b c d e',
      'XENTEST STEP a BEGIN timeout=5s',
      'XENTEST STEP a PASS 1.00s',
      'XENTEST STEP b BEGIN timeout=5s',
      'XENTEST STEP b FAIL 5.00s timeout after 5s',
      'XENTEST STEP c SKIP after failure of b',
      'XENTEST STEP d BEGIN timeout=5s',
      'domu1| XENTEST PLAN 1 g',
      'domu1| XENTEST STEP g BEGIN timeout=5s',
      'domu1| XENTEST STEP g PASS 0.50s',
      'domu1| XENTEST INFO domu-kernel 6.1',
      'XENTEST HEARTBEAT 40.0 load=1,1,1',
    ];
    lines.forEach((l, i) => log.feed(l, i));
    const rows = log.results();
    expect(rows.map((r) => `${r.origin}:${r.step}:${r.status}`)).toEqual([
      'dom0:a:PASS',
      'dom0:b:FAIL',
      'dom0:c:SKIP',
      'dom0:d:FAIL',
      'dom0:e:FAIL',
      'domu1:g:PASS',
    ]);
    expect(rows[3].detail).toMatch(/never ended/);
    expect(rows[4].detail).toBe('not reached');
    expect(log.infos['domu1.domu-kernel']).toBe('6.1');
    expect(log.heartbeats).toBe(1);
    expect(log.origins.get('dom0')?.bootAt).toBe(0);
    const { perOrigin, total } = summarize(rows);
    expect(countsLine(total)).toBe('2 passed, 3 failed, 1 skipped');
    expect(countsLine(perOrigin.get('domu1')!)).toBe('1 passed, 0 failed');
  });

  it('keeps a guest that boots again on the same console apart', () => {
    const log = new RunLog();
    for (const l of [
      'domu1| XENTEST BOOT domu uptime=1',
      'domu1| XENTEST PLAN 1 g',
      'domu1| XENTEST STEP g BEGIN timeout=5s',
      'domu1| XENTEST STEP g FAIL 1.00s exit 1: no disk',
      'domu1| XENTEST BOOT domu uptime=1',
      'domu1| XENTEST PLAN 1 g',
      'domu1| XENTEST STEP g BEGIN timeout=5s',
    ]) {
      log.feed(l, 0);
    }
    expect(log.results().map((r) => `${r.origin}:${r.step}:${r.status}:${r.detail}`)).toEqual([
      'domu1:g:FAIL:exit 1: no disk',
      'domu1#2:g:FAIL:began and never ended (stopped here)',
    ]);
  });

  it('counts a step that ran without being planned', () => {
    const log = new RunLog();
    log.feed('XENTEST STEP late BEGIN timeout=1s', 0);
    log.feed('XENTEST STEP late PASS 0.10s', 1);
    expect(log.results()).toEqual([{ origin: 'dom0', step: 'late', status: 'PASS', detail: '', seconds: 0.1 }]);
  });
});
