// The dataplane child process, running the sources compiled once per test file.
import type { StandaloneConfig } from '../../../src/effects/dataplane/standalone';
import { DataplaneChild as Child, type ChildCommand, type ReadyInfo } from '../../../src/bench/dataplane-child';
import { compiledModule } from './compiled';

export function testChildCommand(): ChildCommand {
  const m = compiledModule('effects/dataplane/standalone.ts');
  return { file: m.file, execArgv: [], env: m.env };
}

export class DataplaneChild {
  static start(config: StandaloneConfig, env: NodeJS.ProcessEnv = {}): Promise<{ child: Child; ready: ReadyInfo }> {
    return Child.start(config, env, testChildCommand());
  }
}

export type { Child };
