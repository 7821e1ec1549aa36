// The backend device, the blkfront frontend and the bus against each other through the xenbus
// protocol keys of an in-memory xenstore, with a minimal effects layer (support/mini-host.ts).
import { XenbusState } from '../../src/machines/xenbus/state';
import { devicePhase } from '../../src/machines/xenbus/describe';
import { deviceIdentity } from '../../src/machines/xenbus/identity';
import { resizeEvent } from '../../src/machines/block/device-machine';
import { IMAGE, MiniDaemon, MiniGrants, MiniXenstore, startGuestFrontend, toolstackCreateVbd } from './support/mini-host';

const S = XenbusState;
const ID = deviceIdentity({ backendDomid: 0, frontendDomid: 1, devid: 51712 });
const KEY = '1/51712';
const FRONTEND_SETTINGS = { maxRingPageOrder: 2, protocol: 'x86_64-abi' as const, persistent: true };

function setup() {
  const xs = new MiniXenstore();
  const grants = new MiniGrants();
  const daemon = new MiniDaemon(xs, grants);
  toolstackCreateVbd(xs, ID, 'xvda');
  xs.run();
  const guest = startGuestFrontend(xs, grants, ID, FRONTEND_SETTINGS);
  xs.run();
  return { xs, grants, daemon, guest };
}

const backendState = (xs: MiniXenstore) => xs.read(`${ID.backendPath}/state`);
const frontendState = (xs: MiniXenstore) => xs.read(`${ID.frontendPath}/state`);

describe('backend and frontend machines over xenstore', () => {
  it('given a toolstack-created vbd and a guest, then both reach Connected with the ring the guest granted', () => {
    const { xs, daemon, guest } = setup();
    expect(backendState(xs)).toBe(String(S.Connected));
    expect(frontendState(xs)).toBe(String(S.Connected));
    expect(xs.read(`${ID.backendPath}/hotplug-status`)).toBe('connected');
    expect(xs.read(`${ID.backendPath}/sectors`)).toBe(String(IMAGE.sizeBytes / 512));
    expect(xs.read(`${ID.frontendPath}/ring-page-order`)).toBe('2');
    const device = daemon.device(KEY).getSnapshot();
    expect(devicePhase(device.value)).toBe('attached.connected');
    expect(device.context.connection).toEqual(guest.actor.getSnapshot().context.ring);
    expect(daemon.connections.has(KEY)).toBe(true);
    // The backend wrote each of its states once.
    const stateWrites = xs.writes.filter((w) => w.path === `${ID.backendPath}/state`).map((w) => w.value);
    expect(stateWrites).toEqual(['1', '2', '4']);
  });

  it('when the guest reloads its driver, then the backend cycles through Closed to InitWait and reconnects a new ring', () => {
    const { xs, daemon, guest } = setup();
    const firstRing = guest.actor.getSnapshot().context.ring;
    guest.actor.send({ type: 'driver.unload' });
    xs.run();
    expect(frontendState(xs)).toBe(String(S.Closed));
    expect(backendState(xs)).toBe(String(S.Closed));
    expect(daemon.connections.has(KEY)).toBe(false);
    guest.actor.send({ type: 'driver.load' });
    xs.run();
    expect(backendState(xs)).toBe(String(S.Connected));
    expect(frontendState(xs)).toBe(String(S.Connected));
    const secondRing = guest.actor.getSnapshot().context.ring;
    expect(secondRing?.ringRefs).not.toEqual(firstRing?.ringRefs);
    expect(daemon.device(KEY).getSnapshot().context.connection).toEqual(secondRing);
  });

  it('when the image grows, then the guest learns the new size while staying connected', () => {
    const { xs, daemon, guest } = setup();
    const device = daemon.device(KEY);
    device.send(resizeEvent(device.getSnapshot().context.realized!, 2 * IMAGE.sizeBytes));
    xs.run();
    expect(guest.resized).toEqual([(2 * IMAGE.sizeBytes) / 512]);
    expect(frontendState(xs)).toBe(String(S.Connected));
    expect(backendState(xs)).toBe(String(S.Connected));
  });

  it('when the device is unplugged, then both sides close, the nodes are removed and the bus retires it', () => {
    const { xs, daemon, guest } = setup();
    daemon.device(KEY).send({ type: 'device.unplug' });
    xs.run();
    expect(guest.actor.getSnapshot().value).toBe('closed');
    expect(xs.exists(ID.backendPath)).toBe(false);
    expect(xs.exists(ID.frontendPath)).toBe(false);
    expect(daemon.devices.has(KEY)).toBe(false);
    expect(daemon.bus.getSnapshot().context.devices).toEqual({});
  });

  it('given the daemon dies while connected, when it restarts from its event streams, then it carries on and serves the close', () => {
    const { xs, grants, daemon, guest } = setup();
    daemon.crash();
    xs.run();
    expect(daemon.connections.size).toBe(0);
    // The guest keeps its Connected state meanwhile.
    expect(frontendState(xs)).toBe(String(S.Connected));
    const restarted = new MiniDaemon(xs, grants, daemon.streams);
    xs.run();
    expect(devicePhase(restarted.device(KEY).getSnapshot().value)).toBe('attached.connected');
    expect(restarted.connections.has(KEY)).toBe(true);
    // No state was written again by the restart.
    const stateWrites = xs.writes.filter((w) => w.path === `${ID.backendPath}/state`).map((w) => w.value);
    expect(stateWrites).toEqual(['1', '2', '4']);
    guest.actor.send({ type: 'driver.unload' });
    xs.run();
    expect(backendState(xs)).toBe(String(S.Closed));
    expect(restarted.connections.has(KEY)).toBe(false);
  });

  it('given the daemon dies before the frontend connects, then the restarted daemon finishes the handshake', () => {
    const xs = new MiniXenstore();
    const grants = new MiniGrants();
    const daemon = new MiniDaemon(xs, grants);
    toolstackCreateVbd(xs, ID, 'xvda');
    xs.run();
    expect(backendState(xs)).toBe(String(S.InitWait));
    daemon.crash();
    const guest = startGuestFrontend(xs, grants, ID, FRONTEND_SETTINGS);
    xs.run();
    expect(frontendState(xs)).toBe(String(S.Initialised));
    const restarted = new MiniDaemon(xs, grants, daemon.streams);
    xs.run();
    expect(backendState(xs)).toBe(String(S.Connected));
    expect(guest.actor.getSnapshot().value).toEqual({ ring: 'connected' });
    expect(restarted.connections.has(KEY)).toBe(true);
  });

  it('given a vdev that does not match the device id, then the backend reports the error and serves nothing', () => {
    const xs = new MiniXenstore();
    const daemon = new MiniDaemon(xs, new MiniGrants());
    toolstackCreateVbd(xs, ID, 'xvdb');
    xs.run();
    expect(xs.read(`${ID.backendPath}/hotplug-status`)).toBe('error');
    expect(daemon.device(KEY).getSnapshot().context.lastError).toEqual({
      source: 'config',
      message: "backend key dev 'xvdb' is device 51728, not 51712",
    });
    expect(backendState(xs)).toBe(String(S.Initialising));
  });
});
