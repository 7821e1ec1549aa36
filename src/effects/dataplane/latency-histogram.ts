// A fixed log2 histogram of latencies: recording is two arithmetic steps and an increment, so it
// runs per request on the hot path without allocating.
import type { LatencyHistogramSnapshot } from '../dataplane-port';

/** Buckets: < 1 us, < 2 us, < 4 us ... < 2^30 us (~18 min), then the rest. */
const BUCKETS = 32;

export class LatencyHistogram {
  private readonly counts = new Float64Array(BUCKETS);
  private total = 0;
  private max = 0;

  record(us: number): void {
    const v = us > 0 ? us : 0;
    // Bucket i holds [2^(i-1), 2^i): the bit length of the integer part.
    const i = v < 1 ? 0 : 32 - Math.clz32(v >= 0xffffffff ? 0xffffffff : v);
    this.counts[i < BUCKETS ? i : BUCKETS - 1]++;
    this.total++;
    if (v > this.max) this.max = v;
  }

  get count(): number {
    return this.total;
  }

  get maxUs(): number {
    return this.max;
  }

  /** The upper bound of the bucket holding the q-quantile (0 <= q <= 1): within a factor of 2. */
  quantileUs(q: number): number {
    if (this.total === 0) return 0;
    const want = Math.max(1, Math.ceil(q * this.total));
    let seen = 0;
    for (let i = 0; i < BUCKETS; i++) {
      seen += this.counts[i];
      if (seen >= want) return Math.min(upperBound(i), this.max);
    }
    return this.max;
  }

  snapshot(): LatencyHistogramSnapshot {
    const boundsUs: number[] = [];
    for (let i = 0; i < BUCKETS; i++) boundsUs.push(upperBound(i));
    return { boundsUs, counts: Array.from(this.counts) };
  }
}

function upperBound(i: number): number {
  return i === BUCKETS - 1 ? Infinity : 2 ** i;
}
