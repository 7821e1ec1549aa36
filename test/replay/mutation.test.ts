// The fixtures pin the machines' behaviour: replaying them with one rule changed diverges, at
// the first event the rule decides.
import type { AnyStateMachine } from 'xstate';
import { blockDeviceMachine, busMachine, frontendMachine, XenbusState } from '../../src/machines';
import { replaySession } from '../../src/replay';
import { loadFixture } from './support/fixtures';

describe('replay against a changed machine', () => {
  it('reports the first event a changed device rule decides differently', async () => {
    const session = loadFixture('driver-reload');
    // A rule changed: the device no longer reopens for a reloaded frontend.
    const vbd = blockDeviceMachine.provide({ guards: { frontendReopens: () => false } }) as unknown as AnyStateMachine;
    const result = await replaySession(session, { machines: { vbd } });
    const firstReopen = session.records.find(
      (r) => r.kind === 'input' && r.machine === 'vbd' && r.event.type === 'frontend.changed' && r.event.state === XenbusState.Initialising && JSON.stringify(r.from).includes('closed'),
    )!;
    expect(result.first).toMatchObject({ n: firstReopen.n, line: firstReopen.line, owner: 'vbd:1/51728', event: 'frontend.changed' });
    expect(result.first!.differs).toEqual(expect.arrayContaining(['state', 'intents']));
    expect(JSON.stringify(result.first!.expected.state)).toContain('initWait');
    expect(JSON.stringify(result.first!.actual.state)).toContain('closed');
  });

  it('catches a changed write even when the states agree', async () => {
    const session = loadFixture('online-resize');
    // The resize publishes but no longer records the new keys: publishUpdate writes the old ones.
    const vbd = blockDeviceMachine.provide({ actions: { recordUpdate: () => undefined } as never }) as unknown as AnyStateMachine;
    const result = await replaySession(session, { machines: { vbd } });
    expect(result.first).toMatchObject({ event: 'device.update', differs: ['intents'] });
  });

  it('catches a changed frontend rule and a changed bus rule', async () => {
    const blkfront = frontendMachine.provide({ guards: { diskSizeChanged: () => false } }) as unknown as AnyStateMachine;
    const resize = await replaySession(loadFixture('online-resize'), { machines: { blkfront } });
    expect(resize.first).toMatchObject({ owner: 'blkfront:1/51712', event: 'backend.changed' });

    const bus = busMachine.provide({ guards: { creatable: () => false } }) as unknown as AnyStateMachine;
    const unplug = await replaySession(loadFixture('toolstack-unplug'), { machines: { bus } });
    expect(unplug.first).toMatchObject({ owner: 'bus', event: 'device.seen', differs: ['intents'] });
  });

  it('goes through recovery with the changed machine after a crash', async () => {
    const session = loadFixture('crash-recovery');
    const vbd = blockDeviceMachine.provide({ guards: { frontendConnects: () => false } }) as unknown as AnyStateMachine;
    const result = await replaySession(session, { machines: { vbd } });
    // The first connect attempt comes after the recovery, which itself replays identically.
    const recovered = session.records.find((r) => r.kind === 'recovered' && r.machine === 'vbd')!;
    expect(result.first!.n).toBeGreaterThan(recovered.n);
    expect(result.first).toMatchObject({ event: 'frontend.changed', differs: expect.arrayContaining(['state', 'intents']) });
  });
});
