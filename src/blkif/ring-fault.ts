// A ring the other end has broken beyond use: its producer index claims more messages than the
// ring can hold (or moved backwards). The ring stops; the owner reports and disconnects.

export type RingFaultReason = 'request-overflow' | 'response-overflow';

export interface RingFault {
  readonly reason: RingFaultReason;
  /** One line, for logs and the event store. */
  readonly message: string;
  /** The producer index the other end published. */
  readonly producer: number;
  /** Our consumer index when it was seen. */
  readonly consumer: number;
  readonly entries: number;
}

export function ringFault(
  reason: RingFaultReason,
  producer: number,
  consumer: number,
  limit: number,
  entries: number,
): RingFault {
  const what = reason === 'request-overflow' ? 'req_prod' : 'rsp_prod';
  return {
    reason,
    producer,
    consumer,
    entries,
    message:
      `${what} ${producer} is ${(producer - consumer) | 0} past the consumer at ${consumer}, ` +
      `at most ${limit} allowed (ring of ${entries}): ring stopped`,
  };
}
