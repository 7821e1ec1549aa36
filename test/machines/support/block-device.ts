// Starts a block device machine with recording fake effects, plus shorthands for the events
// the effects layer would send.
import { createActor, type Actor } from 'xstate';
import { blockDeviceMachine, type BlockRealized } from '../../../src/machines/block/device-machine';
import { DEFAULT_BLOCK_BACKEND_SETTINGS, type BlockBackendSettings } from '../../../src/machines/block/config';
import { frontendRingKeys, type ConnectParams } from '../../../src/machines/block/connect-params';
import type { ImageInfo } from '../../../src/machines/block/realize-keys';
import { devicePhase } from '../../../src/machines/xenbus/describe';
import { deviceIdentity, type DeviceIdentity } from '../../../src/machines/xenbus/identity';
import { XenbusState } from '../../../src/machines/xenbus/state';
import type { XenbusDeviceInput } from '../../../src/machines/xenbus/device-machine';
import { EffectLog } from './effect-log';

export const IDENTITY: DeviceIdentity = deviceIdentity({ backendDomid: 0, frontendDomid: 1, devid: 51712 });
export const OPTIONS = { dev: 'xvda', 'device-type': 'disk', params: '/images/disk.img', mode: 'w' };
export const IMAGE: ImageInfo = {
  sizeBytes: 64 << 20,
  sectorSize: 512,
  physicalSectorSize: 512,
  readOnly: false,
  discardSupport: null,
};
export const REALIZED: BlockRealized = { image: IMAGE };
export const RING: ConnectParams = { ringPageOrder: 1, ringRefs: [8, 9], eventChannel: 17, protocol: 'x86_64-abi', persistent: true };
export const RING_KEYS = frontendRingKeys(RING);

export function provideEffects(log: EffectLog) {
  return blockDeviceMachine.provide({
    actors: {
      realize: log.actor('realize'),
      connection: log.actor('connection'),
      writeBackendState: log.actor('writeBackendState'),
      reportFailure: log.actor('reportFailure'),
      publishUpdate: log.actor('publishUpdate'),
      unplug: log.actor('unplug'),
      destroy: log.actor('destroy'),
    },
  });
}

export function deviceInput(options: Record<string, string> = OPTIONS, settings: BlockBackendSettings = DEFAULT_BLOCK_BACKEND_SETTINGS): XenbusDeviceInput<BlockBackendSettings> {
  return { identity: IDENTITY, options, settings };
}

export class BlockDeviceUnderTest {
  readonly log = new EffectLog();
  readonly machine = provideEffects(this.log);
  readonly actor: Actor<typeof this.machine>;

  constructor(input = deviceInput()) {
    this.actor = createActor(this.machine, { input });
    this.actor.start();
  }

  get phase(): string {
    return devicePhase(this.actor.getSnapshot().value);
  }

  get context() {
    return this.actor.getSnapshot().context;
  }

  get status() {
    return this.actor.getSnapshot().status;
  }

  /** Backend states the machine asked to write, in order. */
  get stateWrites(): XenbusState[] {
    return this.log.inputs<{ state: XenbusState }>('writeBackendState').map((i) => i.state);
  }

  backend(state: XenbusState, online = true): this {
    this.actor.send({ type: 'backend.changed', state, online });
    return this;
  }

  frontend(state: XenbusState, keys: Record<string, string> = {}): this {
    this.actor.send({ type: 'frontend.changed', state, keys });
    return this;
  }

  /** The realize effect reports success, through its own sendBack. */
  realized(realized: BlockRealized = REALIZED): this {
    this.log.current('realize').sendBack({ type: 'realize.done', realized });
    return this;
  }

  connectionReady(): this {
    this.log.current('connection').sendBack({ type: 'connection.ready' });
    return this;
  }

  /** Realized, frontend Initialising: the backend waits in InitWait. */
  toInitWait(): this {
    return this.frontend(XenbusState.Initialising).realized();
  }

  /** A connected device serving the ring. */
  toConnected(keys: Record<string, string> = RING_KEYS): this {
    return this.toInitWait().frontend(XenbusState.Initialised, keys).connectionReady();
  }
}
