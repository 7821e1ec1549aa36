// What every verifying workload must end with: each request answered once, with the right data.
import type { WorkloadReport } from '../../../src/sim/guest';

export function expectClean(r: WorkloadReport): void {
  expect({ errors: r.errors, mismatches: r.mismatches, lost: r.lost, duplicated: r.duplicated, badOperations: r.badOperations, notes: r.notes }).toEqual({
    errors: 0,
    mismatches: 0,
    lost: 0,
    duplicated: 0,
    badOperations: 0,
    notes: [],
  });
}
