// Benchmark of session replay, next to references measured in the same run: JSON.parse of the
// same lines, and the same events sent to bare XState actors (no persistence, no comparison).
// Also measures what recording costs per event. The session is a long recording of devices
// cycling through guest driver reloads, produced by the recording path the daemon uses
// (RecordingSwitch, SessionRecorder, PersistentActor), with the replay effects standing for the
// world, so it has the shape of a live recording. Figures are CPU time where it says so: the
// machine is shared, and "per CPU-second" is what one core does.
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { type AnyStateMachine, createActor, fromCallback } from 'xstate';
import { DEFAULT_BLOCK_BACKEND_SETTINGS, blockDeviceMachine, busMachine, deviceIdentity, deviceKey, frontendRingKeys } from '../machines';
import { MemoryEventStore } from '../store/memory-store';
import { PersistentActor, type TransitionRecord } from '../store/persistent-actor';
import { parseSession } from '../replay/parse';
import { SessionRecorder } from '../replay/recorder';
import { ReplayEffects } from '../replay/replay-effects';
import { replaySession } from '../replay/replayer';
import { RecordingSwitch } from '../replay/tap';

export interface ReplayBenchOptions {
  /** Devices in the generated session. Default 10. */
  devices?: number;
  /** Driver-reload cycles per device (10 events each). Default 150. */
  cycles?: number;
  /** Where lines go. Default: stdout. */
  print?: (line: string) => void;
}

export interface ReplayBenchResult {
  events: number;
  bytes: number;
  parseLinesPerSec: number;
  bareXstateEventsPerSec: number;
  bareXstateEventsPerCpuSec: number;
  replayEventsPerSec: number;
  replayEventsPerCpuSec: number;
  recordingUsPerEvent: number;
  machineUsPerEvent: number;
  target: number;
  meetsTarget: boolean;
}

export const REPLAY_TARGET_EVENTS_PER_SEC = 50_000;

const IMAGE = { sizeBytes: 64 << 20, sectorSize: 512, physicalSectorSize: 512, readOnly: false, discardSupport: null };
type Ev = { type: string } & Record<string, unknown>;

/** The events one device goes through: created, realized, then `cycles` driver reloads. */
function deviceScript(i: number, cycles: number): Ev[] {
  const ringKeys = (c: number) =>
    frontendRingKeys({ ringPageOrder: 0, ringRefs: [8 + ((c * 7 + i) % 500)], eventChannel: 1 + (c % 60), protocol: 'x86_64-abi', persistent: true });
  const be = (state: number): Ev => ({ type: 'backend.changed', state, online: true });
  const fe = (state: number, keys: Record<string, string>): Ev => ({ type: 'frontend.changed', state, keys });
  const out: Ev[] = [be(1), fe(1, {}), { type: 'realize.done', realized: { image: IMAGE } }, be(2)];
  for (let c = 0; c < cycles; c++) {
    const keys = ringKeys(c);
    out.push(fe(3, keys), { type: 'connection.ready' }, be(4), fe(4, keys), fe(5, keys), be(5), fe(6, keys), be(6), fe(1, keys), be(2));
  }
  return out;
}

function inputOf(i: number) {
  const identity = deviceIdentity({ backendDomid: 0, frontendDomid: i + 1, devid: 51712 });
  return { identity, options: { params: `/var/lib/images/d${i}.img`, mode: 'w', type: 'phy', 'device-type': 'disk', dev: 'xvda' }, settings: DEFAULT_BLOCK_BACKEND_SETTINGS };
}

/**
 * Runs the devices' scripts through persisted machines, as the engine does, recording through
 * `recording` when it has a recorder. Returns the CPU microseconds the events took.
 */
async function runScript(devices: number, cycles: number, recording: RecordingSwitch): Promise<{ events: number; cpuUs: number }> {
  const effects = new ReplayEffects((owner, intents) => {
    const [machine, device] = owner.split(':');
    recording.intents(machine, device, intents);
  });
  const store = new MemoryEventStore();
  const observe = (machine: 'bus' | 'vbd', device?: string) => (t: TransitionRecord) => {
    if (recording.recording) recording.transition({ machine, device, stream: t.stream, version: t.version, at: t.at, event: t.event, from: t.from, to: t.to });
  };
  const vbd = blockDeviceMachine.provide({ actors: effects.deviceActors() as never }) as unknown as AnyStateMachine;
  const busLogic = busMachine.provide({ actions: effects.busActions() as never }) as unknown as AnyStateMachine;
  recording.processStarted();
  const busInput = { backendDomid: 0, backendType: 'vbd' };
  const bus = await PersistentActor.create({ store, stream: 'bus/vbd', machine: busLogic, onTransition: observe('bus') }, busInput);
  recording.created({ machine: 'bus', stream: 'bus/vbd', input: busInput, state: bus.getSnapshot().value });
  const actors: { key: string; actor: PersistentActor<AnyStateMachine>; script: Ev[] }[] = [];
  for (let i = 0; i < devices; i++) {
    const key = deviceKey(i + 1, 51712);
    bus.send({ type: 'device.seen', frontendDomid: i + 1, devid: 51712, state: 1, online: true });
    const stream = `device/vbd/${key}`;
    const input = inputOf(i);
    const actor = await PersistentActor.create({ store, stream, machine: vbd, onTransition: observe('vbd', key), snapshotEvery: 64 }, input);
    recording.created({ machine: 'vbd', device: key, stream, input, state: actor.getSnapshot().value });
    actors.push({ key, actor, script: deviceScript(i, cycles) });
  }
  let events = devices;
  const start = process.cpuUsage();
  // Devices interleave, as they do in a daemon.
  for (let step = 0; actors.some((a) => step < a.script.length); step++) {
    for (const a of actors) {
      const event = a.script[step];
      if (!event) continue;
      effects.outcome(`vbd:${a.key}`, event);
      a.actor.send(event);
      events += 1;
    }
    if (step % 16 === 15) await new Promise((r) => setImmediate(r));
  }
  const used = process.cpuUsage(start);
  for (const a of actors) await a.actor.stop();
  await bus.stop();
  recording.processStopped();
  return { events, cpuUs: used.user + used.system };
}

/** The same device events sent to bare XState actors: the floor under any replay. */
function bareXstate(devices: number, cycles: number): { wall: number; cpu: number } {
  const noop = fromCallback(() => () => undefined);
  const machine = blockDeviceMachine.provide({
    actors: { realize: noop, connection: noop, writeBackendState: noop, reportFailure: noop, publishUpdate: noop, unplug: noop, destroy: noop } as never,
  });
  const runs = Array.from({ length: devices }, (_, i) => ({ actor: createActor(machine, { input: inputOf(i) as never }).start(), script: deviceScript(i, cycles) }));
  let events = 0;
  const start = performance.now();
  const cpu0 = process.cpuUsage();
  for (let step = 0; step < runs[0].script.length; step++) {
    for (const r of runs) {
      r.actor.send(r.script[step] as never);
      events += 1;
    }
  }
  const cpu = process.cpuUsage(cpu0);
  const rate = { wall: events / ((performance.now() - start) / 1000), cpu: events / ((cpu.user + cpu.system) / 1e6) };
  for (const r of runs) r.actor.stop();
  return rate;
}

/** Writes the benchmark's session (a recording of `devices` x `cycles` driver reloads) to file. */
export async function recordBenchSession(file: string, devices: number, cycles: number): Promise<{ events: number; cpuUs: number }> {
  const recorder = SessionRecorder.open(file, { source: 'bench', description: `${devices} devices x ${cycles} driver reloads` });
  const on = new RecordingSwitch('daemon');
  on.attach(recorder);
  try {
    return await runScript(devices, cycles, on);
  } finally {
    recorder.close();
  }
}

const fmt = (n: number) => Math.round(n).toLocaleString('en-US');

export async function runReplayBench(opts: ReplayBenchOptions = {}): Promise<ReplayBenchResult> {
  const devices = opts.devices ?? 10;
  const cycles = opts.cycles ?? 150;
  const print = opts.print ?? ((l: string) => process.stdout.write(`${l}\n`));
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'xenblkd-replay-bench-'));
  try {
    // Recording: the same script with and without a recorder attached, alternately after a
    // warm-up run; the least CPU of each counts (the others lost time to the machine's load).
    await runScript(devices, Math.min(cycles, 20), new RecordingSwitch('daemon'));
    const file = path.join(dir, 'session.jsonl');
    let plainUs = Infinity;
    let recordedUs = Infinity;
    let events = 0;
    for (let round = 0; round < 2; round++) {
      plainUs = Math.min(plainUs, (await runScript(devices, cycles, new RecordingSwitch('daemon'))).cpuUs);
      fs.rmSync(file, { force: true });
      const recorded = await recordBenchSession(file, devices, cycles);
      recordedUs = Math.min(recordedUs, recorded.cpuUs);
      events = recorded.events;
    }
    const machineUsPerEvent = plainUs / events;
    const recordingUsPerEvent = Math.max(0, (recordedUs - plainUs) / events);

    const text = fs.readFileSync(file, 'utf8');
    const lines = text.split('\n').filter(Boolean);
    let t = performance.now();
    for (const l of lines) JSON.parse(l);
    const parseLinesPerSec = lines.length / ((performance.now() - t) / 1000);

    const bare = bareXstate(devices, cycles);

    const cpu0 = process.cpuUsage();
    t = performance.now();
    const session = parseSession(text);
    const result = await replaySession(session);
    const wall = (performance.now() - t) / 1000;
    const cpu = process.cpuUsage(cpu0);
    if (result.first) throw new Error(`the generated session does not replay identically (event ${result.first.n})`);
    const replayEventsPerSec = result.inputs / wall;
    const replayEventsPerCpuSec = result.inputs / ((cpu.user + cpu.system) / 1e6);

    print(`replay benchmark: ${devices} devices x ${cycles} guest driver reloads, ${fmt(result.inputs)} events, ${(text.length / 1e6).toFixed(1)} MB`);
    print(`  JSON.parse of the session lines      ${fmt(parseLinesPerSec).padStart(10)} lines/s`);
    print(`  bare XState actors, same events      ${fmt(bare.wall).padStart(10)} events/s, ${fmt(bare.cpu)} per CPU-second`);
    print(`  replay (parse, machines, compare)    ${fmt(replayEventsPerSec).padStart(10)} events/s, ${fmt(replayEventsPerCpuSec)} per CPU-second (target ${fmt(REPLAY_TARGET_EVENTS_PER_SEC)}: ${replayEventsPerCpuSec >= REPLAY_TARGET_EVENTS_PER_SEC ? 'met' : 'not met'})`);
    print(`  recording                            ${recordingUsPerEvent.toFixed(1).padStart(10)} us/event CPU on top of the machines' ${machineUsPerEvent.toFixed(1)} us (${((100 * recordingUsPerEvent) / machineUsPerEvent).toFixed(1)}%)`);
    return {
      events: result.inputs,
      bytes: text.length,
      parseLinesPerSec,
      bareXstateEventsPerSec: bare.wall,
      bareXstateEventsPerCpuSec: bare.cpu,
      replayEventsPerSec,
      replayEventsPerCpuSec,
      recordingUsPerEvent,
      machineUsPerEvent,
      target: REPLAY_TARGET_EVENTS_PER_SEC,
      meetsTarget: replayEventsPerCpuSec >= REPLAY_TARGET_EVENTS_PER_SEC,
    };
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

if (require.main === module) {
  runReplayBench().catch((err: Error) => {
    process.stderr.write(`replay bench: ${err.message}\n`);
    process.exit(1);
  });
}
