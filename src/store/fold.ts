// Recovery by folding: a stream's events replayed through the machine's pure transition, so no
// action or effect runs while the state is rebuilt. The result is restored with createActor({ snapshot }),
// which restarts the invocations of the states it is in.
import { type AnyStateMachine, createActor } from 'xstate';
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
  // Nothing after the snapshot: it is the state (no actor made just to hand it back).
  if (base !== undefined && events.length === 0) return base;
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
    rest = events.slice(1);
  }
  const scope = inertScope(machine, input);
  snapshot ??= machine.getInitialSnapshot(scope as never, input as never);
  for (const e of rest) {
    try {
      snapshot = machine.transition(snapshot as never, toMachineEvent(e) as never, scope as never);
    } catch (err) {
      throw new FoldError(stream, e.metadata.streamVersion, err);
    }
  }
  return { persisted: machine.getPersistedSnapshot(snapshot as never), input };
}

/**
 * What XState's pure transition() builds for every call, built once per fold: an actor scope
 * whose actions are collected nowhere (nothing runs). transition() also creates a throwaway actor
 * without input on each call, which made folding cost a millisecond an event.
 */
function inertScope(machine: AnyStateMachine, input: unknown) {
  const self = createActor(machine, { input: input as never });
  return {
    self,
    defer: () => undefined,
    id: '',
    logger: () => undefined,
    sessionId: '',
    stopChild: () => undefined,
    system: self.system,
    emit: () => undefined,
    actionExecutor: () => undefined,
  };
}
