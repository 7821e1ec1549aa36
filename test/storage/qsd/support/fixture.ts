// Shared by the qsd tests: images made by qemu-img on a disk file system (O_DIRECT works there),
// a state folder per test, NBD I/O through libnbd's nbdcopy, and no daemon left behind.
import { execFileSync, spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { FileQsdJournal, QsdSupervisor, type QsdRecord } from '../../../../src/io/storage/qsd';
import type { QsdFormat } from '../../../../src/io/storage/target';
import type { XsLogger } from '../../../../src/io/xs/logger';

export const BASE = '/var/tmp';

export interface Env {
  readonly root: string;
  readonly dir: string;
  readonly journal: FileQsdJournal;
  readonly lines: string[];
  readonly log: XsLogger;
}

const roots: string[] = [];
const supervisors: QsdSupervisor[] = [];

export function env(): Env {
  const root = fs.mkdtempSync(path.join(BASE, 'xenblkd-qsd-'));
  roots.push(root);
  const lines: string[] = [];
  const put = (level: string) => (a: object | string, b?: string) => lines.push(`${level} ${typeof a === 'string' ? a : (b ?? '')}`);
  return { root, dir: path.join(root, 'state'), journal: new FileQsdJournal(path.join(root, 'journal.json')), lines, log: { debug: put('debug'), info: put('info'), warn: put('warn'), error: put('error') } };
}

export function supervisor(e: Env, extra: { binary?: string; dir?: string; journal?: FileQsdJournal } = {}): QsdSupervisor {
  const s = new QsdSupervisor({ dir: extra.dir ?? e.dir, journal: extra.journal ?? e.journal, log: e.log, binary: extra.binary });
  supervisors.push(s);
  return s;
}

export function image(e: Env, format: QsdFormat, sizeMiB: number, name = `disk.${format}`): string {
  const p = path.join(e.root, name);
  execFileSync('qemu-img', ['create', '-q', '-f', format, p, `${sizeMiB}M`]);
  return p;
}

export function nbdUri(r: QsdRecord): string {
  return `nbd+unix:///${r.id}?socket=${r.socket}`;
}

/** Writes random bytes at offset through the export; returns them. */
export function writeRandom(e: Env, r: QsdRecord, offset: number, len: number): Buffer {
  const data = randomBytes(len);
  const src = path.join(e.root, `src-${offset}-${len}`);
  fs.writeFileSync(src, data);
  // qemu-io's pattern file, exactly len bytes long, is the data written.
  execFileSync('qemu-io', ['-f', 'raw', nbdUri(r), '-c', `write -s ${src} ${offset} ${len}`], { stdio: 'pipe' });
  return data;
}

/** Reads len bytes at offset through the export. */
export function readBack(e: Env, r: QsdRecord, offset: number, len: number): Buffer {
  const out = path.join(e.root, 'out.bin');
  execFileSync('nbdcopy', ['--synchronous', nbdUri(r), out], { stdio: 'pipe' });
  const all = fs.readFileSync(out);
  fs.rmSync(out);
  return all.subarray(offset, offset + len);
}

/** qemu-img check exit status and output (0: clean; 63: the format has no check). */
export function check(p: string, format: QsdFormat): { status: number | null; out: string } {
  const r = spawnSync('qemu-img', ['check', '-f', format, p], { encoding: 'utf8' });
  return { status: r.status, out: `${r.stdout}${r.stderr}`.trim() };
}

/** Pids of the qemu-storage-daemons whose command line mentions text. */
export function daemonsNaming(text: string): number[] {
  const pids: number[] = [];
  for (const d of fs.readdirSync('/proc')) {
    if (!/^\d+$/.test(d)) continue;
    try {
      const argv = fs.readFileSync(`/proc/${d}/cmdline`, 'utf8');
      const stat = fs.readFileSync(`/proc/${d}/stat`, 'utf8');
      if (stat.slice(stat.lastIndexOf(')') + 2).startsWith('Z')) continue;
      if (argv.startsWith('/usr/bin/qemu-storage-daemon\0') && argv.includes(text)) pids.push(Number(d));
    } catch {
      // gone meanwhile
    }
  }
  return pids;
}

export async function until(what: string, cond: () => boolean, timeoutMs = 5000): Promise<number> {
  const t0 = Date.now();
  while (!cond()) {
    if (Date.now() - t0 > timeoutMs) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 10));
  }
  return Date.now() - t0;
}

/** After each test: supervisors closed, every daemon under a test folder killed, folders gone. */
export async function cleanup(): Promise<void> {
  for (const s of supervisors.splice(0)) s.close();
  for (const root of roots.splice(0)) {
    for (const pid of daemonsNaming(root)) {
      try {
        process.kill(pid, 'SIGKILL');
      } catch {
        // already gone
      }
    }
    await until('test daemons to end', () => daemonsNaming(root).length === 0);
    fs.rmSync(root, { recursive: true, force: true });
  }
}
