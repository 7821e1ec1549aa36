// Sessions recorded now, from the running system, replay identically: the world in this process
// (daemon and guests), recording turned on and off in a running daemon, and a daemon child
// process SIGKILLed mid-handshake.
import * as fs from 'node:fs';
import * as path from 'node:path';
import { command as recordCommand } from '../../src/cli/commands/record';
import { serve } from '../../src/daemon/serve';
import { createDataplane } from '../../src/effects/dataplane';
import { connectSimHypervisor } from '../../src/io/sim';
import { openRawImage } from '../../src/io/storage/raw';
import { silentLogger } from '../../src/log';
import { parseSession, replaySession } from '../../src/replay';
import { SimHost } from '../../src/sim/host';
import { attachDisk, detachDisk } from '../../src/toolstack/disk';
import { waitForValue } from '../support/sim-world';
import { ringOnlyQueueFactory } from '../support/ring-only';
import { makeImage, tempDir } from '../support/temp';
import { SCENARIOS } from './support/scenarios';

async function recordAndReplay(name: string) {
  const file = path.join(tempDir(), `${name}.jsonl`);
  await SCENARIOS.find((s) => s.name === name)!.record(file);
  const session = parseSession(fs.readFileSync(file, 'utf8'));
  return { session, result: await replaySession(session) };
}

describe('sessions recorded live', () => {
  it.each(['connect-disconnect-x86_64', 'online-resize'])('%s: recorded from the world, replays identically', async (name) => {
    const { session, result } = await recordAndReplay(name);
    expect(result.first).toBeNull();
    expect(result.byMachine.vbd).toBeGreaterThan(5);
    expect(result.byMachine.blkfront).toBeGreaterThan(3);
    // What the backend wrote is in the recording, ring and all.
    const asked = session.records.flatMap((r) => ('intents' in r && Array.isArray(r.intents) ? r.intents : []));
    expect(asked).toContainEqual(expect.objectContaining({ op: 'write', path: '/local/domain/0/backend/vbd/1/51712/state', value: '4' }));
    expect(asked).toContainEqual(expect.objectContaining({ op: 'map-ring', domid: 1 }));
    expect(asked).toContainEqual({ op: 'rm', path: '/local/domain/0/backend/vbd/1/51712' });
  });

  it('a daemon SIGKILLed mid-handshake: the recording spans both processes and replays through recovery', async () => {
    const { session, result } = await recordAndReplay('crash-recovery');
    expect(result).toMatchObject({ crashes: 1, divergences: 0 });
    expect(result.recoveries).toBeGreaterThanOrEqual(2);
    const pids = new Set(session.records.filter((r) => r.kind === 'start').map((r) => (r as { pid: number }).pid));
    expect(pids.size).toBe(2);
  }, 60_000);

  it('recording turned on and off in a running daemon starts from a checkpoint and replays identically', async () => {
    const dir = tempDir();
    const xenstoreSocket = path.join(dir, 'xs.sock');
    const stateDir = path.join(dir, 'daemon');
    const host = await SimHost.start({ stateDir: path.join(dir, 'sim'), xenstoreSocket, guests: 1, memoryBytes: 64 << 20, queueFactory: ringOnlyQueueFactory, logger: silentLogger });
    const serving = await serve({ xenstorePath: xenstoreSocket, stateDir, ports: () => connectSimHypervisor(host.hvSocket), openImage: openRawImage, startDataplane: createDataplane, logger: silentLogger });
    const out: string[] = [];
    const write = jest.spyOn(process.stdout, 'write').mockImplementation((chunk) => {
      out.push(String(chunk));
      return true;
    });
    try {
      const xs = await host.toolstack();
      const id = await attachDisk(xs, { frontendDomid: 1, vdev: 'xvda', image: makeImage(dir, 'a.img', 16 << 20) });
      await waitForValue(xs, `${id.frontendPath}/state`, '4');
      const file = path.join(dir, 'session.jsonl');
      expect(await recordCommand.run(['--state-dir', stateDir, file])).toBe(0);
      await expect(recordCommand.run(['--state-dir', stateDir, file])).rejects.toThrow(`already recording to ${file}`);
      const guest = host.guest(1);
      guest.unloadDriver(id.devid);
      await waitForValue(xs, `${id.backendPath}/state`, '6');
      guest.loadDriver(id.devid);
      await waitForValue(xs, `${id.backendPath}/state`, '4');
      await waitForValue(xs, `${id.frontendPath}/state`, '4');
      await serving.daemon.engine.settled();
      expect(await recordCommand.run(['--state-dir', stateDir, '--stop'])).toBe(0);
      // A second stretch in the same file: the disk is removed.
      expect(await recordCommand.run(['--state-dir', stateDir, file])).toBe(0);
      expect((await detachDisk(xs, id)).clean).toBe(true);
      await serving.daemon.engine.settled();
      await new Promise((r) => setTimeout(r, 50));
      await serving.daemon.engine.settled();
      expect(await recordCommand.run(['--state-dir', stateDir, '--stop'])).toBe(0);
      await expect(recordCommand.run(['--state-dir', stateDir, '--stop'])).rejects.toThrow('not recording');
      expect(out.join('')).toMatch(new RegExp(`recording to ${file}\\nstopped recording ${file} \\(\\d+ records\\)\\n`));

      const session = parseSession(fs.readFileSync(file, 'utf8'));
      expect(session.records.filter((r) => r.kind === 'attach')).toHaveLength(2);
      expect(session.records.filter((r) => r.kind === 'checkpoint').map((r) => (r as { machine: string }).machine)).toEqual(['bus', 'vbd', 'bus', 'vbd']);
      const result = await replaySession(session);
      expect(result.first).toBeNull();
      expect(result.byMachine.vbd).toBeGreaterThan(5);
      // The driver reload was seen: the device reopened and connected on the new ring.
      expect(session.records.some((r) => r.kind === 'input' && r.event.type === 'connection.ready')).toBe(true);
    } finally {
      write.mockRestore();
      await serving.stop();
      await host.close();
    }
  });
});
