// The statecharts and the pure helpers around them. No I/O anywhere below this directory.
export * from './parsed';
export * from './xenbus/state';
export * from './xenbus/rules';
export * from './xenbus/identity';
export * from './xenbus/realize-keys';
export * from './xenbus/device-events';
export * from './xenbus/device-machine';
export * from './xenbus/describe';
export * from './block/vdev';
export * from './block/info';
export * from './block/config';
export * from './block/connect-params';
export * from './block/realize-keys';
export * from './block/backend-info';
export * from './block/device-machine';
export * from './frontend/frontend-machine';
export * from './bus/bus-machine';
