// The one error type of the simulated Xen ports: an errno name (event channels, connection) or a
// GNTST_* name (grant tables) and a one-line explanation.
import { GNTST } from '../ports';
import { gntstName } from './grant-rules';

export class SimXenError extends Error {
  constructor(
    /** What was attempted, e.g. "bind_interdomain d1 port 5". */
    readonly op: string,
    /** EINVAL, ESRCH, ECONNRESET..., or GNTST_bad_gntref... */
    readonly code: string,
    detail: string,
    /** The GNTST_* status for grant failures. */
    readonly status: number | undefined = statusOf(code),
  ) {
    super(`${op}: ${code}${detail ? ` (${detail})` : ''}`);
    this.name = 'SimXenError';
  }

  static grant(op: string, status: number, detail: string): SimXenError {
    return new SimXenError(op, gntstName(status), detail, status);
  }
}

function statusOf(code: string): number | undefined {
  return code.startsWith('GNTST_') ? (GNTST as Record<string, number>)[code.slice(6)] : undefined;
}
