// Small xenstore helpers the effects share.
import type { XenStore, XsOps } from '../io/xs/client';
import { XsError } from '../io/xs/client';

/** Reads the listed keys of a directory; absent keys are left out. */
export async function readKeys(xs: XsOps, dir: string, keys: readonly string[]): Promise<Record<string, string>> {
  const values = await Promise.all(keys.map((k) => xs.tryRead(`${dir}/${k}`)));
  const out: Record<string, string> = {};
  keys.forEach((k, i) => {
    const v = values[i];
    if (v !== undefined) out[k] = v;
  });
  return out;
}

/** Reads every key directly under a directory (no recursion); {} when it does not exist. */
export async function readDirectory(xs: XsOps, dir: string): Promise<Record<string, string>> {
  let names: string[];
  try {
    names = await xs.directory(dir);
  } catch (e) {
    if (e instanceof XsError && e.errno === 'ENOENT') return {};
    throw e;
  }
  return readKeys(xs, dir, names);
}

export async function writeKeys(xs: XsOps, dir: string, keys: Readonly<Record<string, string>>): Promise<void> {
  await Promise.all(Object.entries(keys).map(([k, v]) => xs.write(`${dir}/${k}`, v)));
}

/** Removes a node; a node that is already gone is fine. */
export async function removeIfPresent(xs: XsOps, path: string): Promise<void> {
  try {
    await xs.rm(path);
  } catch (e) {
    if (!(e instanceof XsError && e.errno === 'ENOENT')) throw e;
  }
}

export function messageOf(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}

/**
 * Resolves true once check() holds, re-checking whenever the watch on path fires; false after
 * timeoutMs. Watches are hints: check() reads the state itself.
 */
export function waitUntil(xs: XenStore, path: string, check: () => Promise<boolean>, timeoutMs: number): Promise<boolean> {
  return new Promise((resolve, reject) => {
    let done = false;
    let checking = false;
    let again = false;
    const finish = (value: boolean) => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      sub.unsubscribe();
      resolve(value);
    };
    const run = () => {
      if (done) return;
      if (checking) {
        again = true;
        return;
      }
      checking = true;
      check().then(
        (ok) => {
          checking = false;
          if (ok) finish(true);
          else if (again) {
            again = false;
            run();
          }
        },
        (err) => {
          done = true;
          clearTimeout(timer);
          sub.unsubscribe();
          reject(err);
        },
      );
    };
    const timer = setTimeout(() => finish(false), timeoutMs);
    const sub = xs.watch(path).subscribe(() => run());
    run();
  });
}
