// The dataplane child process: the standalone dataplane with the crash hooks read from its
// environment (test/support/hooked-dataplane.ts, bundled by npm run build into dist/test/).
import type { StandaloneConfig } from '../../../src/effects/dataplane/standalone';
import { DataplaneChild as Child, type ChildCommand, type ReadyInfo } from '../../../src/bench/dataplane-child';
import { HOOKED_DATAPLANE, hookedEntry } from '../../support/hooked-entries';

export function testChildCommand(): ChildCommand {
  return { file: hookedEntry(HOOKED_DATAPLANE), execArgv: [], env: process.env };
}

export class DataplaneChild {
  static start(config: StandaloneConfig, env: NodeJS.ProcessEnv = {}): Promise<{ child: Child; ready: ReadyInfo }> {
    return Child.start(config, env, testChildCommand());
  }

  static launch(config: StandaloneConfig, env: NodeJS.ProcessEnv = {}): { child: Child; ready: Promise<ReadyInfo | null> } {
    return Child.launch(config, env, testChildCommand());
  }
}

export type { Child, ReadyInfo };
