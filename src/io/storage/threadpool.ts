// libuv's threadpool runs the storage I/O of images on devices: with its default of 4 threads a
// ring at queue depth 32 has 4 requests on the device at a time. libuv reads UV_THREADPOOL_SIZE
// once, when the pool starts, so this must run before the process's first asynchronous fs call.
export const DEFAULT_IO_THREADS = 64;

/** Sizes the pool unless the user did (UV_THREADPOOL_SIZE in the environment wins). */
export function reserveIoThreads(threads = DEFAULT_IO_THREADS): void {
  if (process.env.UV_THREADPOOL_SIZE === undefined) process.env.UV_THREADPOOL_SIZE = String(threads);
}
