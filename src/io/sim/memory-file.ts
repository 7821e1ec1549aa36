// A simulated domain's memory: one file (under /dev/shm) mapped MAP_SHARED, so the host process
// and the daemon touch the same pages and the memory outlives either's crash.
import * as fs from 'node:fs';
import { MAP_SHARED, PROT_READ, PROT_WRITE, mmap, munmap } from '../libc';

export interface MemoryFile {
  readonly path: string;
  readonly fd: number;
  readonly address: bigint;
  readonly length: number;
  /** The whole memory, without copy. */
  readonly bytes: Buffer;
  close(): void;
}

/** Maps an existing memory file in full. */
export function mapMemoryFile(path: string): MemoryFile {
  const fd = fs.openSync(path, 'r+');
  try {
    const length = fs.fstatSync(fd).size;
    if (length === 0 || length % 4096 !== 0) throw new Error(`${path}: size ${length} is not a whole number of pages`);
    const m = mmap(length, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    let closed = false;
    return {
      path,
      fd,
      address: m.address,
      length,
      bytes: Buffer.from(m.buffer),
      close() {
        if (closed) return;
        closed = true;
        munmap(m.address, length);
        fs.closeSync(fd);
      },
    };
  } catch (e) {
    fs.closeSync(fd);
    throw e;
  }
}
