// The checkpoint of a running engine's actors, taken in one synchronous pass (a consistent cut)
// when recording is turned on in a running daemon.
import type { AnyStateMachine } from 'xstate';
import type { PersistentActor } from '../store/persistent-actor';
import type { CheckpointInfo } from './tap';

export function checkpointsOf(bus: PersistentActor<AnyStateMachine>, devices: ReadonlyMap<string, PersistentActor<AnyStateMachine>>): CheckpointInfo[] {
  const of = (actor: PersistentActor<AnyStateMachine>) => ({
    stream: actor.stream,
    version: actor.streamVersion,
    input: actor.machineInput,
    snapshot: actor.ref.getPersistedSnapshot(),
  });
  return [
    { machine: 'bus', ...of(bus) },
    ...[...devices].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)).map(([device, actor]) => ({ machine: 'vbd' as const, device, ...of(actor) })),
  ];
}
