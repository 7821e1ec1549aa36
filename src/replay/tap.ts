// The hooks the engine, the effects and the simulated guests call to record a session, and the
// switch behind them that a running process can turn on and off. When nothing is recording every
// hook is one property check.
import type { Intent, IntentSink } from '../effects/intents';
import { type MachineName, type PersistedStream, type ProcessRole, ownerKey, processOf } from './format';
import type { SessionRecorder } from './recorder';

export interface TransitionInfo {
  readonly machine: MachineName;
  readonly device?: string;
  readonly stream?: string;
  readonly version?: number;
  readonly at: number;
  readonly event: { readonly type: string } & Record<string, unknown>;
  readonly from: unknown;
  readonly to: unknown;
}

export interface CreatedInfo {
  readonly machine: MachineName;
  readonly device?: string;
  readonly stream?: string;
  readonly input: unknown;
  readonly state: unknown;
}

export interface RecoveredInfo {
  readonly machine: MachineName;
  readonly device?: string;
  readonly stream: string;
  readonly persisted: PersistedStream;
  readonly state: unknown;
}

export interface CheckpointInfo {
  readonly machine: MachineName;
  readonly device?: string;
  readonly stream: string;
  readonly version: number;
  readonly input: unknown;
  readonly snapshot: unknown;
}

export interface SessionTap extends IntentSink {
  created(info: CreatedInfo): void;
  recovered(info: RecoveredInfo): void;
  transition(info: TransitionInfo): void;
  retired(machine: MachineName, device: string | undefined): void;
}

/** One process's tap: forwards to a recorder while one is attached. */
export class RecordingSwitch implements SessionTap {
  private recorder: SessionRecorder | undefined;
  private running = false;

  constructor(readonly process: ProcessRole) {}

  get recording(): boolean {
    return this.recorder !== undefined;
  }

  get file(): string | undefined {
    return this.recorder?.file;
  }

  /**
   * Starts recording. In a running process pass its actors' checkpoints: the session then goes
   * on from them (an `attach` record); otherwise the process's start is recorded when it starts.
   */
  attach(recorder: SessionRecorder, checkpoints?: () => readonly CheckpointInfo[]): void {
    if (this.recorder) throw new Error(`already recording to ${this.recorder.file}`);
    this.recorder = recorder;
    if (!this.running) return;
    recorder.write({ kind: 'attach', process: this.process, pid: process.pid });
    for (const c of checkpoints?.() ?? []) {
      recorder.write({ kind: 'checkpoint', machine: c.machine, ...(c.device !== undefined && { device: c.device }), stream: c.stream, version: c.version, input: c.input, snapshot: c.snapshot });
    }
  }

  /** Stops recording (a `detach` record if the process runs) and hands the recorder back to close. */
  detach(): SessionRecorder | undefined {
    const recorder = this.recorder;
    if (!recorder) return undefined;
    if (this.running) recorder.write({ kind: 'detach', process: this.process });
    this.recorder = undefined;
    return recorder;
  }

  processStarted(): void {
    this.running = true;
    this.recorder?.write({ kind: 'start', process: this.process, pid: process.pid });
  }

  /** After the process's actors stopped: what they asked as they stopped. */
  processStopped(): void {
    this.running = false;
    const r = this.recorder;
    if (!r) return;
    const intents = r.takeIntentsWhere((owner) => ownerProcess(owner) === this.process);
    r.write({ kind: 'stop', process: this.process, intents });
  }

  intents(machine: string, device: string | undefined, intents: readonly Intent[]): void {
    this.recorder?.addIntents(ownerKey(machine, device), intents);
  }

  created(info: CreatedInfo): void {
    const r = this.recorder;
    if (!r) return;
    r.write({
      kind: 'created',
      machine: info.machine,
      ...(info.device !== undefined && { device: info.device }),
      ...(info.stream !== undefined && { stream: info.stream }),
      input: info.input,
      state: info.state,
      intents: r.takeIntents(ownerKey(info.machine, info.device)),
    });
  }

  recovered(info: RecoveredInfo): void {
    const r = this.recorder;
    if (!r) return;
    r.write({
      kind: 'recovered',
      machine: info.machine,
      ...(info.device !== undefined && { device: info.device }),
      stream: info.stream,
      persisted: info.persisted,
      state: info.state,
      intents: r.takeIntents(ownerKey(info.machine, info.device)),
    });
  }

  transition(t: TransitionInfo): void {
    const r = this.recorder;
    if (!r) return;
    r.write({
      kind: 'input',
      at: t.at,
      machine: t.machine,
      ...(t.device !== undefined && { device: t.device }),
      ...(t.stream !== undefined && { stream: t.stream }),
      event: t.event,
      ...(t.version !== undefined && { version: t.version }),
      from: t.from,
      to: t.to,
      intents: r.takeIntents(ownerKey(t.machine, t.device)),
    });
  }

  retired(machine: MachineName, device: string | undefined): void {
    const r = this.recorder;
    if (!r) return;
    r.write({ kind: 'retired', machine, ...(device !== undefined && { device }), intents: r.takeIntents(ownerKey(machine, device)) });
  }
}

export function ownerProcess(owner: string): ProcessRole {
  const machine = owner.split(':')[0] as MachineName;
  return processOf(machine);
}
