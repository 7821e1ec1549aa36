// The Ceph RBD storage driver: librbd and librados through koffi.
export { openRbdImage, DEFAULT_RBD_TIMEOUT_MS, type RbdOptions, type RbdTarget } from './open';
export type { RbdImage, RbdLogger, RbdTakeover } from './image';
