// qcow2, vhdx, vmdk and vpc images through a supervised qemu-storage-daemon, over NBD.
export { DEFAULT_QSD_BINARY, qsdId, qsdPaths, type QsdTarget } from './command';
export { FileQsdJournal, type QsdJournal, type QsdRecord } from './journal';
export { openQsdImage, type NbdTarget, type OpenQsdDeps } from './open';
export { isOurDaemon } from './proc';
export { QsdSupervisor, type QsdStatus, type QsdSupervisorOptions } from './supervisor';
