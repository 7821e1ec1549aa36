import * as fs from 'node:fs';
import * as path from 'node:path';
import { DomainMemory } from '../../src/sim/memory';
import { tempDir } from '../support/temp';

describe('guest memory: contiguous runs', () => {
  it('finds a run again after pages came back in another order (a ring re-allocated after a driver reload)', () => {
    const dir = tempDir('xenblkd-mem-');
    const mem = DomainMemory.create(path.join(dir, 'dom.mem'), 64 * 4096, 1);
    const ring = mem.allocContiguous(16)!;
    const data = mem.allocPages(20);
    expect(ring).toEqual(Array.from({ length: 16 }, (_, i) => ring[0] + i));
    mem.freePages(ring);
    mem.freePages(data);
    const again = mem.allocContiguous(16)!;
    expect(again).toEqual(Array.from({ length: 16 }, (_, i) => again[0] + i));
    // The run left the free list: the remaining pages are all distinct from it.
    const rest = mem.allocPages(mem.freePageCount);
    expect(rest.filter((f) => again.includes(f))).toEqual([]);
    expect(mem.allocContiguous(1)).toBeUndefined();
    expect(fs.existsSync(path.join(dir, 'dom.mem'))).toBe(true);
  });
});
