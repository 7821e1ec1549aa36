// koffi bindings to librados.so.2 and librbd.so.1, loaded on first use. Handles (cluster, ioctx,
// image) are koffi pointers, made once per open; the per-request calls take completions and
// buffer addresses as plain numbers (uintptr_t) so that issuing I/O creates no pointer objects.
import koffi = require('koffi');
import { StorageError } from '../errors';

type Fn = ReturnType<koffi.LibraryHandle['func']>;

export const RADOS_LIBRARY = 'librados.so.2';
export const RBD_LIBRARY = 'librbd.so.1';

/** rbd_set_image_notification: EVENT_TYPE_EVENTFD. */
export const EVENT_TYPE_EVENTFD = 2;
/** RBD_FEATURE_EXCLUSIVE_LOCK (include/rbd/features.h). */
export const RBD_FEATURE_EXCLUSIVE_LOCK = 1n << 2n;
/** rbd_lock_mode_t RBD_LOCK_MODE_EXCLUSIVE. */
export const RBD_LOCK_MODE_EXCLUSIVE = 0;
/** sizeof(rbd_image_info_t) on 64-bit Linux; obj_size at offset 8. */
export const RBD_IMAGE_INFO_SIZE = 160;

export interface RbdLib {
  // librados
  create2: Fn;
  confReadFile: Fn;
  confSet: Fn;
  confGet: Fn;
  connect: Fn;
  shutdown: Fn;
  getInstanceId: Fn;
  getAddrs: Fn;
  ioctxCreate: Fn;
  ioctxSetNamespace: Fn;
  ioctxDestroy: Fn;
  // librbd: open and metadata (blocking: called through .async)
  open: Fn;
  openReadOnly: Fn;
  close: Fn;
  getSize: Fn;
  stat: Fn;
  getFeatures: Fn;
  lockGetOwners: Fn;
  lockGetOwnersCleanup: Fn;
  lockBreak: Fn;
  updateWatch: Fn;
  updateUnwatch: Fn;
  setImageNotification: Fn;
  // librbd: the dataplane (non-blocking)
  aioCreateCompletion: Fn;
  aioRead: Fn;
  aioWrite: Fn;
  aioDiscard: Fn;
  aioWriteZeroes: Fn | null;
  aioFlush: Fn;
  aioGetArg: Fn;
  aioGetReturnValue: Fn;
  aioRelease: Fn;
  pollIoEvents: Fn;
  // libc
  eventfd: Fn;
  read: Fn;
  closeFd: Fn;
  free: Fn;
}

/**
 * The update watch callback type (rbd_update_callback_t). koffi's type names are per process,
 * while this module may be loaded more than once in one (test runners): declared once, found by
 * name after that.
 */
function updateCallbackType(): ReturnType<typeof koffi.proto> {
  try {
    return koffi.type('rbd_update_callback_t') as ReturnType<typeof koffi.proto>;
  } catch {
    return koffi.proto('void rbd_update_callback_t(void *arg)');
  }
}
export const UpdateCallback = updateCallbackType();

const libs = new Map<string, RbdLib>();

function load(path: string, pkg: string): koffi.LibraryHandle {
  try {
    return koffi.load(path);
  } catch (e) {
    const why = (e as Error).message.split('\n')[0];
    throw new StorageError('ELIBACC', `cannot load ${path} (${why}): install the Debian package ${pkg}`);
  }
}

/** Binds librados and librbd; a missing library is a one-line StorageError naming the package. */
export function rbdLib(radosPath = RADOS_LIBRARY, rbdPath = RBD_LIBRARY): RbdLib {
  const key = `${radosPath}\0${rbdPath}`;
  let lib = libs.get(key);
  if (lib) return lib;
  const r = load(radosPath, 'librados2');
  const b = load(rbdPath, 'librbd1');
  const c = koffi.load('libc.so.6');
  let aioWriteZeroes: Fn | null = null;
  try {
    aioWriteZeroes = b.func(
      'int rbd_aio_write_zeroes(void *image, uint64_t off, size_t len, uintptr_t c, int zero_flags, int op_flags)',
    );
  } catch {
    // librbd before Octopus: no write-zeroes, the capability says so.
  }
  lib = {
    create2: r.func('int rados_create2(_Out_ void **cluster, const char *clustername, const char *name, uint64_t flags)'),
    confReadFile: r.func('int rados_conf_read_file(void *cluster, const char *path)'),
    confSet: r.func('int rados_conf_set(void *cluster, const char *option, const char *value)'),
    confGet: r.func('int rados_conf_get(void *cluster, const char *option, _Out_ uint8_t *buf, size_t len)'),
    connect: r.func('int rados_connect(void *cluster)'),
    shutdown: r.func('void rados_shutdown(void *cluster)'),
    getInstanceId: r.func('uint64_t rados_get_instance_id(void *cluster)'),
    getAddrs: r.func('int rados_getaddrs(void *cluster, _Out_ char **addrs)'),
    ioctxCreate: r.func('int rados_ioctx_create(void *cluster, const char *pool, _Out_ void **ioctx)'),
    ioctxSetNamespace: r.func('void rados_ioctx_set_namespace(void *ioctx, const char *nspace)'),
    ioctxDestroy: r.func('void rados_ioctx_destroy(void *ioctx)'),
    open: b.func('int rbd_open(void *io, const char *name, _Out_ void **image, const char *snap)'),
    openReadOnly: b.func('int rbd_open_read_only(void *io, const char *name, _Out_ void **image, const char *snap)'),
    close: b.func('int rbd_close(void *image)'),
    getSize: b.func('int rbd_get_size(void *image, _Out_ uint64_t *size)'),
    stat: b.func('int rbd_stat(void *image, _Out_ uint8_t *info, size_t infosize)'),
    getFeatures: b.func('int rbd_get_features(void *image, _Out_ uint64_t *features)'),
    lockGetOwners: b.func('int rbd_lock_get_owners(void *image, _Out_ int *mode, void **owners, _Inout_ size_t *max)'),
    lockGetOwnersCleanup: b.func('void rbd_lock_get_owners_cleanup(void **owners, size_t count)'),
    lockBreak: b.func('int rbd_lock_break(void *image, int mode, const char *owner)'),
    updateWatch: b.func('int rbd_update_watch(void *image, _Out_ uint64_t *handle, rbd_update_callback_t *cb, void *arg)'),
    updateUnwatch: b.func('int rbd_update_unwatch(void *image, uint64_t handle)'),
    setImageNotification: b.func('int rbd_set_image_notification(void *image, int fd, int type)'),
    aioCreateCompletion: b.func('int rbd_aio_create_completion(uintptr_t arg, void *cb, void *out)'),
    aioRead: b.func('int rbd_aio_read(void *image, uint64_t off, size_t len, uintptr_t buf, uintptr_t c)'),
    aioWrite: b.func('int rbd_aio_write(void *image, uint64_t off, size_t len, uintptr_t buf, uintptr_t c)'),
    aioDiscard: b.func('int rbd_aio_discard(void *image, uint64_t off, uint64_t len, uintptr_t c)'),
    aioWriteZeroes,
    aioFlush: b.func('int rbd_aio_flush(void *image, uintptr_t c)'),
    aioGetArg: b.func('uintptr_t rbd_aio_get_arg(uintptr_t c)'),
    aioGetReturnValue: b.func('intptr_t rbd_aio_get_return_value(uintptr_t c)'),
    aioRelease: b.func('void rbd_aio_release(uintptr_t c)'),
    pollIoEvents: b.func('int rbd_poll_io_events(void *image, void *comps, int numcomp)'),
    eventfd: c.func('int eventfd(unsigned int initval, int flags)'),
    read: c.func('intptr_t read(int fd, void *buf, size_t n)'),
    closeFd: c.func('int close(int fd)'),
    free: c.func('void free(void *p)'),
  };
  libs.set(key, lib);
  return lib;
}

/** Runs a blocking librados/librbd call on a worker thread: the event loop never waits. */
export function callAsync<T = number>(fn: Fn, ...args: unknown[]): Promise<T> {
  return new Promise<T>((resolve, reject) => {
    (fn.async as (...a: unknown[]) => void)(...args, (err: unknown, res: T) => (err ? reject(err) : resolve(res)));
  });
}
