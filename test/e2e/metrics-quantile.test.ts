import { latencyQuantileUs } from '../../src/daemon/metrics';

describe('latency quantiles for /metrics', () => {
  const bounds = [1, 2, 4, 8, 16, Infinity];
  it('reports the upper bound of the bucket holding the quantile', () => {
    const h = { boundsUs: bounds, counts: [0, 10, 80, 9, 1, 0] };
    expect(latencyQuantileUs(h, 0.5)).toBe(4);
    expect(latencyQuantileUs(h, 0.9)).toBe(4);
    expect(latencyQuantileUs(h, 0.99)).toBe(8);
    expect(latencyQuantileUs(h, 1)).toBe(16);
  });
  it('has nothing to say before the first request, and a bounded figure for the open bucket', () => {
    expect(latencyQuantileUs({ boundsUs: bounds, counts: [0, 0, 0, 0, 0, 0] }, 0.5)).toBeUndefined();
    // Through JSON (the control socket) Infinity becomes null.
    expect(latencyQuantileUs({ boundsUs: [1, 2, null], counts: [0, 0, 5] }, 0.5)).toBe(2);
  });
});
