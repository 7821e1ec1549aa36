// The simulated guest's block I/O: the front ring driver and the verifying workload.
export { GuestBlockQueue, GuestQueueError, GuestRequest, type CompletionHandler, type GuestOp, type GuestQueueOptions } from './block-queue';
export { runWorkload, type ProgressHandler, type RunOptions, type WorkloadReport } from './workload';
export { DiskModel, GEN_MAX, GEN_UNKNOWN, GEN_ZERO } from './disk-model';
export { DEFAULT_WORKLOAD, parseWorkloadSpec, WorkloadSpecError, type WorkloadMix, type WorkloadPattern, type WorkloadSpec, type WorkloadSpecInput } from './workload-spec';
export { checkSector, describeSector, fillSector, isZeroSector } from './pattern';
export { Rng } from './rng';
export { diskInfoFor, type AdvertisedFeatures } from './disk-info';
