// Whether a file lives in memory (tmpfs, ramfs, hugetlbfs): there a read or write is a memcpy
// that never waits for a device, so the dataplane issues it inline on the event loop instead of
// paying two thread hand-offs per request through libuv's threadpool.
import * as fs from 'node:fs';

/** statfs f_type values (linux/magic.h). */
const MEMORY_FS: ReadonlyMap<number, string> = new Map([
  [0x01021994, 'tmpfs'],
  [0x858458f6, 'ramfs'],
  [0x958458f6, 'hugetlbfs'],
]);

/** The memory file system's name, or null for anything else (or when statfs fails). */
export function memoryFileSystem(path: string): string | null {
  try {
    return MEMORY_FS.get(fs.statfsSync(path).type) ?? null;
  } catch {
    return null;
  }
}
