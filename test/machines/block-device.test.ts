// The block device policy: connect (xen_block_connect), disconnect, online resize.
import { resizeEvent } from '../../src/machines/block/device-machine';
import { XenbusState } from '../../src/machines/xenbus/state';
import { BlockDeviceUnderTest, IDENTITY, REALIZED, RING, RING_KEYS, deviceInput, OPTIONS } from './support/block-device';

const S = XenbusState;

describe('connect', () => {
  it('given InitWait, when the frontend is Initialised, then the connection starts and Connected is written once it is ready', () => {
    const dev = new BlockDeviceUnderTest().toInitWait().frontend(S.Initialised, RING_KEYS);
    expect(dev.phase).toBe('attached.connecting');
    const connection = dev.log.current('connection');
    expect(connection.input).toEqual({ identity: IDENTITY, config: expect.objectContaining({ path: '/images/disk.img' }), realized: REALIZED, connection: RING });
    expect(dev.stateWrites).toEqual([S.InitWait]);
    dev.connectionReady();
    expect(dev.phase).toBe('attached.connected');
    expect(dev.stateWrites).toEqual([S.InitWait, S.Connected]);
    expect(dev.context.connection).toEqual(RING);
  });

  it('given InitWait, when the frontend jumps to Connected, then it connects too', () => {
    const dev = new BlockDeviceUnderTest().toInitWait().frontend(S.Connected, RING_KEYS);
    expect(dev.phase).toBe('attached.connecting');
  });

  it.each([
    [{ ...RING_KEYS, 'event-channel': undefined }, 'frontend key event-channel is missing'],
    [{ ...RING_KEYS, 'ring-ref1': undefined }, 'frontend key ring-ref1 is missing'],
    [{ ...RING_KEYS, 'ring-page-order': '5' }, 'frontend key ring-page-order 5 is invalid (max 4)'],
    [{ ...RING_KEYS, protocol: 'sparc-abi' }, "frontend key protocol is unknown: 'sparc-abi'"],
  ])('when the frontend keys are wrong (%#), then it stays in InitWait with an error naming the key', (keys, message) => {
    const clean = Object.fromEntries(Object.entries(keys).filter(([, v]) => v !== undefined)) as Record<string, string>;
    const dev = new BlockDeviceUnderTest().toInitWait().frontend(S.Initialised, clean);
    expect(dev.phase).toBe('initWait');
    expect(dev.context.lastError).toEqual({ source: 'connect', message });
    expect(dev.log.started('connection')).toEqual([]);
    // The frontend fixes its keys and announces again: it connects.
    dev.frontend(S.Initialised, RING_KEYS);
    expect(dev.phase).toBe('attached.connecting');
  });

  it('honours a smaller max-ring-page-order setting', () => {
    const settings = { maxRingPageOrder: 0, featureBarrier: true, featurePersistent: true, maxIndirectSegments: 0 };
    const dev = new BlockDeviceUnderTest(deviceInput(OPTIONS, settings)).toInitWait().frontend(S.Initialised, RING_KEYS);
    expect(dev.phase).toBe('initWait');
    expect(dev.context.lastError?.message).toBe('frontend key ring-page-order 1 is invalid (max 0)');
  });

  it('when mapping the ring fails, then it disconnects back to InitWait without writing Connected', () => {
    const dev = new BlockDeviceUnderTest().toInitWait().frontend(S.Initialised, RING_KEYS);
    const connection = dev.log.current('connection');
    connection.sendBack({ type: 'connection.failed', message: 'grant map of ref 8 failed: GNTST_bad_gntref' });
    expect(connection.stopped).toBe(true);
    expect(dev.phase).toBe('initWait');
    expect(dev.context.connection).toBeNull();
    expect(dev.context.lastError).toEqual({ source: 'dataplane', message: 'grant map of ref 8 failed: GNTST_bad_gntref' });
    expect(dev.stateWrites).toEqual([S.InitWait]);
  });

  it('given connecting, when the frontend repeats the same parameters, then the connection is not restarted', () => {
    const dev = new BlockDeviceUnderTest().toInitWait().frontend(S.Initialised, RING_KEYS).frontend(S.Initialised, RING_KEYS);
    expect(dev.log.started('connection')).toHaveLength(1);
  });

  it('given connecting, when the frontend announces new parameters, then it disconnects and connects again', () => {
    const dev = new BlockDeviceUnderTest().toInitWait().frontend(S.Initialised, RING_KEYS);
    const first = dev.log.current('connection');
    dev.frontend(S.Initialised, { ...RING_KEYS, 'event-channel': '33' });
    expect(first.stopped).toBe(true);
    expect(dev.log.current('connection').input).toMatchObject({ connection: { ...RING, eventChannel: 33 } });
    expect(dev.phase).toBe('attached.connecting');
  });

  it('given connecting, when the frontend announces broken parameters, then it disconnects with the error', () => {
    const dev = new BlockDeviceUnderTest().toInitWait().frontend(S.Initialised, RING_KEYS);
    dev.frontend(S.Initialised, { 'ring-ref': 'nope', 'event-channel': '1' });
    expect(dev.log.running('connection')).toEqual([]);
    expect(dev.phase).toBe('initWait');
    expect(dev.context.lastError?.source).toBe('connect');
  });

  it('given Closed, when a frontend goes straight to Initialised, then it connects (QEMU and blkback connect from any state)', () => {
    const dev = new BlockDeviceUnderTest().toConnected().frontend(S.Closed).frontend(S.Initialised, RING_KEYS);
    expect(dev.phase).toBe('attached.connecting');
    const failed = dev.log.current('connection');
    failed.sendBack({ type: 'connection.failed', message: 'EINVAL' });
    expect(dev.phase).toBe('closed');
  });
});

describe('disconnect', () => {
  it('given connected, when the frontend closes, then the ring is served through Closing and dropped at Closed', () => {
    const dev = new BlockDeviceUnderTest().toConnected();
    const connection = dev.log.current('connection');
    dev.frontend(S.Closing);
    expect(dev.phase).toBe('attached.closing');
    expect(connection.stopped).toBe(false);
    dev.frontend(S.Closed);
    expect(connection.stopped).toBe(true);
    expect(dev.phase).toBe('closed');
    expect(dev.context.connection).toBeNull();
    expect(dev.stateWrites).toEqual([S.InitWait, S.Connected, S.Closing, S.Closed]);
  });

  it('given connected, when the frontend node vanishes (Unknown), then it disconnects and closes', () => {
    const dev = new BlockDeviceUnderTest().toConnected().frontend(S.Unknown);
    expect(dev.phase).toBe('closed');
    expect(dev.log.running('connection')).toEqual([]);
  });

  it('given closing with the ring, when the frontend reconnects instead, then the old connection is replaced', () => {
    const dev = new BlockDeviceUnderTest().toConnected().frontend(S.Closing);
    const old = dev.log.current('connection');
    dev.frontend(S.Initialised, { ...RING_KEYS, 'ring-ref0': '40', 'ring-ref1': '41' });
    expect(old.stopped).toBe(true);
    expect(dev.phase).toBe('attached.connecting');
    dev.connectionReady();
    expect(dev.stateWrites.at(-1)).toBe(S.Connected);
  });

  it('given connected, when the dataplane fails (hostile ring), then the backend closes with the error', () => {
    const dev = new BlockDeviceUnderTest().toConnected();
    dev.log.current('connection').sendBack({ type: 'connection.failed', message: 'ring overflow: req_prod 4000 ahead of req_cons 0' });
    expect(dev.phase).toBe('closing');
    expect(dev.log.running('connection')).toEqual([]);
    expect(dev.stateWrites.at(-1)).toBe(S.Closing);
    expect(dev.context.lastError?.source).toBe('dataplane');
    dev.frontend(S.Closed);
    expect(dev.phase).toBe('closed');
  });

  it('given InitWait, when the frontend closes, then the backend goes Closing then Closed', () => {
    const dev = new BlockDeviceUnderTest().toInitWait().frontend(S.Closing);
    expect(dev.phase).toBe('closing');
    dev.frontend(S.Closed);
    expect(dev.phase).toBe('closed');
    expect(dev.stateWrites).toEqual([S.InitWait, S.Closing, S.Closed]);
  });
});

describe('online resize', () => {
  it('given connected, when the image grows, then sectors is republished with the state and the lifecycle is untouched', () => {
    const dev = new BlockDeviceUnderTest().toConnected();
    dev.actor.send(resizeEvent(REALIZED, 128 << 20));
    const update = dev.log.current('publishUpdate');
    expect(update.input).toEqual({ identity: IDENTITY, keys: { sectors: String((128 << 20) / 512) } });
    expect(dev.context.realized?.image.sizeBytes).toBe(128 << 20);
    expect(dev.phase).toBe('attached.connected');
    expect(dev.log.running('connection')).toHaveLength(1);
    update.sendBack({ type: 'update.done' });
    expect(dev.log.running('publishUpdate')).toEqual([]);
    expect(dev.context.published).toEqual({ sectors: String((128 << 20) / 512) });
  });

  it('when a second resize comes before the first is published, then the latest size is published', () => {
    const dev = new BlockDeviceUnderTest().toConnected();
    dev.actor.send(resizeEvent(REALIZED, 128 << 20));
    const first = dev.log.current('publishUpdate');
    dev.actor.send(resizeEvent(REALIZED, 256 << 20));
    expect(first.stopped).toBe(true);
    expect(dev.log.current('publishUpdate').input).toMatchObject({ keys: { sectors: String((256 << 20) / 512) } });
  });

  it('when publishing fails, then the error is kept', () => {
    const dev = new BlockDeviceUnderTest().toConnected();
    dev.actor.send(resizeEvent(REALIZED, 128 << 20));
    dev.log.current('publishUpdate').sendBack({ type: 'update.failed', message: 'EAGAIN' });
    expect(dev.context.lastError).toEqual({ source: 'update', message: 'EAGAIN' });
  });

  it('given realize still running, when a resize comes, then it is ignored (realize reads the size)', () => {
    const dev = new BlockDeviceUnderTest();
    dev.actor.send(resizeEvent(REALIZED, 128 << 20));
    expect(dev.log.started('publishUpdate')).toEqual([]);
  });
});
