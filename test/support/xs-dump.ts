import type { XenStore } from '../../src/io/xs/client';

/** Every node under path as "path = value" lines, sorted; [] when path does not exist. */
export async function dumpTree(xs: XenStore, path: string): Promise<string[]> {
  const out: string[] = [];
  const walk = async (p: string): Promise<void> => {
    const value = await xs.tryRead(p);
    if (value === undefined) return;
    out.push(`${p} = ${value}`);
    const children = await xs.directory(p).catch(() => [] as string[]);
    for (const c of children) await walk(`${p}/${c}`);
  };
  await walk(path);
  return out.sort();
}
