// Event sourcing: the store persists every event a device machine receives and recovers by
// folding them with XState's pure transition(), then restores the actor from the snapshot.
import { createActor, initialTransition, transition, type AnyEventObject } from 'xstate';
import { blockDeviceMachine, type BlockDeviceEvent } from '../../src/machines/block/device-machine';
import { devicePhase } from '../../src/machines/xenbus/describe';
import { XenbusState } from '../../src/machines/xenbus/state';
import { EffectLog } from './support/effect-log';
import { EventRecorder } from './support/recorder';
import { IDENTITY, REALIZED, RING, RING_KEYS, deviceInput, provideEffects } from './support/block-device';

const S = XenbusState;
const input = deviceInput();

/** Runs a live device, answering its effects, and returns what a store would have recorded. */
function recordLiveRun(drive: (send: (e: BlockDeviceEvent) => void, log: EffectLog) => void) {
  const log = new EffectLog();
  const recorder = new EventRecorder();
  const actor = createActor(provideEffects(log), { input, inspect: recorder.inspect });
  recorder.rootSessionId = actor.sessionId;
  actor.start();
  drive((e) => actor.send(e), log);
  return { events: recorder.events, live: actor.getSnapshot(), log };
}

/** What recovery does: fold with the pure transition() (no effect runs), then persist as JSON. */
function fold(events: readonly AnyEventObject[]) {
  // The machine without any effect provided: folding must not start any of them.
  let [snapshot] = initialTransition(blockDeviceMachine, input);
  for (const event of events) [snapshot] = transition(blockDeviceMachine, snapshot, event as BlockDeviceEvent);
  return { snapshot, persisted: JSON.parse(JSON.stringify(blockDeviceMachine.getPersistedSnapshot(snapshot))) };
}

function restore(persisted: unknown) {
  const log = new EffectLog();
  const actor = createActor(provideEffects(log), { snapshot: persisted as never, input });
  actor.start();
  return { actor, log };
}

function connectedRun() {
  return recordLiveRun((send, log) => {
    send({ type: 'frontend.changed', state: S.Initialising, keys: {} });
    log.current('realize').sendBack({ type: 'realize.done', realized: REALIZED });
    send({ type: 'backend.changed', state: S.InitWait, online: true });
    send({ type: 'frontend.changed', state: S.Initialised, keys: RING_KEYS });
    log.current('connection').sendBack({ type: 'connection.ready' });
    send({ type: 'frontend.changed', state: S.Connected, keys: RING_KEYS });
  });
}

describe('recovery by folding recorded events', () => {
  it('records plain events, including those sent back by effects', () => {
    const { events } = connectedRun();
    expect(events.map((e) => e.type)).toEqual([
      'frontend.changed',
      'realize.done',
      'backend.changed',
      'frontend.changed',
      'connection.ready',
      'frontend.changed',
    ]);
  });

  it('folds to the same state and context as the live machine, without running any effect', () => {
    const { events, live } = connectedRun();
    const { snapshot } = fold(events);
    expect(snapshot.value).toEqual(live.value);
    expect(snapshot.context).toEqual(live.context);
    expect(devicePhase(snapshot.value)).toBe('attached.connected');
  });

  it('given a restored connected device, then its connection and state writer start again, and it carries on', () => {
    const { events } = connectedRun();
    const { actor, log } = restore(fold(events).persisted);
    expect(devicePhase(actor.getSnapshot().value)).toBe('attached.connected');
    // The invoked actors of the current state are started again with the same inputs...
    expect(log.current('connection').input).toEqual({
      identity: IDENTITY,
      config: expect.objectContaining({ path: '/images/disk.img' }),
      realized: REALIZED,
      connection: RING,
    });
    expect(log.current('writeBackendState').input).toEqual({ identity: IDENTITY, state: S.Connected });
    // ...and nothing that belongs to earlier states.
    expect(log.started('realize')).toEqual([]);
    // The restarted connection reports ready again: nothing changes.
    log.current('connection').sendBack({ type: 'connection.ready' });
    expect(log.started('writeBackendState')).toHaveLength(1);
    // The machine continues: the frontend closes.
    actor.send({ type: 'frontend.changed', state: S.Closing, keys: {} });
    actor.send({ type: 'frontend.changed', state: S.Closed, keys: {} });
    expect(devicePhase(actor.getSnapshot().value)).toBe('closed');
    expect(log.started('connection')[0]?.stopped).toBe(true);
    expect(log.inputs<{ state: number }>('writeBackendState').map((i) => i.state)).toEqual([S.Connected, S.Closing, S.Closed]);
  });

  it('given the daemon died while connecting, then the restored device connects again with the recorded parameters', () => {
    const { events } = recordLiveRun((send, log) => {
      send({ type: 'frontend.changed', state: S.Initialising, keys: {} });
      log.current('realize').sendBack({ type: 'realize.done', realized: REALIZED });
      send({ type: 'frontend.changed', state: S.Initialised, keys: RING_KEYS });
    });
    const { actor, log } = restore(fold(events).persisted);
    expect(devicePhase(actor.getSnapshot().value)).toBe('attached.connecting');
    expect(log.current('connection').input).toMatchObject({ connection: RING });
    log.current('connection').sendBack({ type: 'connection.ready' });
    expect(devicePhase(actor.getSnapshot().value)).toBe('attached.connected');
    expect(log.inputs<{ state: number }>('writeBackendState').map((i) => i.state)).toEqual([S.InitWait, S.Connected]);
  });

  it('given the daemon died while realizing, then realize runs again', () => {
    const { events } = recordLiveRun((send) => send({ type: 'frontend.changed', state: S.Initialising, keys: {} }));
    const { actor, log } = restore(fold(events).persisted);
    expect(devicePhase(actor.getSnapshot().value)).toBe('realizing');
    expect(log.current('realize').input).toMatchObject({ identity: IDENTITY });
  });

  it('given the daemon died during an unplug and a destroy, then each is redone', () => {
    const unplugging = recordLiveRun((send, log) => {
      log.current('realize').sendBack({ type: 'realize.done', realized: REALIZED });
      send({ type: 'device.unplug' });
    });
    const first = restore(fold(unplugging.events).persisted);
    expect(first.log.current('unplug').input).toEqual({ identity: IDENTITY });

    const destroying = recordLiveRun((send, log) => {
      log.current('realize').sendBack({ type: 'realize.done', realized: REALIZED });
      send({ type: 'backend.changed', state: S.InitWait, online: false });
    });
    const second = restore(fold(destroying.events).persisted);
    expect(second.log.current('destroy').input).toEqual({ identity: IDENTITY });
    second.log.current('destroy').sendBack({ type: 'destroy.done' });
    expect(second.actor.getSnapshot().status).toBe('done');
  });

  it('a restored device and one that never stopped end in the same state given the same later events', () => {
    const { events } = connectedRun();
    const later: BlockDeviceEvent[] = [
      { type: 'backend.changed', state: S.Closing, online: false },
      { type: 'frontend.changed', state: S.Closing, keys: {} },
      { type: 'frontend.changed', state: S.Closed, keys: {} },
      { type: 'backend.changed', state: S.Closed, online: false },
    ];
    const { actor } = restore(fold(events).persisted);
    for (const e of later) actor.send(e);
    const { snapshot: straight } = fold([...events, ...later]);
    expect(actor.getSnapshot().value).toEqual(straight.value);
    expect(actor.getSnapshot().context).toEqual(straight.context);
    expect(devicePhase(straight.value)).toBe('destroying');
  });

  it('transition() hands back the effects to start instead of running them', () => {
    const [snapshot] = initialTransition(blockDeviceMachine, input);
    const [, actions] = transition(blockDeviceMachine, snapshot, { type: 'realize.done', realized: REALIZED });
    const spawned = actions.filter((a) => a.type === 'xstate.spawnChild').map((a) => (a as { params?: { src?: unknown } }).params?.src);
    expect(spawned).toContain('writeBackendState');
  });
});
