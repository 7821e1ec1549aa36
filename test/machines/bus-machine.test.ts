// The backend bus: a registry of devices created when the toolstack creates them.
import { createActor, initialTransition, transition } from 'xstate';
import { busMachine, isCreatable, type BusEvent, type DeviceRef } from '../../src/machines/bus/bus-machine';
import { XenbusState } from '../../src/machines/xenbus/state';

const S = XenbusState;

function busUnderTest() {
  const spawned: DeviceRef[] = [];
  const retired: DeviceRef[] = [];
  const actor = createActor(
    busMachine.provide({
      actions: {
        spawnDevice: (_, params) => spawned.push(params),
        retireDevice: (_, params) => retired.push(params),
      },
    }),
    { input: { backendDomid: 0 } },
  );
  actor.start();
  const send = (e: BusEvent) => actor.send(e);
  return { actor, spawned, retired, send, devices: () => actor.getSnapshot().context.devices };
}

const seen = (frontendDomid: number, devid: number, state: XenbusState, online: boolean): BusEvent => ({
  type: 'device.seen',
  frontendDomid,
  devid,
  state,
  online,
});

describe('bus', () => {
  it('watches vbd by default, or the type it is given', () => {
    expect(busUnderTest().actor.getSnapshot().context.backendType).toBe('vbd');
    const qdisk = createActor(busMachine, { input: { backendDomid: 0, backendType: 'qdisk' } });
    expect(qdisk.getSnapshot().context.backendType).toBe('qdisk');
  });

  it('given a toolstack-created device (online, Initialising), then it spawns it once', () => {
    const bus = busUnderTest();
    bus.send(seen(1, 51712, S.Initialising, true));
    bus.send(seen(1, 51712, S.Initialising, true));
    bus.send(seen(1, 51712, S.InitWait, true));
    expect(bus.spawned).toEqual([{ frontendDomid: 1, devid: 51712, key: '1/51712' }]);
    expect(bus.devices()).toEqual({ '1/51712': { frontendDomid: 1, devid: 51712 } });
  });

  it.each([
    ['offline', S.Initialising, false],
    ['not Initialising', S.InitWait, true],
    ['Closed', S.Closed, true],
    ['Unknown', S.Unknown, true],
  ])('given a device directory %s, then no device is created', (_why, state, online) => {
    const bus = busUnderTest();
    bus.send(seen(1, 51712, state, online));
    expect(bus.spawned).toEqual([]);
    expect(isCreatable({ state, online })).toBe(false);
  });

  it('keys devices by frontend domain and device id', () => {
    const bus = busUnderTest();
    bus.send(seen(1, 51712, S.Initialising, true));
    bus.send(seen(2, 51712, S.Initialising, true));
    bus.send(seen(1, 51728, S.Initialising, true));
    expect(Object.keys(bus.devices()).sort()).toEqual(['1/51712', '1/51728', '2/51712']);
  });

  it('when a device is destroyed, then it is retired and can be created again', () => {
    const bus = busUnderTest();
    bus.send(seen(1, 51712, S.Initialising, true));
    bus.send({ type: 'device.destroyed', frontendDomid: 1, devid: 51712 });
    expect(bus.retired).toEqual([{ frontendDomid: 1, devid: 51712, key: '1/51712' }]);
    expect(bus.devices()).toEqual({});
    bus.send(seen(1, 51712, S.Initialising, true));
    expect(bus.spawned).toHaveLength(2);
  });

  it('when a device directory disappears, then it is retired; unknown devices are ignored', () => {
    const bus = busUnderTest();
    bus.send(seen(1, 51712, S.Initialising, true));
    bus.send({ type: 'device.removed', frontendDomid: 1, devid: 51712 });
    bus.send({ type: 'device.removed', frontendDomid: 1, devid: 51712 });
    bus.send({ type: 'device.removed', frontendDomid: 9, devid: 1 });
    expect(bus.retired).toEqual([{ frontendDomid: 1, devid: 51712, key: '1/51712' }]);
  });

  it('when resynced, then it retires vanished devices and spawns new creatable ones only', () => {
    const bus = busUnderTest();
    bus.send(seen(1, 51712, S.Initialising, true));
    bus.send(seen(1, 51728, S.Initialising, true));
    bus.send({
      type: 'bus.resync',
      devices: [
        { frontendDomid: 1, devid: 51712, state: S.Connected, online: true },
        { frontendDomid: 3, devid: 51712, state: S.Initialising, online: true },
        { frontendDomid: 4, devid: 51712, state: S.Closed, online: false },
      ],
    });
    expect(bus.retired.map((r) => r.key)).toEqual(['1/51728']);
    expect(bus.spawned.map((r) => r.key)).toEqual(['1/51712', '1/51728', '3/51712']);
    expect(Object.keys(bus.devices()).sort()).toEqual(['1/51712', '3/51712']);
  });

  it('when stopped, then it leaves the devices to the next daemon', () => {
    const bus = busUnderTest();
    bus.send(seen(1, 51712, S.Initialising, true));
    bus.send({ type: 'bus.stop' });
    expect(bus.actor.getSnapshot().status).toBe('done');
    expect(bus.retired).toEqual([]);
  });

  it('folds with transition() into the same registry, returning the engine actions to run', () => {
    let [snapshot] = initialTransition(busMachine, { backendDomid: 0 });
    const [next, actions] = transition(busMachine, snapshot, seen(5, 768, S.Initialising, true));
    snapshot = next;
    expect(actions.map((a) => [a.type, (a as { params?: unknown }).params])).toEqual([
      ['spawnDevice', { frontendDomid: 5, devid: 768, key: '5/768' }],
    ]);
    expect(snapshot.context.devices).toEqual({ '5/768': { frontendDomid: 5, devid: 768 } });
  });

  it('fails loudly when the engine did not provide its actions', () => {
    const actor = createActor(busMachine, { input: { backendDomid: 0 } });
    const errors: unknown[] = [];
    actor.subscribe({ error: (e) => errors.push(e) });
    actor.start();
    actor.send(seen(1, 51712, S.Initialising, true));
    expect(String(errors[0])).toContain('action "spawnDevice" was not provided');
  });
});
