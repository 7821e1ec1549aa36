// The blkfront-like frontend, given/when/then (Linux drivers/block/xen-blkfront.c).
import { createActor } from 'xstate';
import { frontendMachine, type FrontendSettings, type RingInput } from '../../src/machines/frontend/frontend-machine';
import { backendKeysForRealize } from '../../src/machines/block/realize-keys';
import { parseBlockConfig } from '../../src/machines/block/config';
import { XenbusState } from '../../src/machines/xenbus/state';
import { EffectLog } from './support/effect-log';
import { IDENTITY, IMAGE, RING } from './support/block-device';

const S = XenbusState;
const SETTINGS: FrontendSettings = { maxRingPageOrder: 1, protocol: 'x86_64-abi', persistent: true };

function backendKeys(sizeBytes = IMAGE.sizeBytes): Record<string, string> {
  const config = parseBlockConfig({ dev: 'xvda', 'device-type': 'disk', params: '/i.img' }, 51712);
  if (!config.ok) throw new Error(config.error.message);
  return backendKeysForRealize({ ...IMAGE, sizeBytes }, config.value);
}

class FrontendUnderTest {
  readonly log = new EffectLog();
  readonly actor = createActor(
    frontendMachine.provide({
      actors: { writeFrontendState: this.log.actor('writeFrontendState'), ring: this.log.actor('ring'), disk: this.log.actor('disk') },
    }),
    { input: { identity: IDENTITY, settings: SETTINGS } },
  );

  constructor() {
    this.actor.start();
  }

  get state() {
    return this.actor.getSnapshot().value;
  }

  get context() {
    return this.actor.getSnapshot().context;
  }

  get writes(): number[] {
    return this.log.inputs<{ state: number }>('writeFrontendState').map((i) => i.state);
  }

  backend(state: XenbusState, keys: Record<string, string> = backendKeys()): this {
    this.actor.send({ type: 'backend.changed', state, keys });
    return this;
  }

  ringReady(): this {
    this.log.current('ring').sendBack({ type: 'ring.ready', ring: RING });
    return this;
  }

  toConnected(): this {
    return this.backend(S.InitWait).ringReady().backend(S.Connected);
  }
}

describe('startup (talk_to_blkback, blkfront_connect)', () => {
  it('given a new frontend, then it is Initialising and waits for the backend', () => {
    const fe = new FrontendUnderTest();
    expect(fe.state).toBe('initialising');
    expect(fe.writes).toEqual([S.Initialising]);
    fe.backend(S.Initialising, {});
    expect(fe.log.started('ring')).toEqual([]);
  });

  it('when the backend is InitWait, then it grants a ring of the smaller of both ring limits', () => {
    const fe = new FrontendUnderTest().backend(S.InitWait);
    expect(fe.state).toEqual({ ring: 'allocating' });
    expect(fe.log.current('ring').input).toEqual<RingInput>({ identity: IDENTITY, ringPageOrder: 1, protocol: 'x86_64-abi', persistent: true });
  });

  it('given a backend without max-ring-page-order, then it uses one page', () => {
    const fe = new FrontendUnderTest().backend(S.InitWait, {});
    expect(fe.log.current('ring').input).toMatchObject({ ringPageOrder: 0 });
  });

  it('when the ring is published, then it is Initialised', () => {
    const fe = new FrontendUnderTest().backend(S.InitWait).ringReady();
    expect(fe.state).toEqual({ ring: 'initialised' });
    expect(fe.context.ring).toEqual(RING);
    expect(fe.writes).toEqual([S.Initialising, S.Initialised]);
  });

  it('when the backend is Connected, then it reads the disk and is Connected with the disk running', () => {
    const fe = new FrontendUnderTest().toConnected();
    expect(fe.state).toEqual({ ring: 'connected' });
    expect(fe.writes).toEqual([S.Initialising, S.Initialised, S.Connected]);
    expect(fe.context.disk).toMatchObject({ sectors: IMAGE.sizeBytes / 512, sectorSize: 512, flushCache: true });
    expect(fe.log.current('disk').input).toMatchObject({ identity: IDENTITY, ring: RING, disk: { sectors: IMAGE.sizeBytes / 512 } });
  });

  it('given a backend that skipped InitWait, then it sets up the ring and connects in one go', () => {
    const fe = new FrontendUnderTest().backend(S.Connected).ringReady();
    expect(fe.state).toEqual({ ring: 'connected' });
  });

  it('when the backend is Connected without its disk keys, then the frontend closes with the error', () => {
    const { sectors: _s, ...noSectors } = backendKeys();
    const fe = new FrontendUnderTest().backend(S.InitWait).ringReady().backend(S.Connected, noSectors);
    expect(fe.state).toBe('closing');
    expect(fe.context.lastError).toEqual({ source: 'connect', message: 'backend key sectors is missing' });
    expect(fe.log.running('ring')).toEqual([]);
    expect(fe.writes.at(-1)).toBe(S.Closing);
  });

  it('when granting the ring fails, then the frontend closes, and is Closed once the backend answers', () => {
    const fe = new FrontendUnderTest().backend(S.InitWait);
    fe.log.current('ring').sendBack({ type: 'ring.failed', message: 'no free grant entries' });
    expect(fe.state).toBe('closing');
    expect(fe.context.lastError).toEqual({ source: 'ring', message: 'no free grant entries' });
    fe.backend(S.Closing);
    expect(fe.state).toBe('closed');
  });
});

describe('online resize', () => {
  it('when the backend rewrites Connected with a new size, then the disk learns it', () => {
    const fe = new FrontendUnderTest().toConnected();
    const disk = fe.log.current('disk');
    fe.backend(S.Connected, backendKeys(2 * IMAGE.sizeBytes));
    expect(fe.context.disk?.sectors).toBe((2 * IMAGE.sizeBytes) / 512);
    expect(disk.received).toEqual([{ type: 'disk.resized', disk: fe.context.disk }]);
    expect(fe.writes).toEqual([S.Initialising, S.Initialised, S.Connected]);
  });

  it('when the backend rewrites Connected with the same size, then nothing happens', () => {
    const fe = new FrontendUnderTest().toConnected();
    fe.backend(S.Connected);
    expect(fe.log.current('disk').received).toEqual([]);
  });
});

describe('closing', () => {
  it('when the backend closes, then the frontend frees its ring and is Closed (blkfront_closing)', () => {
    const fe = new FrontendUnderTest().toConnected();
    const ring = fe.log.current('ring');
    fe.backend(S.Closing);
    expect(fe.state).toBe('closed');
    expect(ring.stopped).toBe(true);
    expect(fe.log.running('disk')).toEqual([]);
    expect(fe.context.ring).toBeNull();
    expect(fe.writes.at(-1)).toBe(S.Closed);
  });

  it('when the guest unloads the driver, then it goes Closing with the ring kept until the backend closes', () => {
    const test = new FrontendUnderTest().toConnected();
    test.actor.send({ type: 'driver.unload' });
    expect(test.state).toEqual({ ring: 'closing' });
    expect(test.log.running('ring')).toHaveLength(1);
    test.backend(S.Closing);
    expect(test.state).toBe('closed');
    expect(test.log.running('ring')).toEqual([]);
    expect(test.writes).toEqual([S.Initialising, S.Initialised, S.Connected, S.Closing, S.Closed]);
  });

  it('given Initialising, when the backend goes Closing, then the frontend is Closed', () => {
    const fe = new FrontendUnderTest().backend(S.Closing);
    expect(fe.state).toBe('closed');
  });
});

describe('driver reload (as xenbus_reset_frontend)', () => {
  it('given Closed, when the driver loads again, then it is Initialising and waits through a Closed backend for InitWait', () => {
    const fe = new FrontendUnderTest().toConnected();
    fe.actor.send({ type: 'driver.unload' });
    fe.backend(S.Closing).backend(S.Closed);
    fe.actor.send({ type: 'driver.load' });
    expect(fe.state).toBe('initialising');
    expect(fe.writes.at(-1)).toBe(S.Initialising);
    fe.backend(S.Closed);
    expect(fe.state).toBe('initialising');
    fe.backend(S.InitWait).ringReady().backend(S.Connected);
    expect(fe.state).toEqual({ ring: 'connected' });
    expect(fe.log.started('ring')).toHaveLength(2);
  });
});

it('fails loudly when an effect was not provided', () => {
  const actor = createActor(frontendMachine, { input: { identity: IDENTITY, settings: SETTINGS } });
  const errors: unknown[] = [];
  actor.subscribe({ error: (e) => errors.push(e) });
  actor.start();
  expect(String(errors[0])).toContain('actor "writeFrontendState" was not provided');
});
