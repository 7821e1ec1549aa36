// What the guest knows about its disk's content: per sector, the generation last written (or
// zeros, or unknown), writes in flight, and when the last write finished. Kept across workload
// runs, so a later run (a full read pass) checks what earlier runs wrote.

export const GEN_ZERO = 0xfffffffe;
export const GEN_UNKNOWN = 0xffffffff;
/** Generations 1..GEN_MAX are written data; 0 is the disk's initial content. */
export const GEN_MAX = 0xfffffffd;

export class DiskModel {
  readonly gen: Uint32Array;
  /** Writes and discards in flight per sector. */
  readonly busy: Uint16Array;
  /** The request serial counter when the last write of the sector finished. */
  readonly lastDone: Float64Array;
  /** Next request serial (every request gets one at submission). */
  serial = 1;
  private lastGen = 0;

  constructor(
    readonly start: number,
    readonly sectors: number,
    /** What the disk holds before any write: zeros (a fresh sparse image) or unknown. */
    readonly initial: 'zero' | 'unknown' = 'zero',
  ) {
    if (!Number.isSafeInteger(start) || start < 0 || !Number.isSafeInteger(sectors) || sectors <= 0) {
      throw new RangeError(`disk model of ${sectors} sectors at ${start}`);
    }
    this.gen = new Uint32Array(sectors);
    if (initial === 'unknown') this.gen.fill(GEN_UNKNOWN);
    this.busy = new Uint16Array(sectors);
    this.lastDone = new Float64Array(sectors);
  }

  nextGeneration(): number {
    this.lastGen = this.lastGen >= GEN_MAX ? 1 : this.lastGen + 1;
    return this.lastGen;
  }

  covers(sector: number, n: number): boolean {
    return sector >= this.start && sector + n <= this.start + this.sectors;
  }
}
