// The standalone dataplane's program file (bundled into dist/xenblkd-dataplane.js); see standalone.ts.
import { standaloneMain } from './standalone';

standaloneMain();
