// Every recorded session in test/fixtures/sessions replays identically with this version's
// machines: a change of behaviour shows up here as the first event that differs.
import { replaySession, type LocatedRecord } from '../../src/replay';
import { fixtureNames, loadFixture } from './support/fixtures';

const REQUIRED = [
  'connect-disconnect-x86_64',
  'connect-disconnect-x86_32',
  'connect-disconnect-native',
  'driver-reload',
  'toolstack-unplug',
  'online-resize',
  'hostile-frontend',
  'crash-recovery',
];

const inputs = (records: readonly LocatedRecord[], machine: string, type: string) =>
  records.filter((r): r is Extract<LocatedRecord, { kind: 'input' }> => r.kind === 'input' && r.machine === machine && r.event.type === type);

describe('recorded sessions', () => {
  it('cover every scenario the project keeps', () => {
    expect(fixtureNames()).toEqual(expect.arrayContaining(REQUIRED));
  });

  it.each(fixtureNames())('%s replays identically', async (name) => {
    const session = loadFixture(name);
    const result = await replaySession(session);
    expect(result.first).toBeNull();
    expect(result.divergences).toBe(0);
    expect(result.inputs).toBe(session.records.filter((r) => r.kind === 'input').length);
    // A daemon started between two kills of the real-Xen run sees only a few inputs.
    expect(result.inputs).toBeGreaterThan(name.startsWith('real-xen-') ? 4 : 10);
  });

  it('the real-Xen sessions (Linux blkfront as the peer) hold its handshake, a recovery, an unplug and a replug', () => {
    const real = ['real-xen-1', 'real-xen-2', 'real-xen-3'].map((n) => loadFixture(n).records);
    const frontendStates = (records: readonly LocatedRecord[]) => inputs(records, 'vbd', 'frontend.changed').map((r) => r.event.state);
    expect(frontendStates(real[0])).toEqual([1, 3, 4]);
    expect(real[1].filter((r) => r.kind === 'recovered').length).toBeGreaterThan(0);
    expect(inputs(real[1], 'vbd', 'connection.ready')).toHaveLength(1);
    const last = frontendStates(real[2]);
    // Unplugged (Closing, Closed), then plugged again and connected from Initialising.
    expect(last.join(',')).toMatch(/5,6,.*1,3,4/);
    expect(inputs(real[2], 'bus', 'device.destroyed').length).toBeGreaterThan(0);
  });

  // From a real-Xen run: start 5 plugs a qcow2 disk (served through qemu-storage-daemon) into
  // domu2 as xvdb and is SIGKILLed mid-write on it (kill-5); start 6 recovers both disks.
  it('the real-Xen qcow2 sessions: the disk plugged in and connected, killed without a stop, then recovered and connected again', () => {
    const [plugged, recovered] = ['real-xen-5', 'real-xen-6'].map((n) => loadFixture(n).records);
    const created = plugged.filter((r): r is Extract<LocatedRecord, { kind: 'created' }> => r.kind === 'created');
    expect(created).toHaveLength(1);
    const qcow2 = created[0]!;
    expect(qcow2.device).toBe('2/51728');
    expect(JSON.stringify(qcow2)).toContain('"params":"qcow2:/var/lib/xentest/disk1.qcow2"');
    const ready = (records: readonly LocatedRecord[]) => inputs(records, 'vbd', 'connection.ready').map((r) => r.device);
    expect(ready(plugged)).toContain('2/51728');
    expect(plugged.some((r) => r.kind === 'stop')).toBe(false);
    const again = recovered.filter((r) => r.kind === 'recovered' && 'device' in r && r.device === '2/51728');
    expect(again).toHaveLength(1);
    expect(JSON.stringify(again[0])).toContain('qcow2:/var/lib/xentest/disk1.qcow2');
    expect(ready(recovered)).toContain('2/51728');
  });

  it('the SIGKILL session shows the kill and goes through recovery', async () => {
    const session = loadFixture('crash-recovery');
    const starts = session.records.filter((r) => r.kind === 'start');
    expect(starts).toHaveLength(2);
    expect(starts[0]).not.toMatchObject({ pid: (starts[1] as { pid: number }).pid });
    // No stop between the two starts: the first daemon was killed.
    const between = session.records.slice(session.records.indexOf(starts[0]), session.records.indexOf(starts[1]));
    expect(between.some((r) => r.kind === 'stop')).toBe(false);
    const recovered = session.records.filter((r) => r.kind === 'recovered');
    expect(recovered.map((r) => (r as { machine: string }).machine).sort()).toEqual(['bus', 'vbd']);
    const result = await replaySession(session);
    expect(result).toMatchObject({ crashes: 1, recoveries: 2, divergences: 0 });
    // After recovery the device connects: the ring is mapped by the recovered machine.
    const afterCrash = session.records.slice(session.records.indexOf(starts[1]));
    expect(afterCrash.some((r) => 'intents' in r && Array.isArray(r.intents) && r.intents.some((i) => i.op === 'map-ring'))).toBe(true);
  });

  it('each ABI connects with its own protocol, and a frontend without the key gets x86_32', () => {
    for (const [name, protocol] of [['connect-disconnect-x86_64', 'x86_64-abi'], ['connect-disconnect-x86_32', 'x86_32-abi']] as const) {
      const ring = inputs(loadFixture(name).records, 'blkfront', 'ring.ready');
      expect(ring.map((r) => (r.event.ring as { protocol: string }).protocol)).toEqual([protocol]);
    }
    const native = loadFixture('connect-disconnect-native').records;
    const connect = inputs(native, 'vbd', 'frontend.changed').find((r) => r.event.state === 3)!;
    expect(connect.event.keys).not.toHaveProperty('protocol');
    expect(connect.intents.map((i) => i.op)).toEqual(['map-ring', 'bind']);
    expect(inputs(native, 'vbd', 'connection.ready')).toHaveLength(1);
  });

  it('the hostile session shows the refused connects, the failed map and the reported config error', () => {
    const records = loadFixture('hostile-frontend').records;
    const failed = inputs(records, 'vbd', 'connection.failed');
    expect(failed).toHaveLength(1);
    expect(failed[0].event.message).toMatch(/cannot map the ring/);
    const writes = records.flatMap((r) => ('intents' in r && Array.isArray(r.intents) ? r.intents : []));
    expect(writes).toContainEqual(expect.objectContaining({ op: 'write', path: expect.stringMatching(/hotplug-error$/), value: expect.stringMatching(/params/) }));
    // Garbage frontend states are observed as Unknown and close the backend.
    expect(inputs(records, 'vbd', 'frontend.changed').filter((r) => r.event.state === 0).length).toBeGreaterThanOrEqual(4);
  });
});
