// Real state-folder faults for the store tests: a small tmpfs filled to the last byte, a
// read-only bind mount, and damaged LevelDB files of each kind.
import { execFileSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';

/** Mounts a tmpfs of the given size on dir (created); returns the unmount. */
export function mountTmpfs(dir: string, bytes: number): () => void {
  fs.mkdirSync(dir, { recursive: true });
  execFileSync('mount', ['-t', 'tmpfs', '-o', `size=${bytes}`, 'tmpfs', dir]);
  return () => execFileSync('umount', ['-l', dir]);
}

/** Fills the file system holding dir until not one more byte fits; returns the filler file. */
export function fillToLastByte(dir: string): string {
  const file = path.join(dir, `filler-${process.pid}-${Date.now()}`);
  const fd = fs.openSync(file, 'w');
  const buf = Buffer.alloc(1 << 20);
  let chunk = buf.length;
  try {
    while (chunk >= 1) {
      try {
        fs.writeSync(fd, buf, 0, chunk);
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code !== 'ENOSPC') throw err;
        chunk >>= 1;
      }
    }
  } finally {
    fs.closeSync(fd);
  }
  return file;
}

/** Makes dir read-only through a bind mount of itself; returns the way back to read-write. */
export function bindReadOnly(dir: string): () => void {
  execFileSync('mount', ['--bind', dir, dir]);
  execFileSync('mount', ['-o', 'remount,ro,bind', dir]);
  let mounted = true;
  return () => {
    if (mounted) execFileSync('umount', [dir]);
    mounted = false;
  };
}

export type DamageKind = 'corrupt' | 'truncate' | 'delete';
export type LevelFileKind = 'ldb' | 'log' | 'MANIFEST' | 'CURRENT';

/** The newest file of a kind in a LevelDB folder. */
export function levelFile(dir: string, kind: LevelFileKind): string | undefined {
  const names = fs.readdirSync(dir).filter((n) => (kind === 'CURRENT' ? n === 'CURRENT' : kind === 'MANIFEST' ? n.startsWith('MANIFEST-') : n.endsWith(`.${kind}`)));
  names.sort();
  const name = names.filter((n) => fs.statSync(path.join(dir, n)).size > 0).pop() ?? names.pop();
  return name && path.join(dir, name);
}

/** Flips 64 bytes in the middle of the file, truncates it to half, or deletes it. */
export function damage(file: string, how: DamageKind): void {
  if (how === 'delete') {
    fs.rmSync(file);
    return;
  }
  const size = fs.statSync(file).size;
  if (how === 'truncate') {
    fs.truncateSync(file, Math.floor(size / 2));
    return;
  }
  const fd = fs.openSync(file, 'r+');
  try {
    const at = Math.max(0, Math.floor(size / 2) - 32);
    const n = Math.min(64, size - at);
    const bytes = Buffer.alloc(n);
    fs.readSync(fd, bytes, 0, n, at);
    for (let i = 0; i < n; i++) bytes[i] ^= 0xff;
    fs.writeSync(fd, bytes, 0, n, at);
  } finally {
    fs.closeSync(fd);
  }
}
