// The generic xenbus rules (QEMU hw/xen/xen-bus.c), given/when/then, through the block device.
import { createActor } from 'xstate';
import { blockDeviceMachine } from '../../src/machines/block/device-machine';
import { describeDevice } from '../../src/machines/xenbus/describe';
import { XenbusState } from '../../src/machines/xenbus/state';
import { BlockDeviceUnderTest, IDENTITY, OPTIONS, RING, RING_KEYS, deviceInput } from './support/block-device';

const S = XenbusState;

describe('realize', () => {
  it('given a new device, then it realizes with the parsed configuration and writes no state yet', () => {
    const dev = new BlockDeviceUnderTest();
    expect(dev.phase).toBe('realizing');
    const input = dev.log.current('realize').input as { identity: unknown; config: { path: string; vdev: { devid: number } } };
    expect(input.identity).toEqual(IDENTITY);
    expect(input.config.path).toBe('/images/disk.img');
    expect(input.config.vdev.devid).toBe(51712);
    expect(dev.stateWrites).toEqual([]);
    expect(dev.context.backendState).toBe(S.Initialising);
  });

  it('when realize succeeds, then the backend goes InitWait', () => {
    const dev = new BlockDeviceUnderTest().frontend(S.Initialising).realized();
    expect(dev.phase).toBe('initWait');
    expect(dev.stateWrites).toEqual([S.InitWait]);
    expect(dev.context.realized?.image.sizeBytes).toBe(64 << 20);
    expect(dev.log.running('realize')).toEqual([]);
  });

  it('when realize fails, then the failure is reported and nothing is served', () => {
    const dev = new BlockDeviceUnderTest();
    dev.log.current('realize').sendBack({ type: 'realize.failed', message: "cannot open '/images/disk.img': ENOENT" });
    expect(dev.phase).toBe('failed');
    expect(dev.context.lastError).toEqual({ source: 'realize', message: "cannot open '/images/disk.img': ENOENT" });
    expect(dev.log.current('reportFailure').input).toEqual({ identity: IDENTITY, message: "cannot open '/images/disk.img': ENOENT" });
    dev.frontend(S.Initialised, RING_KEYS);
    expect(dev.log.started('connection')).toEqual([]);
    expect(dev.stateWrites).toEqual([]);
  });

  it('given options that do not parse, then the device fails without realizing, naming the key', () => {
    const dev = new BlockDeviceUnderTest(deviceInput({ ...OPTIONS, 'device-type': 'tape' }));
    expect(dev.phase).toBe('failed');
    expect(dev.log.started('realize')).toEqual([]);
    expect(dev.context.lastError).toEqual({ source: 'config', message: "backend key device-type must be disk or cdrom: 'tape'" });
    expect(dev.log.current('reportFailure').input).toMatchObject({ message: dev.context.lastError?.message });
  });

  it('given the frontend published its ring during realize, when realize succeeds, then it connects', () => {
    const dev = new BlockDeviceUnderTest().frontend(S.Initialised, RING_KEYS).realized();
    expect(dev.phase).toBe('attached.connecting');
    expect(dev.context.connection).toEqual(RING);
  });

  it('given the frontend node was still missing during realize, when realize succeeds, then it waits (realize creates it)', () => {
    const dev = new BlockDeviceUnderTest().frontend(S.Unknown).realized();
    expect(dev.phase).toBe('initWait');
  });

  it('given the frontend was Closed during realize, when realize succeeds, then the backend is Closed', () => {
    const dev = new BlockDeviceUnderTest().frontend(S.Closed).realized();
    expect(dev.phase).toBe('closed');
    expect(dev.stateWrites).toEqual([S.Closed]);
  });
});

describe('a state already set is not written again', () => {
  it('when the backend watch echoes our own write, then nothing is written', () => {
    const dev = new BlockDeviceUnderTest().toInitWait();
    dev.backend(S.InitWait).backend(S.InitWait).frontend(S.Initialising).frontend(S.InitWait);
    expect(dev.stateWrites).toEqual([S.InitWait]);
    expect(dev.log.started('writeBackendState')).toHaveLength(1);
  });

  it('when the frontend repeats Connected while connected, then nothing is written or restarted', () => {
    const dev = new BlockDeviceUnderTest().toConnected();
    dev.frontend(S.Connected, RING_KEYS).frontend(S.Connected, RING_KEYS).backend(S.Connected);
    expect(dev.stateWrites).toEqual([S.InitWait, S.Connected]);
    expect(dev.log.started('connection')).toHaveLength(1);
  });
});

describe('frontend Initialising while the backend is Closed and online -> InitWait', () => {
  it('given a closed device still online, when a new frontend initialises, then the backend cycles to InitWait', () => {
    const dev = new BlockDeviceUnderTest().toConnected().frontend(S.Closing).frontend(S.Closed);
    expect(dev.phase).toBe('closed');
    dev.frontend(S.Initialising);
    expect(dev.phase).toBe('initWait');
    expect(dev.stateWrites).toEqual([S.InitWait, S.Connected, S.Closing, S.Closed, S.InitWait]);
    dev.frontend(S.Initialised, RING_KEYS).connectionReady();
    expect(dev.phase).toBe('attached.connected');
    expect(dev.log.started('connection')).toHaveLength(2);
  });

  it('given a closed device that went offline, when a frontend initialises, then it stays Closed', () => {
    const dev = new BlockDeviceUnderTest().toConnected().backend(S.Connected, false).frontend(S.Closed);
    dev.frontend(S.Initialising);
    expect(dev.phase).toBe('closed');
    expect(dev.stateWrites.at(-1)).toBe(S.Closed);
  });

  it('given a closed device with a frontend initialising, when the toolstack brings it online again, then InitWait', () => {
    const dev = new BlockDeviceUnderTest().toConnected().backend(S.Connected, false).frontend(S.Closed);
    dev.frontend(S.Initialising).backend(S.Connected, true);
    expect(dev.phase).toBe('initWait');
  });

  it('given a closed device, when a frontend that is merely Closed is seen again, then nothing changes', () => {
    const dev = new BlockDeviceUnderTest().toConnected().frontend(S.Closed);
    dev.backend(S.Closed).frontend(S.Closed);
    expect(dev.phase).toBe('closed');
    expect(dev.stateWrites).toEqual([S.InitWait, S.Connected, S.Closed]);
  });
});

describe('backend Closing with no active frontend -> Closed', () => {
  it.each([
    ['Initialising', S.Initialising],
    ['Unknown', S.Unknown],
    ['Closed', S.Closed],
  ])('given a frontend %s, when the toolstack sets Closing, then the backend closes', (_name, fe) => {
    const dev = new BlockDeviceUnderTest().toInitWait().frontend(fe);
    if (fe === S.Closed) expect(dev.phase).toBe('closed');
    dev.backend(S.Closing, false);
    expect(dev.phase).toBe('closed');
    expect(dev.stateWrites.at(-1)).toBe(S.Closed);
  });

  it('given the backend already Closed, when the toolstack overwrites Closing, then Closed is written again', () => {
    const dev = new BlockDeviceUnderTest().toInitWait().frontend(S.Closed);
    expect(dev.stateWrites).toEqual([S.InitWait, S.Closed]);
    dev.backend(S.Closing, false);
    expect(dev.stateWrites).toEqual([S.InitWait, S.Closed, S.Closed]);
    dev.backend(S.Closed, false);
    expect(dev.phase).toBe('destroying');
  });

  it('given a connected frontend, when the toolstack sets Closing, then the backend stays Closing and keeps serving', () => {
    const dev = new BlockDeviceUnderTest().toConnected().backend(S.Closing, false);
    expect(dev.phase).toBe('attached.closing');
    expect(dev.context.backendState).toBe(S.Closing);
    expect(dev.log.running('connection')).toHaveLength(1);
  });
});

describe('offline and Closed/Initialising/InitWait/Unknown -> destroy', () => {
  it.each([
    ['Closed', S.Closed],
    ['Initialising', S.Initialising],
    ['InitWait', S.InitWait],
    ['Unknown', S.Unknown],
  ])('when the backend is seen offline in %s, then the device is destroyed', (_name, state) => {
    const dev = new BlockDeviceUnderTest().toInitWait().backend(state, false);
    expect(dev.phase).toBe('destroying');
    expect(dev.log.current('destroy').input).toEqual({ identity: IDENTITY });
    dev.log.current('destroy').sendBack({ type: 'destroy.done' });
    expect(dev.phase).toBe('destroyed');
    expect(dev.status).toBe('done');
  });

  it('given a connected device, when its backend node disappears (offline, Unknown), then it disconnects and is destroyed', () => {
    const dev = new BlockDeviceUnderTest().toConnected();
    const connection = dev.log.current('connection');
    dev.backend(S.Unknown, false);
    expect(connection.stopped).toBe(true);
    expect(dev.phase).toBe('destroying');
  });

  it.each([
    ['Connected', S.Connected],
    ['Closing', S.Closing],
  ])('when the backend is offline but %s with an active frontend, then it is not destroyed', (_name, state) => {
    const dev = new BlockDeviceUnderTest().toConnected().backend(state, false);
    expect(dev.phase).not.toBe('destroying');
    expect(dev.log.started('destroy')).toEqual([]);
  });

  it('given the toolstack forces Closed while online, then the backend disconnects and is Closed', () => {
    const dev = new BlockDeviceUnderTest().toConnected().backend(S.Closed, true);
    expect(dev.phase).toBe('closed');
    expect(dev.log.running('connection')).toEqual([]);
  });

  it('when destroy fails, then the device is still retired and the error kept', () => {
    const dev = new BlockDeviceUnderTest().toInitWait().backend(S.InitWait, false);
    dev.log.current('destroy').sendBack({ type: 'destroy.failed', message: 'EACCES' });
    expect(dev.status).toBe('done');
    expect(dev.context.lastError).toEqual({ source: 'destroy', message: 'EACCES' });
  });

  it('given a failed device, when the toolstack unplugs it, then it is destroyed', () => {
    const dev = new BlockDeviceUnderTest(deviceInput({ ...OPTIONS, params: 'relative.img' }));
    expect(dev.phase).toBe('failed');
    dev.backend(S.Closing, true);
    expect(dev.phase).toBe('failed');
    dev.backend(S.Closing, false);
    expect(dev.phase).toBe('destroying');
  });
});

describe('the toolstack-style unplug', () => {
  it('given a connected device, when unplugged, then the whole close handshake runs to destruction', () => {
    const dev = new BlockDeviceUnderTest().toConnected();
    const connection = dev.log.current('connection');
    dev.actor.send({ type: 'device.unplug' });
    const unplug = dev.log.current('unplug');
    expect(unplug.input).toEqual({ identity: IDENTITY });
    unplug.sendBack({ type: 'unplug.done' });
    // What the unplug transaction wrote, as the backend watch reads it:
    dev.backend(S.Closing, false);
    expect(dev.phase).toBe('attached.closing');
    expect(connection.stopped).toBe(false);
    dev.frontend(S.Closing).frontend(S.Closed);
    expect(connection.stopped).toBe(true);
    expect(dev.phase).toBe('closed');
    dev.backend(S.Closed, false);
    dev.log.current('destroy').sendBack({ type: 'destroy.done' });
    expect(dev.status).toBe('done');
    // Closing was written by the unplug itself and adopted, not written back.
    expect(dev.stateWrites).toEqual([S.InitWait, S.Connected, S.Closed]);
    expect(dev.context.lastError).toBeNull();
  });

  it('when the unplug transaction fails, then the error is kept and it can be requested again', () => {
    const dev = new BlockDeviceUnderTest().toInitWait();
    dev.actor.send({ type: 'device.unplug' });
    dev.log.current('unplug').sendBack({ type: 'unplug.failed', message: 'EACCES' });
    expect(dev.context.lastError).toEqual({ source: 'unplug', message: 'EACCES' });
    expect(dev.log.running('unplug')).toEqual([]);
    dev.actor.send({ type: 'device.unplug' });
    expect(dev.log.running('unplug')).toHaveLength(1);
  });
});

describe('errors and reporting', () => {
  it('keeps a failed xenstore write as the last error without changing state', () => {
    const dev = new BlockDeviceUnderTest().toInitWait();
    dev.log.current('writeBackendState').sendBack({ type: 'xenstore.failed', operation: 'write state', message: 'EIO' });
    expect(dev.phase).toBe('initWait');
    expect(dev.context.lastError).toEqual({ source: 'xenstore', message: 'write state: EIO' });
  });

  it('summarises a device for a dashboard', () => {
    const dev = new BlockDeviceUnderTest().toConnected();
    expect(describeDevice(dev.actor.getSnapshot())).toEqual({
      phase: 'attached.connected',
      backendState: S.Connected,
      frontendState: S.Initialised,
      online: true,
      connection: RING,
      lastError: null,
    });
  });

  it('fails loudly when an effect was not provided', () => {
    const actor = createActor(blockDeviceMachine, { input: deviceInput() });
    const errors: unknown[] = [];
    actor.subscribe({ error: (e) => errors.push(e) });
    actor.start();
    expect(actor.getSnapshot().status).toBe('error');
    expect(String(errors[0])).toContain('actor "realize" was not provided');
  });
});
