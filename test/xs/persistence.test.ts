// The tree kept in a LevelDB folder: a restarted server has exactly the committed tree.
import { ClassicLevel } from 'classic-level';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { XenStore } from '../../src/io/xs/client';
import type { XsLogger } from '../../src/io/xs/logger';
import { XenstoredServer } from '../../src/io/xs/server/server';
import { tempDir } from './helpers';

let dir: string;

beforeEach(() => {
  dir = tempDir();
});

afterEach(() => {
  fs.rmSync(dir, { recursive: true, force: true });
});

/** Every node below `root`: path -> value (base64), permissions and child order. */
async function dump(xs: XenStore, root: string, out: Record<string, string> = {}): Promise<Record<string, string>> {
  const perms = (await xs.getPerms(root)).map((p) => `${p.access}${p.domid}`).join(',');
  const children = await xs.directory(root);
  out[root] = `${(await xs.readBytes(root)).toString('base64')} ${perms} [${children.join(',')}]`;
  for (const c of children) await dump(xs, root === '/' ? `/${c}` : `${root}/${c}`, out);
  return out;
}

async function withServer<T>(opts: { persistDir: string; logger?: XsLogger }, fn: (xs: XenStore, s: XenstoredServer) => Promise<T>): Promise<T> {
  const server = await XenstoredServer.open(opts);
  const xs = await XenStore.connect({ duplex: () => server.connect(0), reconnect: false });
  try {
    return await fn(xs, server);
  } finally {
    await xs.close();
    await server.close();
  }
}

describe('embedded xenstored persistence', () => {
  it('restores values, permissions and child order', async () => {
    const persistDir = path.join(dir, 'db');
    const before = await withServer({ persistDir }, async (xs) => {
      await xs.write('/vm/z', 'last-created-first');
      await xs.write('/vm/a', Buffer.from([0, 1, 2, 255]));
      await xs.write('/vm/m/deep/node', 'd');
      await xs.setPerms('/vm/a', [
        { domid: 3, access: 'n' },
        { domid: 4, access: 'b' },
      ]);
      await xs.rm('/vm/m/deep');
      await xs.transaction(async (tx) => {
        await tx.write('/vm/tx', 'committed');
      });
      await xs
        .transaction(async (tx) => {
          await tx.write('/vm/aborted', 'x');
          throw new Error('abort');
        })
        .catch(() => undefined);
      return dump(xs, '/');
    });
    expect(before['/vm']).toMatch(/\[z,a,m,tx\]$/);
    const after = await withServer({ persistDir }, (xs) => dump(xs, '/'));
    expect(after).toEqual(before);
  });

  it('keeps counting generations after a restart, so DIRECTORY_PART readers see changes', async () => {
    const persistDir = path.join(dir, 'db');
    await withServer({ persistDir }, async (xs) => {
      await xs.write('/g/a', '1');
    });
    await withServer({ persistDir }, async (xs, s) => {
      const gen1 = s.store.get('/g')!.generation;
      await xs.write('/g/b', '1');
      expect(s.store.get('/g')!.generation).toBeGreaterThan(gen1);
    });
  });

  it('loads a damaged folder: bad records and orphans are logged and dropped, the rest kept', async () => {
    const persistDir = path.join(dir, 'db');
    await withServer({ persistDir }, async (xs) => {
      await xs.write('/ok/value', 'fine');
    });
    const db = new ClassicLevel<string, string>(persistDir, { keyEncoding: 'utf8', valueEncoding: 'utf8' });
    await db.put('node:/ok/garbage', '{not json');
    await db.put('node:/orphan/child', JSON.stringify({ v: '', p: ['n0'], c: [], g: 5 }));
    await db.close();
    const lines: string[] = [];
    const logger: XsLogger = { debug: () => {}, info: () => {}, warn: (o, m) => lines.push(m ?? String(o)), error: (o, m) => lines.push(m ?? String(o)) };
    await withServer({ persistDir, logger }, async (xs, s) => {
      expect(await xs.read('/ok/value')).toBe('fine');
      expect(await xs.directory('/ok')).toEqual(['value']);
      expect(await xs.tryRead('/orphan/child')).toBeUndefined();
      expect(s.check()).toEqual([]);
    });
    expect(lines.filter((l) => /unreadable node record/.test(l))).toHaveLength(1);
    expect(lines.filter((l) => /without a parent/.test(l))).toHaveLength(1);
  });
});
