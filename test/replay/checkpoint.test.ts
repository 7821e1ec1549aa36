// Recording attached to a running daemon starts from a checkpoint of its actors; effects that
// were running then (a realize opening its image) still report their outcome into the session.
import * as fs from 'node:fs';
import * as path from 'node:path';
import type { AnyStateMachine } from 'xstate';
import { DEFAULT_BLOCK_BACKEND_SETTINGS, blockDeviceMachine, deviceIdentity, frontendRingKeys } from '../../src/machines';
import { RecordingSwitch, ReplayEventStore, SessionRecorder, checkpointsOf, parseSession, replaySession } from '../../src/replay';
import { ReplayEffects } from '../../src/replay/replay-effects';
import { PersistentActor } from '../../src/store/persistent-actor';
import { busMachine } from '../../src/machines';
import { tempDir } from '../support/temp';

const IMAGE = { sizeBytes: 1 << 26, sectorSize: 512, physicalSectorSize: 512, readOnly: false, discardSupport: null };

it('a session attached while realize runs replays identically, realize keys included', async () => {
  const file = path.join(tempDir(), 's.jsonl');
  const recording = new RecordingSwitch('daemon');
  // The world's effects: the replay ones, reporting to the recording as the live ones do.
  const world = new ReplayEffects((owner, intents) => {
    const [machine, device] = owner.split(':');
    recording.intents(machine, device, intents);
  });
  const store = new ReplayEventStore(Date.now);
  const onTransition = (device?: string) => (t: { stream: string; version: number; at: number; event: { type: string } & Record<string, unknown>; from: unknown; to: unknown }) =>
    recording.transition({ machine: device ? 'vbd' : 'bus', device, ...t });
  recording.processStarted();
  const bus = await PersistentActor.create({ store, stream: 'bus/vbd', machine: busMachine.provide({ actions: world.busActions() as never }) as unknown as AnyStateMachine, onTransition: onTransition() }, { backendDomid: 0 });
  bus.send({ type: 'device.seen', frontendDomid: 1, devid: 51712, state: 1, online: true });
  const identity = deviceIdentity({ backendDomid: 0, frontendDomid: 1, devid: 51712 });
  const vbd = blockDeviceMachine.provide({ actors: world.deviceActors() as never }) as unknown as AnyStateMachine;
  const device = await PersistentActor.create(
    { store, stream: 'device/vbd/1/51712', machine: vbd, onTransition: onTransition('1/51712') },
    { identity, options: { params: '/img', 'device-type': 'disk', dev: 'xvda', mode: 'w' }, settings: DEFAULT_BLOCK_BACKEND_SETTINGS },
  );
  const send = (event: { type: string } & Record<string, unknown>) => {
    world.outcome('vbd:1/51712', event);
    device.send(event);
  };
  send({ type: 'backend.changed', state: 1, online: true });
  expect(JSON.stringify(device.getSnapshot().value)).toContain('realizing');

  const recorder = SessionRecorder.open(file, { source: 'test' });
  recording.attach(recorder, () => checkpointsOf(bus, new Map([['1/51712', device]])));
  send({ type: 'realize.done', realized: { image: IMAGE } });
  const keys = frontendRingKeys({ ringPageOrder: 0, ringRefs: [8], eventChannel: 3, protocol: 'x86_64-abi', persistent: false });
  send({ type: 'frontend.changed', state: 3, keys });
  send({ type: 'connection.ready' });
  await device.stop();
  await bus.stop();
  recording.processStopped();
  recorder.close();

  const session = parseSession(fs.readFileSync(file, 'utf8'));
  expect(session.records.map((r) => r.kind)).toEqual(['attach', 'checkpoint', 'checkpoint', 'input', 'input', 'input', 'stop']);
  const realized = session.records[3] as Extract<(typeof session.records)[number], { kind: 'input' }>;
  expect(realized.intents).toContainEqual({ op: 'write', path: `${identity.backendPath}/sectors`, value: String(IMAGE.sizeBytes / 512) });
  expect(session.records[6]).toMatchObject({ intents: { 'vbd:1/51712': [{ op: 'unbind', domid: 1, port: 3 }, { op: 'unmap-ring', domid: 1, refs: [8] }] } });
  const result = await replaySession(session);
  expect(result.first).toBeNull();
  expect(result.inputs).toBe(3);
});
