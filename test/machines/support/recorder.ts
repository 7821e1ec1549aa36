// Records every event a root actor receives (sent from outside or by its children through
// sendBack), the way an event store would, via XState's inspection API.
import type { AnyEventObject, InspectionEvent } from 'xstate';

export class EventRecorder {
  readonly events: AnyEventObject[] = [];
  /** The recorded actor's session id; set before the actor starts. */
  rootSessionId: string | null = null;

  readonly inspect = (inspection: InspectionEvent): void => {
    if (inspection.type !== '@xstate.event') return;
    if (inspection.actorRef.sessionId !== this.rootSessionId) return;
    if (inspection.event.type.startsWith('xstate.')) return; // init and internal events
    // The store persists plain JSON: prove every event survives serialization.
    this.events.push(JSON.parse(JSON.stringify(inspection.event)) as AnyEventObject);
  };
}
