// The one error type of the real Xen ports: which library call failed, with its errno.
import { errnoName } from '../libc';

export class XenDeviceError extends Error {
  constructor(
    /** The libxengnttab/libxenevtchn function, e.g. "xenevtchn_bind_interdomain". */
    readonly call: string,
    readonly errno: number,
    message: string,
  ) {
    super(message);
    this.name = 'XenDeviceError';
  }

  get code(): string {
    return errnoName(this.errno);
  }

  /** A failed open, said in one line a user can act on. */
  static open(call: string, device: string, errno: number): XenDeviceError {
    const name = errnoName(errno);
    const why =
      name === 'ENOENT' || name === 'ENODEV' || name === 'ENXIO'
        ? `no Xen here (${name})`
        : name === 'EACCES' || name === 'EPERM'
          ? `permission denied (${name}): run as root in dom0`
          : name;
    return new XenDeviceError(call, errno, `cannot open ${device}: ${why}`);
  }

  static failed(call: string, errno: number, what: string): XenDeviceError {
    return new XenDeviceError(call, errno, `${what}: ${errnoName(errno)}`);
  }
}
