// `xenblkd replay` and `xenblkd record` as a user runs them (the built CLI): exit codes, one-line
// errors, the first divergence, --update, --json.
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { tempDir } from '../support/temp';
import { FIXTURES } from './support/fixtures';

const cli = path.join(__dirname, '../../dist/cli/main.js');
const xenblkd = (...args: string[]) => spawnSync('node', [cli, ...args], { encoding: 'utf8' });

function copyFixture(name: string): string {
  const file = path.join(tempDir(), `${name}.jsonl`);
  fs.copyFileSync(path.join(FIXTURES, `${name}.jsonl`), file);
  return file;
}

/** Edits the JSON record on `line` (1-based). */
function editLine(file: string, line: number, edit: (r: Record<string, unknown>) => void): void {
  const lines = fs.readFileSync(file, 'utf8').split('\n');
  const r = JSON.parse(lines[line - 1]) as Record<string, unknown>;
  edit(r);
  lines[line - 1] = JSON.stringify(r);
  fs.writeFileSync(file, lines.join('\n'));
}

function lineOf(file: string, match: (r: Record<string, unknown>) => boolean): number {
  const lines = fs.readFileSync(file, 'utf8').split('\n');
  return lines.findIndex((l) => l && match(JSON.parse(l) as Record<string, unknown>)) + 1;
}

const isConnectionReady = (r: Record<string, unknown>) => r.kind === 'input' && (r.event as { type: string }).type === 'connection.ready';

describe('xenblkd replay', () => {
  it('replays a recorded session: one summary line, exit 0', () => {
    const r = xenblkd('replay', path.join(FIXTURES, 'crash-recovery.jsonl'));
    expect(r.status).toBe(0);
    expect(r.stdout.trim().split('\n')).toEqual([expect.stringMatching(/^crash-recovery\.jsonl: \d+ events replayed \(bus \d+, vbd \d+\), \d+ records, 2 start\(s\), 1 crash\(es\), 2 recovery\(ies\): identical$/)]);
    expect(r.stderr).toBe('');
  });

  it('prints the first divergence with the expected and actual state and writes, exit 1', () => {
    const file = copyFixture('connect-disconnect-x86_64');
    const line = lineOf(file, isConnectionReady);
    editLine(file, line, (rec) => {
      rec.to = { active: { lifecycle: { attached: 'connecting' }, stateWriter: 'writing', unplug: 'idle', update: 'idle' } };
      rec.intents = [];
    });
    const n = (JSON.parse(fs.readFileSync(file, 'utf8').split('\n')[line - 1]) as { n: number }).n;
    const r = xenblkd('replay', file);
    expect(r.status).toBe(1);
    const out = r.stdout.split('\n');
    expect(out[0]).toMatch(/: 1 divergence\(s\)$/);
    expect(out[1]).toBe(`first divergence at event ${n} (line ${line}, input vbd:1/51712 connection.ready): state, intents differ`);
    expect(out).toContain('  expected state: active.{lifecycle.attached.connecting, stateWriter.writing, unplug.idle, update.idle}');
    expect(out).toContain('  actual state:   active.{lifecycle.attached.connected, stateWriter.writing, unplug.idle, update.idle}');
    expect(out).toContain('  expected writes: (none)');
    expect(out).toContain('  actual writes:   write /local/domain/0/backend/vbd/1/51712/state="4"');
  });

  it('--update rewrites the expected part and keeps the inputs; the file then replays identically', () => {
    const file = copyFixture('online-resize');
    const line = lineOf(file, isConnectionReady);
    const before = fs.readFileSync(file, 'utf8');
    editLine(file, line, (rec) => {
      rec.intents = [{ op: 'write', path: '/elsewhere', value: '1' }];
    });
    expect(xenblkd('replay', file).status).toBe(1);
    const u = xenblkd('replay', '--update', file);
    expect(u.status).toBe(0);
    expect(u.stdout).toMatch(/updated the expected part of 1 record\(s\)/);
    expect(fs.readFileSync(file, 'utf8')).toBe(before);
    expect(xenblkd('replay', file).status).toBe(0);
    expect(xenblkd('replay', '--update', file).stdout).toMatch(/nothing to update/);
  });

  it('--json prints one object', () => {
    const r = xenblkd('replay', '--json', path.join(FIXTURES, 'driver-reload.jsonl'));
    expect(r.status).toBe(0);
    const result = JSON.parse(r.stdout) as { identical: boolean; inputs: number; first: unknown };
    expect(result).toMatchObject({ identical: true, first: null });
    expect(result.inputs).toBeGreaterThan(40);
  });

  const firstInput = (f: string) => lineOf(f, (r) => r.kind === 'input');
  it.each([
    ['a line that is not JSON', (f: string) => editRaw(f, 5, '{"kind":"input",'), () => /line 5: not JSON/],
    ['a newer format', (f: string) => editRaw(f, 1, fs.readFileSync(f, 'utf8').split('\n')[0].replace('"version":1', '"version":3')), () => /line 1: session format version 3 is newer than this xenblkd reads \(1\)/],
    ['a record without its event', (f: string) => editLine(f, firstInput(f), (r) => delete r.event), (f: string) => new RegExp(`line ${firstInput(f)}: input record: field 'event' is missing`)],
  ])('refuses %s in one line naming it, exit 2', (_what, spoil, message) => {
    const file = copyFixture('toolstack-unplug');
    const expected = message(file);
    spoil(file);
    const r = xenblkd('replay', file);
    expect(r.status).toBe(2);
    expect(r.stdout).toBe('');
    expect(r.stderr.trim().split('\n')).toHaveLength(1);
    expect(r.stderr).toMatch(new RegExp(`^xenblkd: ${file.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}: `));
    expect(r.stderr).toMatch(expected);
  });

  it('refuses a torn last line unless told to replay what precedes it', () => {
    const file = copyFixture('driver-reload');
    const text = fs.readFileSync(file, 'utf8');
    fs.writeFileSync(file, text.slice(0, text.length - 30));
    const lines = text.split('\n').length - 1;
    const r = xenblkd('replay', file);
    expect(r.status).toBe(2);
    expect(r.stderr.trim()).toBe(`xenblkd: ${file}: line ${lines}: truncated record: the recording was cut off in the middle of this line (--allow-truncated replays what precedes it)`);
    const allowed = xenblkd('replay', '--allow-truncated', file);
    expect(allowed.stderr).toMatch(`line ${lines} is torn`);
    expect(allowed.stdout).toMatch(/identical/);
    expect(allowed.status).toBe(0);
  });

  it('refuses a missing file and a wrong command line in one line', () => {
    const missing = xenblkd('replay', '/nonexistent/s.jsonl');
    expect(missing.status).toBe(2);
    expect(missing.stderr.trim()).toBe('xenblkd: cannot read /nonexistent/s.jsonl: ENOENT');
    expect(xenblkd('replay').stderr.trim()).toBe('xenblkd: replay takes one session FILE (see --help)');
  });
});

describe('xenblkd record', () => {
  it('says so in one line when no daemon runs there', () => {
    const dir = tempDir();
    const r = xenblkd('record', '--state-dir', dir, path.join(dir, 's.jsonl'));
    expect(r.status).toBe(2);
    expect(r.stderr.trim()).toBe(`xenblkd: no daemon runs with state folder ${dir} (${path.join(dir, 'control.sock')} not found)`);
    expect(xenblkd('record', '--state-dir', dir).stderr.trim()).toBe('xenblkd: record takes a session FILE, or --stop (see --help)');
  });
});

function editRaw(file: string, line: number, text: string): void {
  const lines = fs.readFileSync(file, 'utf8').split('\n');
  lines[line - 1] = text;
  fs.writeFileSync(file, lines.join('\n'));
}

describe('recording from the command line', () => {
  it('xenblkd sim --record writes the simulated host session, start to stop', async () => {
    const dir = tempDir();
    const file = path.join(dir, 'sim.jsonl');
    const { spawn } = await import('node:child_process');
    const child = spawn('node', [cli, 'sim', '--socket', path.join(dir, 'xs.sock'), '--state-dir', path.join(dir, 'sim'), '--guests', '1', '--record', file, '--log-level', 'silent'], { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    await new Promise<void>((resolve, reject) => {
      child.stdout.on('data', (d: Buffer) => {
        out += d.toString();
        if (out.includes('sim ready')) resolve();
      });
      child.once('exit', (code) => reject(new Error(`sim exited ${code}`)));
    });
    const exited = new Promise<number | null>((resolve) => child.once('exit', resolve));
    child.kill('SIGTERM');
    expect(await exited).toBe(0);
    const { parseSession } = await import('../../src/replay');
    const session = parseSession(fs.readFileSync(file, 'utf8'));
    expect(session.header.source).toBe('sim');
    expect(session.records.map((r) => [r.kind, (r as { process?: string }).process])).toEqual([
      ['start', 'sim'],
      ['stop', 'sim'],
    ]);
  });

  it('xenblkd run --record refuses a file that is not a session, in one line, before touching anything', () => {
    const dir = tempDir();
    const notes = path.join(dir, 'notes.txt');
    fs.writeFileSync(notes, 'not a session\n');
    const r = xenblkd('run', '--state-dir', path.join(dir, 'state'), '--record', notes, '--log-level', 'silent');
    expect(r.status).toBe(2);
    expect(r.stderr.trim()).toBe(`xenblkd: ${notes}: line 1: not a xenblkd session file (the first line is not JSON); not appending to it`);
    expect(fs.readFileSync(notes, 'utf8')).toBe('not a session\n');
  });
});
