// Malformed, truncated or newer session files: one error naming the line, never a crash.
import { SessionFormatError, parseSession } from '../../src/replay';

const HEADER = JSON.stringify({ kind: 'header', format: 'xenblkd-session', version: 1, created: '2024-01-01T00:00:00.000Z', source: 'daemon' });
const START = JSON.stringify({ kind: 'start', n: 1, at: 1, process: 'daemon', pid: 10 });
const input = (n: number, extra: Record<string, unknown> = {}) =>
  JSON.stringify({ kind: 'input', n, at: 2, machine: 'vbd', device: '1/51712', stream: 'device/vbd/1/51712', event: { type: 'connection.ready' }, version: 3, from: 'a', to: 'b', intents: [], ...extra });

function errorOf(text: string, opts = {}): SessionFormatError {
  try {
    parseSession(text, opts);
  } catch (err) {
    if (err instanceof SessionFormatError) return err;
    throw err;
  }
  throw new Error('parsed without an error');
}

describe('session file parsing', () => {
  it('reads a well-formed session with its line numbers', () => {
    const s = parseSession([HEADER, START, input(2)].join('\n') + '\n');
    expect(s.header.source).toBe('daemon');
    expect(s.records.map((r) => [r.kind, r.line])).toEqual([
      ['start', 2],
      ['input', 3],
    ]);
    expect(s.truncatedLine).toBeNull();
  });

  it.each([
    ['an empty file', '', 1, /empty file/],
    ['a file that is not a session', '{"hello":1}\n', 1, /not a xenblkd session file/],
    ['a first line that is not JSON', 'xenblkd\n', 1, /first line is not JSON/],
    ['a newer format version', HEADER.replace('"version":1', '"version":2') + '\n', 1, /version 2 is newer than this xenblkd reads \(1\)/],
    ['a line that is not JSON', [HEADER, START, '{"kind":"input",'].join('\n') + '\n', 3, /not JSON/],
    ['an array instead of an object', [HEADER, '[1,2]'].join('\n') + '\n', 2, /must be a JSON object/],
    ['an unknown kind', [HEADER, '{"kind":"telemetry","n":1,"at":1}'].join('\n') + '\n', 2, /unknown record kind "telemetry"/],
    ['a missing field', [HEADER, START, input(2, { event: undefined })].join('\n') + '\n', 3, /input record: field 'event' is missing/],
    ['an event without a type', [HEADER, START, input(2, { event: { state: 4 } })].join('\n') + '\n', 3, /field 'event' must be an object with a type/],
    ['an XState internal event', [HEADER, START, input(2, { event: { type: 'xstate.stop' } })].join('\n') + '\n', 3, /not an xstate\.\* event/],
    ['an unknown machine', [HEADER, START, input(2, { machine: 'vif' })].join('\n') + '\n', 3, /field 'machine' must be one of bus, vbd, blkfront/],
    ['a bad device key', [HEADER, START, input(2, { device: '../1' })].join('\n') + '\n', 3, /field 'device' must be a device key/],
    ['a malformed intent', [HEADER, START, input(2, { intents: [{ op: 'write', path: '/a' }] })].join('\n') + '\n', 3, /field 'intents' must be a list of intents/],
    ['an unknown intent', [HEADER, START, input(2, { intents: [{ op: 'format-disk' }] })].join('\n') + '\n', 3, /intents/],
    ['a record number going back', [HEADER, START, input(1)].join('\n') + '\n', 3, /record number 1 does not follow 1/],
    ['a recovered blkfront', [HEADER, JSON.stringify({ kind: 'recovered', n: 1, at: 1, machine: 'blkfront', device: '1/2', stream: 's', persisted: { version: 0, snapshot: null, events: [] }, state: 'x', intents: [] })].join('\n') + '\n', 2, /field 'machine' must be one of bus, vbd/],
    ['a bad persisted stream', [HEADER, JSON.stringify({ kind: 'recovered', n: 1, at: 1, machine: 'bus', stream: 'bus/vbd', persisted: { version: 1, events: 'x' }, state: 'x', intents: [] })].join('\n') + '\n', 2, /persisted stream/],
    ['a bus with a device', [HEADER, JSON.stringify({ kind: 'retired', n: 1, at: 1, machine: 'bus', device: '1/2', intents: [] })].join('\n') + '\n', 2, /the bus has no 'device'/],
  ])('refuses %s, naming the line', (_what, text, line, message) => {
    const err = errorOf(text);
    expect(err.line).toBe(line);
    expect(err.message).toMatch(new RegExp(`^line ${line}: `));
    expect(err.message).toMatch(message);
    expect(err.message.split('\n')).toHaveLength(1);
  });

  it('reports a torn last line as truncated, and leaves it out when allowed', () => {
    const torn = [HEADER, START, input(2), input(3).slice(0, 40)].join('\n');
    const err = errorOf(torn);
    expect(err.line).toBe(4);
    expect(err.message).toMatch(/truncated record/);
    const s = parseSession(torn, { allowTruncated: true });
    expect(s.truncatedLine).toBe(4);
    expect(s.records).toHaveLength(2);
  });

  it('accepts a complete last line without its newline, and never calls a torn header truncated-but-fine', () => {
    expect(parseSession([HEADER, START].join('\n')).records).toHaveLength(1);
    expect(errorOf(HEADER.slice(0, 20), { allowTruncated: true }).line).toBe(1);
  });

  it('survives any garbage a file can hold without throwing anything but a format error', () => {
    let seed = 7;
    const rnd = () => (seed = (seed * 1103515245 + 12345) & 0x7fffffff) / 0x7fffffff;
    const base = [HEADER, START, input(2), input(3, { intents: [{ op: 'bind', domid: 1, port: 5 }] })].join('\n') + '\n';
    for (let i = 0; i < 300; i++) {
      const chars = base.split('');
      for (let k = 0; k < 3; k++) chars[Math.floor(rnd() * chars.length)] = String.fromCharCode(32 + Math.floor(rnd() * 95));
      try {
        parseSession(chars.join(''));
      } catch (err) {
        expect(err).toBeInstanceOf(SessionFormatError);
      }
    }
  });
});
