// The one error type of the xenstore layer: an errno name, as xenstored sends it on the wire.

/** Error names a xenstored may send (xs_wire.h xsd_errors, in table order). */
export const XSD_ERRNOS = [
  'EINVAL',
  'EACCES',
  'EEXIST',
  'EISDIR',
  'ENOENT',
  'ENOMEM',
  'ENOSPC',
  'EIO',
  'ENOTEMPTY',
  'ENOSYS',
  'EROFS',
  'EBUSY',
  'EAGAIN',
  'EISCONN',
  'E2BIG',
  'EPERM',
] as const;

export type XsdErrno = (typeof XSD_ERRNOS)[number];

/**
 * Wire errno names, plus three raised locally by the client: ENOTCONN (no connection: could not
 * connect, or closed), ECONNRESET (the connection was lost before the reply came, so the outcome
 * is unknown) and EPROTO (the peer broke the protocol).
 */
export type XsErrno = XsdErrno | 'ENOTCONN' | 'ECONNRESET' | 'EPROTO';

const wireNames: ReadonlySet<string> = new Set(XSD_ERRNOS);

export function isXsdErrno(name: string): name is XsdErrno {
  return wireNames.has(name);
}

export class XsError extends Error {
  readonly errno: XsErrno;

  constructor(errno: XsErrno, message?: string) {
    // No stack trace: these errors travel through promise rejections from the socket handler,
    // where a stack says nothing, and capturing it was the xenstore layer's costliest step
    // (every tryRead of a missing key, on both sides of the socket).
    const limit = Error.stackTraceLimit;
    Error.stackTraceLimit = 0;
    super(message ? `${errno}: ${message}` : errno);
    Error.stackTraceLimit = limit;
    this.errno = errno;
    this.name = 'XsError';
  }
}

export function isXsError(e: unknown, errno?: XsErrno): e is XsError {
  return e instanceof XsError && (errno === undefined || e.errno === errno);
}
