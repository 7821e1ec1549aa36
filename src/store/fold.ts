// Recovery by folding: a stream's events replayed through XState's pure transition(), so no action
// or effect runs while the state is rebuilt. The result is restored with createActor({ snapshot }),
// which restarts the invocations of the states it is in.
import { type AnyStateMachine, createActor, initialTransition, transition } from 'xstate';
import type { StoredEvent } from './events';

/** The first event of every stream: the machine's input, not sent to the machine. */
export const CREATED = 'xenblkd.created';

export type MachineEvent = { type: string } & Record<string, unknown>;

export function toMachineEvent(e: Pick<StoredEvent, 'type' | 'data'>): MachineEvent {
  return { ...(e.data as Record<string, unknown> | null), type: e.type };
}

export function toStoredData(event: MachineEvent): { type: string; data: Record<string, unknown> } {
  const { type, ...data } = event;
  return { type, data };
}

export class FoldError extends Error {
  constructor(
    readonly stream: string,
    readonly streamVersion: number,
    cause: unknown,
  ) {
    super(`stream ${stream}: event ${streamVersion} cannot be folded: ${(cause as Error)?.message ?? String(cause)}`);
    this.name = 'FoldError';
  }
}

/** A persisted snapshot with the input it was created from (restoring needs both). */
export interface FoldBase {
  readonly persisted: unknown;
  readonly input: unknown;
}

/**
 * Folds events onto a persisted snapshot (or onto the machine's initial state for the input in the
 * stream's CREATED event) and returns the persisted snapshot of the result with that input.
 */
export function foldEvents(
  machine: AnyStateMachine,
  stream: string,
  base: FoldBase | undefined,
  events: readonly StoredEvent[],
): FoldBase {
  let snapshot;
  let rest = events;
  let input: unknown;
  if (base !== undefined) {
    input = base.input;
    snapshot = createActor(machine, { snapshot: base.persisted as never, input: input as never }).getSnapshot();
  } else {
    const created = events[0];
    if (!created || created.type !== CREATED) throw new FoldError(stream, created?.metadata.streamVersion ?? 0, new Error(`stream does not start with ${CREATED}`));
    input = created.data;
    [snapshot] = initialTransition(machine, input as never);
    rest = events.slice(1);
  }
  for (const e of rest) {
    try {
      [snapshot] = transition(machine, snapshot, toMachineEvent(e) as never);
    } catch (err) {
      throw new FoldError(stream, e.metadata.streamVersion, err);
    }
  }
  return { persisted: machine.getPersistedSnapshot(snapshot), input };
}
