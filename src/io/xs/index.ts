// The xenstore layer: wire codec, client, and (under ./server) the embedded xenstored.
export * from './client';
export { XSD_ERRNOS, isXsError, type XsdErrno } from './errors';
export { silentLogger, type XsLogger } from './logger';
export { createDuplexPair } from './duplex-pair';
export { defaultSocketPath, XENBUS_DEVICE, type XsTransportKind } from './transport';
export { XsType, XENSTORE_PAYLOAD_MAX } from './wire';
export { domainPath } from './paths';
