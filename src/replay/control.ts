// The daemon's side of `xenblkd record`: the control socket's `record` op turns recording on (a
// file) or off (stop) while the daemon runs.
import * as path from 'node:path';
import type { AnyStateMachine } from 'xstate';
import type { Logger } from '../log';
import type { PersistentActor } from '../store/persistent-actor';
import { checkpointsOf } from './checkpoints';
import { SessionRecorder } from './recorder';
import type { RecordingSwitch } from './tap';

export interface RecordableEngine {
  busActor(): PersistentActor<AnyStateMachine>;
  deviceActors(): ReadonlyMap<string, PersistentActor<AnyStateMachine>>;
}

export function openDaemonRecorder(file: string, logger: Logger): SessionRecorder {
  return SessionRecorder.open(file, {
    source: 'daemon',
    onError: (err) => logger.error({ err }, err.message),
  });
}

/** `{op:"record", file}` starts recording into file (absolute); `{op:"record", stop:true}` stops. */
export async function handleRecordRequest(
  req: Record<string, unknown>,
  recording: RecordingSwitch,
  engine: RecordableEngine,
  logger: Logger,
): Promise<{ recording?: string; stopped?: string; records?: number }> {
  if (req.stop === true) {
    const recorder = recording.detach();
    if (!recorder) throw new Error('not recording');
    recorder.close();
    logger.info({ file: recorder.file, records: recorder.records }, 'session recording stopped');
    return { stopped: recorder.file, records: recorder.records };
  }
  const file = req.file;
  if (typeof file !== 'string' || !path.isAbsolute(file)) throw new Error('record takes an absolute file path or stop');
  if (recording.recording) throw new Error(`already recording to ${recording.file}`);
  const recorder = openDaemonRecorder(file, logger);
  recording.attach(recorder, () => checkpointsOf(engine.busActor(), engine.deviceActors()));
  logger.info({ file }, 'session recording started');
  return { recording: file };
}
