// The dashboard model on a real device machine snapshot: what the page is sent.
import { createActor, type AnyStateMachine } from 'xstate';
import { DashboardModel, eventDetail, type DashboardEvent, type IoCounters } from '../../src/dashboard/model';
import { blockDeviceMachine, busMachine, frontendMachine } from '../../src/machines';
import type { EngineTransition } from '../../src/daemon/engine';

const value = { active: { lifecycle: { attached: 'connected' }, stateWriter: 'idle', unplug: 'idle', update: 'idle' } };

function setup() {
  let now = 1_000_000;
  const devices: { key: string; machine: string; snapshot: { value: unknown; context: unknown } }[] = [];
  const counters = new Map<string, IoCounters>();
  const model = new DashboardModel(
    { devices: () => devices, counters: (k) => counters.get(k) },
    { vbd: blockDeviceMachine as unknown as AnyStateMachine, bus: busMachine as unknown as AnyStateMachine, blkfront: frontendMachine as unknown as AnyStateMachine },
    () => now,
  );
  const events: DashboardEvent[] = [];
  model.events$.subscribe((e) => events.push(e));
  return { model, devices, counters, events, tick: (ms: number) => (now += ms) };
}

const transition = (to: unknown, version: number): EngineTransition => ({
  stream: 'device/vbd/1/51712',
  version,
  at: 5,
  machine: 'vbd',
  device: '1/51712',
  event: { type: 'frontend.changed', state: 4, keys: { 'ring-ref': '8', 'event-channel': '5' } },
  from: {},
  to,
});

describe('dashboard model', () => {
  it('writes a watch observation as what xenstore showed', () => {
    expect(eventDetail({ type: 'frontend.changed', state: 5, keys: { 'ring-ref': '8', protocol: 'x86_64-abi' } })).toBe('state=5 Closing ring-ref=8 protocol=x86_64-abi');
    expect(eventDetail({ type: 'backend.changed', state: 6, online: false })).toBe('state=6 Closed online=0');
    expect(eventDetail({ type: 'connection.ready' })).toBe('');
  });

  it('draws every machine, announces a device on its first transition, then sends the transition with its phase', () => {
    const { model, devices, events } = setup();
    expect(Object.keys(model.machineSvgs)).toEqual(['vbd', 'bus', 'blkfront']);
    expect(model.machineSvgs.vbd).toContain('data-state="vbd.active.lifecycle.attached.connected"');
    // A real snapshot's context, from the machine itself.
    const context = createActor(blockDeviceMachine, {
      input: { identity: { backendDomid: 0, backendType: 'vbd', frontendDomid: 1, devid: 51712, backendPath: '/b', frontendPath: '/f' }, options: {}, settings: undefined },
    } as never).getSnapshot().context;
    devices.push({ key: '1/51712', machine: 'vbd', snapshot: { value, context } });
    model.onTransition(transition(value, 9));
    expect(events.map((e) => e.kind)).toEqual(['devices', 'transition']);
    const t = events[1].data as { phase: string; stateIds: string[]; detail: string; view?: { key: string } };
    expect(t.phase).toBe('attached.connected');
    expect(t.stateIds).toContain('vbd.active.lifecycle.attached.connected');
    expect(t.detail).toBe('state=4 Connected ring-ref=8 event-channel=5');
    expect(t.view?.key).toBe('1/51712');
    model.onTransition(transition(value, 10));
    expect(events.map((e) => e.kind)).toEqual(['devices', 'transition', 'transition']);
  });

  it('turns counters into rates and notices a device that went away', () => {
    const { model, devices, counters, events, tick } = setup();
    devices.push({ key: '1/51712', machine: 'vbd', snapshot: { value, context: {} } });
    counters.set('1/51712', { rdReq: 0, wrReq: 0, rdSect: 0, wrSect: 0, errors: 0 });
    model.sample();
    tick(2000);
    counters.set('1/51712', { rdReq: 300, wrReq: 100, rdSect: 2 * 2048, wrSect: 4 * 2048, errors: 1 });
    const [r] = model.sample();
    expect(r).toMatchObject({ device: '1/51712', iops: 200, errors: 1 });
    expect(r.readMBps).toBeCloseTo((2 * 2048 * 512) / 2 / 1e6);
    expect(r.writeMBps).toBeCloseTo((4 * 2048 * 512) / 2 / 1e6);
    expect(model.state().rates['1/51712']).toHaveLength(1);
    devices.pop();
    events.length = 0;
    tick(1000);
    model.sample();
    expect(events).toEqual([{ kind: 'devices', data: [] }]);
  });
});
