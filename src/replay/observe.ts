// Turns XState inspection into transitions of one root actor: the event it processed (sent from
// outside or by its children), the state value before and after. PersistentActor does the same
// for persisted machines; this serves the others (simulated frontends).
import type { AnyActorRef, InspectionEvent } from 'xstate';

export type ObservedEvent = { readonly type: string } & Record<string, unknown>;

export class TransitionObserver {
  private root: AnyActorRef | undefined;
  private last: unknown;

  constructor(private readonly onTransition: (event: ObservedEvent, from: unknown, to: unknown) => void) {}

  readonly inspect = (ev: InspectionEvent): void => {
    if (ev.type !== '@xstate.snapshot' || ev.actorRef !== this.root) return;
    const event = ev.event as ObservedEvent;
    if (event.type.startsWith('xstate.')) return;
    const to = (ev.snapshot as unknown as { value: unknown }).value;
    const from = this.last;
    this.last = to;
    this.onTransition(event, from, to);
  };

  /** Call with the actor created with `inspect`, before starting it. */
  bind(actor: AnyActorRef): void {
    this.root = actor;
    this.last = (actor.getSnapshot() as { value: unknown }).value;
  }
}
