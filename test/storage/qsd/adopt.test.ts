// A stand-in xenblkd (a child process running the supervisor) is SIGKILLed with its whole
// process group: the storage daemon lives on, the next supervisor adopts it (same pid, no second
// daemon), the data is intact, and an adopted daemon that dies is restarted (found by polling).
import { spawn } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import type { QsdRecord } from '../../../src/io/storage/qsd';
import { check, cleanup, daemonsNaming, env, image, readBack, supervisor, until, writeRandom, type Env } from './support/fixture';

afterEach(cleanup);

const CHILD = path.join(__dirname, 'support', 'supervise-child.js');

/** Runs the stand-in in its own process group; resolves with its record once it serves. */
function standIn(e: Env, p: string): Promise<{ pid: number; record: QsdRecord }> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [CHILD, e.dir, path.join(e.root, 'journal.json'), 'qcow2', p], { detached: true, stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    let err = '';
    child.stdout.on('data', (d: Buffer) => {
      out += d.toString();
      if (out.includes('\n')) resolve({ pid: child.pid!, record: JSON.parse(out) as QsdRecord });
    });
    child.stderr.on('data', (d: Buffer) => (err += d.toString()));
    child.on('exit', (code) => reject(new Error(`stand-in exited ${code}: ${err}`)));
  });
}

test('SIGKILL of the supervising process group: the daemon lives on and is adopted with its data', async () => {
  const e = env();
  const p = image(e, 'qcow2', 32);
  const { pid, record } = await standIn(e, p);
  const data = writeRandom(e, record, 3 * 1024 * 1024, 512 * 1024);

  process.kill(-pid, 'SIGKILL');
  await until('the stand-in to die', () => !fs.existsSync(`/proc/${pid}`) || fs.readFileSync(`/proc/${pid}/stat`, 'utf8').includes(') Z'));
  // The daemon is in its own session: untouched.
  await new Promise((r) => setTimeout(r, 300));
  expect(daemonsNaming(p)).toEqual([record.pid]);
  const sid = Number(fs.readFileSync(`/proc/${record.pid}/stat`, 'utf8').split(') ')[1]!.split(' ')[3]);
  expect(sid).toBe(record.pid);

  const s = supervisor(e);
  const { adopted, restarted } = await s.adoptAll();
  expect(adopted).toEqual([record]);
  expect(restarted).toEqual([]);
  expect(daemonsNaming(p)).toEqual([record.pid]);
  expect((await s.ensure({ driver: 'qsd', format: 'qcow2', path: p }, false)).pid).toBe(record.pid);
  expect(readBack(e, record, 3 * 1024 * 1024, 512 * 1024).equals(data)).toBe(true);

  // An adopted daemon is no child of ours: its death is found by polling /proc.
  process.kill(record.pid, 'SIGKILL');
  const took = await until('the adopted daemon restarted', () => {
    const now = s.record(record.id);
    return now !== undefined && now.pid !== record.pid && daemonsNaming(p).length === 1 && fs.existsSync(now.socket);
  });
  expect(took).toBeLessThan(1500);
  const again = s.record(record.id)!;
  expect(daemonsNaming(p)).toEqual([again.pid]);
  expect(readBack(e, again, 3 * 1024 * 1024, 512 * 1024).equals(data)).toBe(true);
  await s.stop(record.id);
  expect(check(p, 'qcow2').status).toBe(0);
});

test('a recorded daemon that died while no supervisor ran is started again by adoptAll', async () => {
  const e = env();
  const p = image(e, 'qcow2', 8);
  const { pid, record } = await standIn(e, p);
  const data = writeRandom(e, record, 0, 64 * 1024);
  process.kill(-pid, 'SIGKILL');
  process.kill(record.pid, 'SIGKILL');
  await until('the daemon to die', () => daemonsNaming(p).length === 0);

  const s = supervisor(e);
  const { adopted, restarted } = await s.adoptAll();
  expect(adopted).toEqual([]);
  expect(restarted.map((r) => r.id)).toEqual([record.id]);
  expect(daemonsNaming(p)).toEqual([restarted[0]!.pid]);
  expect(readBack(e, restarted[0]!, 0, 64 * 1024).equals(data)).toBe(true);
  // close(): supervision ends, the daemon keeps serving for the next xenblkd.
  s.close();
  await new Promise((r) => setTimeout(r, 200));
  expect(daemonsNaming(p)).toEqual([restarted[0]!.pid]);
  const s2 = supervisor(e);
  expect((await s2.adoptAll()).adopted.map((r) => r.pid)).toEqual([restarted[0]!.pid]);
  await s2.stop(record.id);
  expect(check(p, 'qcow2').status).toBe(0);
});
