// The effects of a replay: the same named actors and actions as the live ones, which list the
// intents the live effect would carry out (same pure functions, src/effects/intents.ts) and send
// nothing back: every outcome is a recorded input. An intent that depends on an outcome (the
// realize keys depend on the opened image) is listed when that outcome is fed (see outcome()).
import { type EventObject, fromCallback } from 'xstate';
import {
  type Intent,
  backendStateIntents,
  connectIntents,
  destroyIntents,
  diskIntents,
  disconnectIntents,
  failureIntents,
  frontendStateIntents,
  realizeIntents,
  retireIntents,
  ringIntents,
  spawnIntents,
  unplugIntents,
  updateIntents,
} from '../effects/intents';
import {
  type BackendStateInput,
  type BlockDeviceConfig,
  type BlockRealized,
  type ConnectParams,
  type ConnectionInput,
  type DeviceIdentity,
  type DeviceRef,
  type DiskInput,
  type DiskResized,
  type FailureInput,
  type FrontendStateInput,
  type IdentityInput,
  type RealizeInput,
  type RingInput,
  type UpdateInput,
  deviceKey,
} from '../machines';
import { ownerKey } from './format';

type Outcome = (event: EventObject) => Intent[];

export class ReplayEffects {
  /** owner -> outcome event type -> the intents carried out before reporting it. */
  private readonly outcomes = new Map<string, Map<string, { token: object; intents: Outcome }>>();

  constructor(private readonly emit: (owner: string, intents: Intent[]) => void) {}

  /** Before an effect outcome is fed to `owner`: the intents its (live) effect carried out first. */
  outcome(owner: string, event: EventObject): void {
    const handler = this.outcomes.get(owner)?.get(event.type);
    if (handler) this.emit(owner, handler.intents(event));
  }

  /** Forgets the outcome handlers of owners whose actors were dropped (a crash). */
  forget(owner: string): void {
    this.outcomes.delete(owner);
  }

  private expect(owner: string, type: string, intents: Outcome): () => void {
    let byType = this.outcomes.get(owner);
    if (!byType) {
      byType = new Map();
      this.outcomes.set(owner, byType);
    }
    const token = {};
    byType.set(type, { token, intents });
    return () => {
      if (byType.get(type)?.token === token) byType.delete(type);
    };
  }

  private actor<TInput extends { identity: DeviceIdentity }>(
    machine: string,
    asks?: (input: TInput) => Intent[],
    onStop?: (input: TInput) => Intent[],
    outcome?: { type: string; intents: (input: TInput, event: EventObject) => Intent[] },
  ) {
    return fromCallback<EventObject, TInput>(({ input }) => {
      const owner = ownerKey(machine, deviceKey(input.identity.frontendDomid, input.identity.devid));
      if (asks) this.emit(owner, asks(input));
      const unexpect = outcome ? this.expect(owner, outcome.type, (e) => outcome.intents(input, e)) : undefined;
      return () => {
        unexpect?.();
        if (onStop) this.emit(owner, onStop(input));
      };
    });
  }

  /** The block device machine's named actors. */
  deviceActors() {
    return {
      realize: this.actor<RealizeInput<BlockDeviceConfig>>('vbd', undefined, undefined, {
        type: 'realize.done',
        intents: ({ identity, config }, e) => realizeIntents(identity, config, (e as unknown as { realized: BlockRealized }).realized.image),
      }),
      writeBackendState: this.actor<BackendStateInput>('vbd', ({ identity, state }) => backendStateIntents(identity, state)),
      connection: this.actor<ConnectionInput<BlockDeviceConfig, BlockRealized, ConnectParams>>(
        'vbd',
        ({ identity, connection }) => connectIntents(identity, connection),
        ({ identity, connection }) => disconnectIntents(identity, connection),
      ),
      reportFailure: this.actor<FailureInput>('vbd', ({ identity, message }) => failureIntents(identity, message)),
      publishUpdate: this.actor<UpdateInput>('vbd', ({ identity, keys }) => updateIntents(identity, keys)),
      unplug: this.actor<IdentityInput>('vbd', ({ identity }) => unplugIntents(identity)),
      destroy: this.actor<IdentityInput>('vbd', ({ identity }) => destroyIntents(identity)),
    };
  }

  /** The bus machine's actions. */
  busActions() {
    return {
      spawnDevice: (_: unknown, ref: DeviceRef) => this.emit('bus', spawnIntents(ref)),
      retireDevice: (_: unknown, ref: DeviceRef) => this.emit('bus', retireIntents(ref)),
    };
  }

  /** The frontend machine's named actors. */
  frontendActors() {
    return {
      writeFrontendState: this.actor<FrontendStateInput>('blkfront', ({ identity, state }) => frontendStateIntents(identity, state)),
      ring: this.actor<RingInput>('blkfront', undefined, undefined, {
        type: 'ring.ready',
        intents: ({ identity }, e) => ringIntents(identity, (e as unknown as { ring: ConnectParams }).ring),
      }),
      disk: fromCallback<EventObject, DiskInput>(({ input, receive }) => {
        const owner = ownerKey('blkfront', deviceKey(input.identity.frontendDomid, input.identity.devid));
        this.emit(owner, diskIntents(input.disk));
        receive((e) => {
          if (e.type === 'disk.resized') this.emit(owner, diskIntents((e as unknown as DiskResized).disk));
        });
      }),
    };
  }
}
