// The standalone dataplane whose --image is any target spec (the storage bench's child process).
import { standaloneMain } from '../../effects/dataplane/standalone';
import { openBenchTarget } from './open-target';

standaloneMain({ openImage: openBenchTarget });
