// The session file as the recorder writes it: buffered per tick, appended to across restarts,
// repaired after a torn write, refused when it is not a session of this version.
import * as fs from 'node:fs';
import * as path from 'node:path';
import { RecorderError, RecordingSwitch, SessionRecorder, parseSession } from '../../src/replay';
import { tempDir } from '../support/temp';

const tick = () => new Promise((r) => setImmediate(r));
const lines = (file: string) => fs.readFileSync(file, 'utf8').split('\n').filter(Boolean);

describe('session recorder', () => {
  it('writes the header at once and the records on the next tick, in one piece', async () => {
    const file = path.join(tempDir(), 's.jsonl');
    const rec = SessionRecorder.open(file, { source: 'test', description: 'd', clock: () => 42 });
    expect(lines(file)).toHaveLength(1);
    rec.write({ kind: 'start', process: 'daemon', pid: 1 });
    rec.write({ kind: 'detach', process: 'daemon' });
    expect(lines(file)).toHaveLength(1);
    await tick();
    const s = parseSession(fs.readFileSync(file, 'utf8'));
    expect(s.header).toMatchObject({ format: 'xenblkd-session', version: 1, source: 'test', description: 'd' });
    expect(s.records.map((r) => [r.kind, r.n, r.at])).toEqual([
      ['start', 1, 42],
      ['detach', 2, 42],
    ]);
    rec.close();
  });

  it('appends to an existing session, numbering on, and cuts a torn last line first', async () => {
    const file = path.join(tempDir(), 's.jsonl');
    const first = SessionRecorder.open(file, { source: 'daemon' });
    first.write({ kind: 'start', process: 'daemon', pid: 1 });
    first.close();
    // A recorder killed in the middle of a write.
    fs.appendFileSync(file, '{"kind":"input","n":2,"at":5,"mach');
    expect(() => parseSession(fs.readFileSync(file, 'utf8'))).toThrow(/line 3: truncated record/);
    const second = SessionRecorder.open(file, { source: 'daemon' });
    second.write({ kind: 'start', process: 'daemon', pid: 2 });
    second.close();
    const s = parseSession(fs.readFileSync(file, 'utf8'));
    expect(s.records.map((r) => [r.kind, r.n, (r as { pid?: number }).pid])).toEqual([
      ['start', 1, 1],
      ['start', 2, 2],
    ]);
    expect(lines(file).filter((l) => l.includes('"header"'))).toHaveLength(1);
  });

  it('refuses to append to a file that is not a session, or of another version, naming it', () => {
    const dir = tempDir();
    const notes = path.join(dir, 'notes.txt');
    fs.writeFileSync(notes, 'my notes\n');
    expect(() => SessionRecorder.open(notes, { source: 'daemon' })).toThrow(RecorderError);
    expect(() => SessionRecorder.open(notes, { source: 'daemon' })).toThrow(`${notes}: line 1: not a xenblkd session file (the first line is not JSON); not appending to it`);
    expect(fs.readFileSync(notes, 'utf8')).toBe('my notes\n');
    const newer = path.join(dir, 'newer.jsonl');
    fs.writeFileSync(newer, JSON.stringify({ kind: 'header', format: 'xenblkd-session', version: 9, created: 'x', source: 'daemon' }) + '\n');
    expect(() => SessionRecorder.open(newer, { source: 'daemon' })).toThrow(/version 9 is newer/);
    expect(() => SessionRecorder.open(path.join(dir, 'no/such/dir/s.jsonl'), { source: 'daemon' })).toThrow(/cannot open session file .*ENOENT/);
  });

  it('reports a device that cannot take the file as a recorder error', () => {
    expect(() => SessionRecorder.open('/dev/full', { source: 'daemon' })).toThrow(/cannot record into \/dev\/full: ENOSPC/);
  });

  it('groups what the stopping actors asked by owner, for the process that stops', async () => {
    const file = path.join(tempDir(), 's.jsonl');
    const rec = SessionRecorder.open(file, { source: 'world' });
    const daemon = new RecordingSwitch('daemon');
    const sim = new RecordingSwitch('sim');
    daemon.attach(rec);
    sim.attach(rec);
    daemon.processStarted();
    sim.processStarted();
    daemon.intents('vbd', '1/51712', [{ op: 'unbind', domid: 1, port: 5 }]);
    sim.intents('blkfront', '1/51712', [{ op: 'write', path: '/x', value: '1' }]);
    daemon.processStopped();
    sim.retired('blkfront', '1/51712');
    daemon.detach();
    sim.detach();
    rec.close();
    const s = parseSession(fs.readFileSync(file, 'utf8'));
    expect(s.records.map((r) => r.kind)).toEqual(['start', 'start', 'stop', 'retired', 'detach']);
    expect(s.records[2]).toMatchObject({ process: 'daemon', intents: { 'vbd:1/51712': [{ op: 'unbind', domid: 1, port: 5 }] } });
    expect(s.records[3]).toMatchObject({ machine: 'blkfront', intents: [{ op: 'write', path: '/x', value: '1' }] });
  });

  it('records nothing, and costs one check, while detached', async () => {
    const file = path.join(tempDir(), 's.jsonl');
    const rec = SessionRecorder.open(file, { source: 'daemon' });
    const sw = new RecordingSwitch('daemon');
    sw.processStarted();
    expect(sw.recording).toBe(false);
    sw.intents('bus', undefined, [{ op: 'spawn', device: '1/2' }]);
    sw.created({ machine: 'bus', stream: 'bus/vbd', input: {}, state: 'watching' });
    sw.attach(rec, () => [{ machine: 'bus', stream: 'bus/vbd', version: 3, input: { backendDomid: 0 }, snapshot: { value: 'watching' } }]);
    expect(sw.recording).toBe(true);
    expect(() => sw.attach(rec)).toThrow(/already recording/);
    sw.detach();
    rec.close();
    expect(parseSession(fs.readFileSync(file, 'utf8')).records.map((r) => r.kind)).toEqual(['attach', 'checkpoint', 'detach']);
  });
});
