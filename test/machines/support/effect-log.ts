// Fake effect actors for machine tests: each records its start (with input) and stop, and keeps
// its sendBack so a test can answer as the real effect would.
import { fromCallback, type AnyEventObject, type EventObject } from 'xstate';

export interface EffectCall {
  readonly name: string;
  readonly input: unknown;
  readonly sendBack: (event: AnyEventObject) => void;
  stopped: boolean;
  readonly received: EventObject[];
}

export class EffectLog {
  readonly calls: EffectCall[] = [];

  actor<TInput>(name: string) {
    return fromCallback<EventObject, TInput>(({ input, sendBack, receive }) => {
      const call: EffectCall = { name, input, sendBack, stopped: false, received: [] };
      receive((event) => call.received.push(event));
      this.calls.push(call);
      return () => {
        call.stopped = true;
      };
    });
  }

  started(name: string): EffectCall[] {
    return this.calls.filter((c) => c.name === name);
  }

  running(name: string): EffectCall[] {
    return this.started(name).filter((c) => !c.stopped);
  }

  /** The one running instance of an effect; fails the test when there is not exactly one. */
  current(name: string): EffectCall {
    const running = this.running(name);
    if (running.length !== 1) {
      throw new Error(`expected one running ${name}, found ${running.length} (${this.calls.map((c) => c.name).join(', ')})`);
    }
    return running[0]!;
  }

  inputs<T>(name: string): T[] {
    return this.started(name).map((c) => c.input as T);
  }
}
