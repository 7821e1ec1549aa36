// The NBD client driver: nbd:unix:PATH, nbd:HOST:PORT and nbd:// targets as BlockImages.
export { openNbdImage, type NbdImage, type NbdLog, type NbdOptions } from './image';
export type { NbdTarget } from './connection';
export { NbdProtocolError } from './protocol';
