// Memory the daemon holds after a full collection: garbage left by a burst of work (thousands of
// devices connecting) otherwise hides what an idle device costs.
import * as v8 from 'node:v8';
import * as vm from 'node:vm';

let gc: (() => void) | undefined;

export interface LiveMemory {
  readonly rss: number;
  readonly heapUsed: number;
  readonly external: number;
  readonly arrayBuffers: number;
}

export function liveMemory(): LiveMemory {
  if (!gc) {
    v8.setFlagsFromString('--expose-gc');
    gc = vm.runInNewContext('gc') as () => void;
  }
  gc();
  const m = process.memoryUsage();
  return { rss: m.rss, heapUsed: m.heapUsed, external: m.external, arrayBuffers: m.arrayBuffers };
}
