// Performs the xenstore intents of an effect (src/effects/intents.ts) on a connection or inside a
// transaction. Consecutive writes go out together (pipelined); a run of conditional writes reads
// its condition once; removals go one by one, in order.
import type { XsOps } from '../io/xs/client';
import type { Intent } from './intents';
import { removeIfPresent } from './xenstore';

type XenstoreIntent = Extract<Intent, { op: 'write' | 'rewrite' | 'rm' }>;

function isXenstoreIntent(i: Intent): i is XenstoreIntent {
  return i.op === 'write' || i.op === 'rewrite' || i.op === 'rm';
}

export async function applyXenstoreIntents(xs: XsOps, intents: readonly Intent[]): Promise<void> {
  const list = intents.filter(isXenstoreIntent);
  for (let i = 0; i < list.length; ) {
    const first = list[i];
    let j = i + 1;
    if (first.op === 'write') {
      while (j < list.length && list[j].op === 'write' && (list[j] as { unlessExists?: string }).unlessExists === first.unlessExists) j++;
      const run = list.slice(i, j) as Extract<Intent, { op: 'write' }>[];
      if (first.unlessExists === undefined || (await xs.tryRead(first.unlessExists)) === undefined) {
        await Promise.all(run.map((w) => xs.write(w.path, w.value)));
      }
    } else if (first.op === 'rewrite') {
      const value = await xs.tryRead(first.path);
      if (value !== undefined) await xs.write(first.path, value);
    } else {
      await removeIfPresent(xs, first.path);
    }
    i = j;
  }
}
