// Recorded sessions and deterministic replay (docs/session-format.md).
export * from './format';
export { SessionFormatError, parseSession, parseRecord, type ParsedSession, type ParseOptions } from './parse';
export { SessionRecorder, RecorderError, type RecorderOptions } from './recorder';
export { RecordingSwitch, type SessionTap, type CheckpointInfo, type CreatedInfo, type RecoveredInfo, type TransitionInfo } from './tap';
export { TransitionObserver } from './observe';
export { readPersisted, ReplayEventStore } from './persisted';
export { replaySession, type ReplayResult, type Divergence, type ReplayOptions } from './replayer';
export { summaryLine, divergenceLines, writeSession } from './report';
export { checkpointsOf } from './checkpoints';
