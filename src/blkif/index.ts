// The blkif protocol, pure: ring ABIs, back and front rings, request parsing and validation.
export * from './constants';
export * from './messages';
export * from './abi';
export * from './sring';
export * from './ring-fault';
export * from './back-ring';
export * from './front-ring';
export * from './errors';
export * from './request';
export * from './indirect';
