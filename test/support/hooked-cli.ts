// The xenblkd CLI with the test hooks of the environment installed in `run` (bundled into
// dist/test/xenblkd-hooked.js by scripts/bundle.js, whose entry defines the command registry
// before this module runs; every other command is the shipped one).
import * as path from 'node:path';
import { runCommand } from '../../src/cli/commands/run';
import { runCli } from '../../src/cli/main';
import type { Command } from '../../src/cli/command';
import { crashHooksFromEnv, killAfterEventsFromEnv } from './test-hooks';

const registry = (globalThis as { __XENBLKD_COMMANDS__?: Record<string, () => { command: Command }> }).__XENBLKD_COMMANDS__;
if (!registry) throw new Error('hooked-cli runs from its bundle (npm run build): the command registry is missing');
let hooked: Command;
try {
  hooked = runCommand({ crash: crashHooksFromEnv(), onPersisted: killAfterEventsFromEnv() });
} catch (e) {
  process.stderr.write(`xenblkd: ${(e as Error).message}\n`);
  process.exit(2);
}
registry.run = () => ({ command: hooked });
// Dataplane children this process starts (the benchmarks) run the hooked build next to this one.
(globalThis as { __XENBLKD_DATAPLANE_ENTRY__?: string }).__XENBLKD_DATAPLANE_ENTRY__ = path.join(__dirname, 'xenblkd-dataplane-hooked.js');
runCli();
