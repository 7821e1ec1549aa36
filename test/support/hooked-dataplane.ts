// The standalone dataplane with the crash hooks of the environment armed: what the crash tests
// spawn (bundled into dist/test/xenblkd-dataplane-hooked.js by scripts/bundle.js).
import { standaloneMain } from '../../src/effects/dataplane/standalone';
import { crashHooksFromEnv } from './test-hooks';

let crash;
try {
  crash = crashHooksFromEnv();
} catch (e) {
  process.stderr.write(`dataplane: ${(e as Error).message}\n`);
  process.exit(2);
}
standaloneMain({ crash });
