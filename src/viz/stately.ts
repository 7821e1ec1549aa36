// The machine definition as JSON, the form the Stately/XState visualisers import.
import type { AnyStateMachine } from 'xstate';

export function toStatelyJson(machine: AnyStateMachine): string {
  return JSON.stringify(machine.toJSON(), null, 2) + '\n';
}
