// What the operator reads about a store that refuses writes: the dashboard's store events (sent
// when the health changes, not at every failed write) and the line `xenblkd ls` prints.
import { formatStore } from '../../src/cli/commands/ls';
import { DashboardModel, type DashboardEvent, type StoreView } from '../../src/dashboard/model';
import { blockDeviceMachine } from '../../src/machines';

describe('the store health, as shown', () => {
  it('tells dashboard pages when the store stops and starts taking writes, not at every failed write', () => {
    let view: StoreView = { writable: true, failedWrites: 0, waiting: [] };
    const model = new DashboardModel({ devices: () => [], counters: () => undefined, store: () => view }, { vbd: blockDeviceMachine });
    const sent: DashboardEvent[] = [];
    model.events$.subscribe((e) => sent.push(e));
    model.sample();
    view = { writable: false, reason: 'io', code: 'ENOSPC', message: 'No space left on device', since: 1000, failedWrites: 1, waiting: ['2/51712'] };
    model.sample();
    view = { ...view, failedWrites: 7 };
    model.sample();
    view = { writable: true, failedWrites: 7, waiting: [] };
    model.sample();
    const store = sent.filter((e) => e.kind === 'store').map((e) => (e.data as StoreView).writable);
    expect(store).toEqual([true, false, true]);
    expect((model.state() as { store?: StoreView }).store?.writable).toBe(true);
  });

  it('prints one EVENT STORE line in xenblkd ls while the folder refuses writes, nothing otherwise', () => {
    expect(formatStore({ writable: true, failedWrites: 3, waiting: [] })).toBe('');
    const line = formatStore({ writable: false, reason: 'io', code: 'EROFS', message: 'Read-only file system', since: 10_000, failedWrites: 2, waiting: ['2/51712', '3/51712'] }, 40_000);
    expect(line).toBe('EVENT STORE: the state folder refuses writes (EROFS) for 30 s: state changes wait, connected devices keep serving; 2 new device(s) waiting: 2/51712 3/51712 (Read-only file system)');
    expect(formatStore({ writable: false, reason: 'corrupt', message: 'bad block', failedWrites: 1, waiting: [] })).toMatch(/^EVENT STORE: the event store is corrupt: /);
  });
});
