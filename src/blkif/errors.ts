// The one error type of request parsing, and the one mapping from it to a wire status.
import { BLKIF_RSP_EOPNOTSUPP, BLKIF_RSP_ERROR } from './constants';

export type BlkifRequestReason =
  /** An operation code this protocol does not define (or the reserved one). */
  | 'unknown-operation'
  /** A defined operation the device did not offer (flush, barrier, discard, indirect). */
  | 'unsupported-operation'
  /** BLKIF_DISCARD_SECURE without discard-secure. */
  | 'secure-discard-unsupported'
  /** An indirect request whose indirect_op is not read or write. */
  | 'bad-indirect-operation'
  /** nr_segments outside 1..11 (direct) or 1..max (indirect), or segments on a discard. */
  | 'bad-segment-count'
  /** A segment with first_sect > last_sect or last_sect > 7. */
  | 'bad-segment'
  /** The sector range does not fit inside the image. */
  | 'out-of-range'
  /** A write, discard or barrier/flush carrying data to a read-only device. */
  | 'read-only'
  /** Sector or segment not aligned to the logical sector size. */
  | 'misaligned'
  /** Fewer indirect page bytes than the segments need. */
  | 'short-indirect-pages';

/** A request from the frontend that cannot be executed. The guest gets a status, never a crash. */
export class BlkifRequestError extends Error {
  constructor(
    readonly reason: BlkifRequestReason,
    detail: string,
  ) {
    super(`${reason}: ${detail}`);
    this.name = 'BlkifRequestError';
  }
}

/** The response status for a refused request. */
export function statusForError(err: BlkifRequestError): typeof BLKIF_RSP_ERROR | typeof BLKIF_RSP_EOPNOTSUPP {
  switch (err.reason) {
    case 'unknown-operation':
    case 'unsupported-operation':
    case 'secure-discard-unsupported':
      return BLKIF_RSP_EOPNOTSUPP;
    default:
      return BLKIF_RSP_ERROR;
  }
}
