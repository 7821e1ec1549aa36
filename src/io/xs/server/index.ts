// The embedded xenstored.
export { XenstoredServer, type XenstoredOptions, type XenstoredStats } from './server';
export { DEFAULT_QUOTAS, type XsQuotas } from './quotas';
