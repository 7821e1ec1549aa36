// Is a process alive and the storage daemon we think it is? Read from /proc, so a pid reused by
// another process is never taken for ours (nor signalled).
import * as fs from 'node:fs';
import * as path from 'node:path';
import { nbdServerArg } from './command';

/** Running (zombies and dead ones are not). */
export function processAlive(pid: number): boolean {
  let stat: string;
  try {
    stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
  } catch {
    return false;
  }
  // The state follows the command name in parentheses, which may itself hold ')'.
  const state = stat.slice(stat.lastIndexOf(')') + 2, stat.lastIndexOf(')') + 3);
  return state !== 'Z' && state !== 'X' && state !== '';
}

/** Alive, a qemu-storage-daemon, and serving NBD on that socket. */
export function isOurDaemon(pid: number, socket: string, binary: string): boolean {
  if (!Number.isInteger(pid) || pid <= 1 || !processAlive(pid)) return false;
  let argv: string[];
  try {
    argv = fs.readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0');
  } catch {
    return false;
  }
  const name = path.basename(argv[0] ?? '');
  if (name !== 'qemu-storage-daemon' && name !== path.basename(binary)) return false;
  const want = nbdServerArg(socket);
  return argv.some((arg, i) => arg === want && argv[i - 1] === '--nbd-server');
}

/** Whether the daemon's NBD export is read-only (from its command line). */
export function exportReadOnly(pid: number): boolean {
  try {
    return fs.readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0').some((a) => a.startsWith('type=nbd,') && a.includes(',writable=off'));
  } catch {
    return false;
  }
}

/** Waits until check() is false (the process is gone), polling; false on timeout. */
export async function waitUntilGone(check: () => boolean, timeoutMs: number, everyMs = 20): Promise<boolean> {
  const until = Date.now() + timeoutMs;
  while (check()) {
    if (Date.now() >= until) return false;
    await new Promise((r) => setTimeout(r, everyMs));
  }
  return true;
}
