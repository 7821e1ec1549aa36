// The programs each driver's figures need, and the Debian package that installs each.
import * as fs from 'node:fs';
import * as path from 'node:path';

export type BenchDriver = 'file' | 'nbd' | 'qcow2' | 'rbd';
export const BENCH_DRIVERS: readonly BenchDriver[] = ['file', 'nbd', 'qcow2', 'rbd'];

const PACKAGE: Readonly<Record<string, string>> = {
  fio: 'fio',
  'qemu-nbd': 'qemu-utils',
  'qemu-img': 'qemu-utils',
  'qemu-storage-daemon': 'qemu-system-common qemu-block-extra',
  'ceph-mon': 'ceph-mon',
  'ceph-osd': 'ceph-osd',
  ceph: 'ceph-common',
  rbd: 'ceph-common',
  monmaptool: 'ceph-common',
};

const NEEDS: Readonly<Record<BenchDriver, readonly string[]>> = {
  file: ['fio'],
  nbd: ['qemu-nbd', 'fio'],
  qcow2: ['qemu-img', 'qemu-storage-daemon', 'fio'],
  rbd: ['ceph-mon', 'ceph-osd', 'ceph', 'monmaptool', 'rbd'],
};

/** A program the bench needs is not installed: the message names the package. */
export class MissingToolError extends Error {
  constructor(readonly tool: string, readonly pkg: string) {
    super(`${tool} is not installed: apt-get install ${pkg} (or scripts/install-test-deps.sh)`);
    this.name = 'MissingToolError';
  }
}

export function findProgram(name: string, searchPath = process.env.PATH ?? ''): string | null {
  for (const dir of searchPath.split(':')) {
    if (!dir) continue;
    const file = path.join(dir, name);
    try {
      fs.accessSync(file, fs.constants.X_OK);
      return file;
    } catch {
      // not in this folder
    }
  }
  return null;
}

/** Throws MissingToolError for the first program a driver in the list needs and this machine lacks. */
export function checkTools(drivers: readonly BenchDriver[], searchPath?: string): void {
  for (const d of drivers) {
    for (const tool of NEEDS[d]) {
      if (findProgram(tool, searchPath) === null) throw new MissingToolError(tool, PACKAGE[tool] ?? tool);
    }
  }
}
