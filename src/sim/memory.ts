// A simulated guest's memory: a sparse file (one per domain) mapped shared, and a page allocator
// for the in-process guest. The first grantFrames pages hold the grant table.
import * as fs from 'node:fs';
import { ftruncate } from '../io/libc';
import { PAGE_SIZE, type GrantLayout } from '../io/sim/grant-rules';
import { mapMemoryFile, type MemoryFile } from '../io/sim/memory-file';

export class DomainMemory implements GrantLayout {
  readonly frames: number;
  private readonly freeList: Int32Array;
  private freeCount = 0;
  private readonly inUse: Uint8Array;

  private constructor(
    readonly file: MemoryFile,
    readonly grantFrames: number,
  ) {
    this.frames = file.length / PAGE_SIZE;
    this.freeList = new Int32Array(this.frames);
    this.inUse = new Uint8Array(this.frames);
    // Pop order gives ascending frames.
    for (let f = this.frames - 1; f >= grantFrames; f--) this.freeList[this.freeCount++] = f;
  }

  /** Creates (or truncates) the sparse file and maps it. */
  static create(path: string, memoryBytes: number, grantFrames: number): DomainMemory {
    if (!Number.isInteger(memoryBytes) || memoryBytes <= 0 || memoryBytes % PAGE_SIZE !== 0)
      throw new RangeError(`memory size ${memoryBytes} is not a positive multiple of ${PAGE_SIZE}`);
    if (!Number.isInteger(grantFrames) || grantFrames < 1 || grantFrames >= memoryBytes / PAGE_SIZE)
      throw new RangeError(`grant frames ${grantFrames} do not fit in ${memoryBytes} bytes`);
    const fd = fs.openSync(path, 'w+', 0o600);
    try {
      ftruncate(fd, memoryBytes);
    } finally {
      fs.closeSync(fd);
    }
    return new DomainMemory(mapMemoryFile(path), grantFrames);
  }

  get bytes(): Buffer {
    return this.file.bytes;
  }

  get freePageCount(): number {
    return this.freeCount;
  }

  allocPages(n: number): number[] {
    if (!Number.isInteger(n) || n < 0) throw new RangeError(`cannot allocate ${n} pages`);
    if (n > this.freeCount) throw new RangeError(`out of guest memory: ${n} pages wanted, ${this.freeCount} free`);
    const out: number[] = [];
    for (let i = 0; i < n; i++) {
      const f = this.freeList[--this.freeCount];
      this.inUse[f] = 1;
      out.push(f);
    }
    return out;
  }

  /** n free frames in a row (first fit), for what must be one view such as a multi-page ring. */
  allocContiguous(n: number): number[] | undefined {
    if (!Number.isInteger(n) || n < 1) throw new RangeError(`cannot allocate ${n} pages`);
    let run = 0;
    for (let f = this.grantFrames; f < this.frames; f++) {
      run = this.inUse[f] ? 0 : run + 1;
      if (run < n) continue;
      const first = f - n + 1;
      // Take the run out of the free list, keeping the order of the rest.
      let w = 0;
      for (let r = 0; r < this.freeCount; r++) {
        const g = this.freeList[r];
        if (g < first || g > f) this.freeList[w++] = g;
      }
      this.freeCount = w;
      const out: number[] = [];
      for (let g = first; g <= f; g++) {
        this.inUse[g] = 1;
        out.push(g);
      }
      return out;
    }
    return undefined;
  }

  freePages(frames: readonly number[]): void {
    for (const f of frames) if (!this.isAllocated(f)) throw new RangeError(`frame ${f} is not allocated`);
    for (const f of frames) {
      this.inUse[f] = 0;
      this.freeList[this.freeCount++] = f;
    }
  }

  isAllocated(frame: number): boolean {
    return Number.isInteger(frame) && frame >= this.grantFrames && frame < this.frames && this.inUse[frame] === 1;
  }

  /** The 4 KiB page of a data frame, without copy. */
  page(frame: number): Uint8Array {
    if (!Number.isInteger(frame) || frame < this.grantFrames || frame >= this.frames)
      throw new RangeError(`frame ${frame} is outside guest data memory [${this.grantFrames}, ${this.frames})`);
    return this.bytes.subarray(frame * PAGE_SIZE, (frame + 1) * PAGE_SIZE);
  }

  /** Unmaps and removes the file. */
  destroy(): void {
    this.file.close();
    fs.rmSync(this.file.path, { force: true });
  }
}
