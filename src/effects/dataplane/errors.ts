// The one error type of the dataplane layer: why a ring cannot start or had to stop.

export type DataplaneErrorReason =
  /** The ring's grants could not be mapped or its event channel bound. */
  | 'setup'
  /** The frontend broke the ring (producer overflow): the device must close. */
  | 'ring-fault'
  /** The event channel went away under a running ring. */
  | 'event-channel-lost'
  /** The publication journal cannot be used. */
  | 'journal'
  /** A bug: caught so that it costs one ring, not the process. */
  | 'internal';

export class DataplaneError extends Error {
  constructor(
    readonly reason: DataplaneErrorReason,
    message: string,
    /** The errno code behind it, when there is one (ENOSPC, EROFS...). */
    readonly code?: string,
  ) {
    super(message);
    this.name = 'DataplaneError';
  }
}
