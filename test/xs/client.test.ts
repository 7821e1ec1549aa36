// Our client against the embedded xenstored (over a unix socket and in-process).
import * as fs from 'node:fs';
import * as net from 'node:net';
import * as path from 'node:path';
import { firstValueFrom, take, toArray } from 'rxjs';
import { XenStore, XsError, type XsWatchEvent } from '../../src/io/xs/client';
import { isXsError } from '../../src/io/xs/errors';
import { defaultSocketPath } from '../../src/io/xs/transport';
import { FrameDecoder, XsType, encodeFrame, type XsFrame } from '../../src/io/xs/wire';
import { sleep, startServer, tempDir, until, type TestServer } from './helpers';

let t: TestServer;
let xs: XenStore;

beforeEach(async () => {
  t = await startServer();
  xs = await XenStore.connect({ path: t.socket });
});

afterEach(async () => {
  await xs.close();
  await t.close();
});

async function errnoOf(p: Promise<unknown>): Promise<string> {
  try {
    await p;
  } catch (e) {
    if (e instanceof XsError) return e.errno;
    throw e;
  }
  throw new Error('expected an XsError');
}

describe('XenStore client operations', () => {
  it('reads, writes, lists, removes and handles permissions', async () => {
    await xs.write('/c/a', 'alpha');
    await xs.write('/c/b', new Uint8Array([1, 2, 3]));
    await xs.mkdir('/c/d/e');
    expect(await xs.read('/c/a')).toBe('alpha');
    expect([...(await xs.readBytes('/c/b'))]).toEqual([1, 2, 3]);
    expect(await xs.read('/c/d')).toBe('');
    expect(await xs.directory('/c')).toEqual(['a', 'b', 'd']);
    expect(await xs.tryRead('/c/zz')).toBeUndefined();
    await xs.setPerms('/c/a', [
      { domid: 3, access: 'n' },
      { domid: 4, access: 'r' },
    ]);
    expect(await xs.getPerms('/c/a')).toEqual([
      { domid: 3, access: 'n' },
      { domid: 4, access: 'r' },
    ]);
    await xs.rm('/c');
    expect(await errnoOf(xs.directory('/c'))).toBe('ENOENT');
    expect(await xs.getDomainPath(12)).toBe('/local/domain/12');
  });

  it('turns xenstored errors into XsError with the errno name', async () => {
    expect(await errnoOf(xs.read('/missing'))).toBe('ENOENT');
    expect(await errnoOf(xs.write('/bad//path', 'x'))).toBe('EINVAL');
    expect(await errnoOf(xs.write('/trailing/', 'x'))).toBe('EINVAL');
    expect(await errnoOf(xs.rm('/'))).toBe('EINVAL');
    expect(await errnoOf(xs.rm('/no/parent'))).toBe('ENOENT');
    expect(await errnoOf(xs.setPerms('/missing', [{ domid: 0, access: 'n' }]))).toBe('ENOENT');
    expect(await errnoOf(xs.setPerms('/', []))).toBe('EINVAL');
    // Too large to send: refused locally, the connection survives.
    expect(await errnoOf(xs.write('/big', Buffer.alloc(5000)))).toBe('E2BIG');
    expect(await xs.tryRead('/big')).toBeUndefined();
  });

  it('pipelines many requests on one connection', async () => {
    const n = 2000;
    await Promise.all(Array.from({ length: n }, (_, i) => xs.write(`/p/${i % 50}/${i}`, String(i * 7))));
    const values = await Promise.all(Array.from({ length: n }, (_, i) => xs.read(`/p/${i % 50}/${i}`)));
    expect(values).toEqual(Array.from({ length: n }, (_, i) => String(i * 7)));
    expect((await xs.directory('/p')).length).toBe(50);
  });

  it('lists directories larger than one reply through DIRECTORY_PART', async () => {
    const names = Array.from({ length: 600 }, (_, i) => `child-${String(i).padStart(4, '0')}-with-a-long-name`);
    await Promise.all(names.map((n) => xs.write(`/many/${n}`, '')));
    expect(await xs.directory('/many')).toEqual(names);
    // Inside a transaction too.
    expect(await xs.transaction((tx) => tx.directory('/many'))).toEqual(names);
  });

  it('finds the socket as libxenstore does', () => {
    expect(defaultSocketPath({ XENSTORED_PATH: '/x/sock' })).toBe('/x/sock');
    expect(defaultSocketPath({ XENSTORED_RUNDIR: '/run/xs' })).toBe('/run/xs/socket');
    expect(defaultSocketPath({})).toBe('/var/run/xenstored/socket');
  });

  it('connects through XENSTORED_PATH, and fails clearly when nothing listens', async () => {
    const saved = process.env.XENSTORED_PATH;
    process.env.XENSTORED_PATH = t.socket;
    try {
      const viaEnv = await XenStore.connect({ transport: 'socket' });
      await viaEnv.write('/env', 'yes');
      expect(await xs.read('/env')).toBe('yes');
      await viaEnv.close();
    } finally {
      if (saved === undefined) delete process.env.XENSTORED_PATH;
      else process.env.XENSTORED_PATH = saved;
    }
    const e = await XenStore.connect({ path: path.join(t.dir, 'nobody'), transport: 'socket' }).catch((err: unknown) => err);
    expect(isXsError(e, 'ENOTCONN')).toBe(true);
    expect((e as Error).message).toMatch(/cannot connect to xenstored \(socket .*nobody\)/);
  });

  it('works over an in-process connection', async () => {
    const local = await XenStore.connect({ duplex: () => t.server.connect(0) });
    await local.write('/inproc', 'v');
    expect(await xs.read('/inproc')).toBe('v');
    await local.close();
  });
});

describe('XenStore transactions', () => {
  it('commits all or nothing', async () => {
    const r = await xs.transaction(async (tx) => {
      await tx.write('/t/a', '1');
      await tx.write('/t/b', '2');
      expect(await tx.read('/t/a')).toBe('1');
      expect(await xs.tryRead('/t/a')).toBeUndefined();
      return 'done';
    });
    expect(r).toBe('done');
    expect(await xs.read('/t/b')).toBe('2');
    await expect(
      xs.transaction(async (tx) => {
        await tx.write('/t/c', '3');
        throw new Error('changed my mind');
      }),
    ).rejects.toThrow('changed my mind');
    expect(await xs.tryRead('/t/c')).toBeUndefined();
    expect(t.server.stats().transactions).toBe(0);
  });

  it('retries the whole function after a conflict (EAGAIN)', async () => {
    const other = await XenStore.connect({ path: t.socket });
    await xs.write('/t/counter', 'x');
    let calls = 0;
    await xs.transaction(async (tx) => {
      calls++;
      const v = await tx.read('/t/counter');
      if (calls === 1) await other.write('/t/counter', 'y');
      await tx.write('/t/counter', v + '!');
    });
    expect(calls).toBe(2);
    expect(await xs.read('/t/counter')).toBe('y!');
    await other.close();
  });

  it('gives up with EAGAIN after maxAttempts', async () => {
    const other = await XenStore.connect({ path: t.socket });
    await xs.write('/t/hot', '0');
    let calls = 0;
    const e = await xs
      .transaction(
        async (tx) => {
          calls++;
          await tx.read('/t/hot');
          await other.write('/t/hot', String(calls));
          await tx.write('/t/hot', 'never');
        },
        { maxAttempts: 3 },
      )
      .catch((err: unknown) => err);
    expect(isXsError(e, 'EAGAIN')).toBe(true);
    expect(calls).toBe(3);
    expect(await xs.read('/t/hot')).toBe('3');
    await other.close();
  });

  it('keeps concurrent read-modify-write increments exact', async () => {
    const clients = await Promise.all([0, 1, 2].map(() => XenStore.connect({ path: t.socket })));
    await xs.write('/t/n', '0');
    let attempts = 0;
    await Promise.all(
      clients.map(async (c) => {
        for (let i = 0; i < 30; i++) {
          await c.transaction(async (tx) => {
            attempts++;
            const v = Number(await tx.read('/t/n'));
            await tx.write('/t/n', String(v + 1));
          });
        }
      }),
    );
    expect(await xs.read('/t/n')).toBe('90');
    expect(attempts).toBeGreaterThanOrEqual(90);
    await Promise.all(clients.map((c) => c.close()));
  });

  it('refuses operations on an ended transaction handle', async () => {
    let leaked: { read(p: string): Promise<string> } | undefined;
    await xs.transaction(async (tx) => {
      leaked = tx;
    });
    expect(await errnoOf(leaked!.read('/'))).toBe('EINVAL');
  });
});

describe('XenStore watches', () => {
  it('shares one XS_WATCH between subscribers and unwatches after the last', async () => {
    const a: XsWatchEvent[] = [];
    const b: XsWatchEvent[] = [];
    const subA = xs.watch('/w').subscribe((e) => a.push(e));
    await until(() => a.length === 1, 5000, 'first event');
    expect(a[0]).toEqual({ path: '/w', watched: '/w' });
    const subB = xs.watch('/w').subscribe((e) => b.push(e));
    // The joiner gets its own first event at once.
    expect(b).toEqual([{ path: '/w', watched: '/w' }]);
    expect(t.server.stats().watches).toBe(1);
    await xs.write('/w/x/y', '1');
    await until(() => a.length === 2 && b.length === 2, 5000, 'events');
    expect(a[1]).toEqual({ path: '/w/x/y', watched: '/w' });
    subA.unsubscribe();
    await sleep(20);
    expect(t.server.stats().watches).toBe(1);
    subB.unsubscribe();
    await until(() => t.server.stats().watches === 0, 5000, 'XS_UNWATCH');
    await xs.write('/w/z', '1');
    await sleep(20);
    expect(a).toHaveLength(2);
    expect(b).toHaveLength(2);
  });

  it('fires for the node, its descendants and removals, not for siblings', async () => {
    await xs.write('/wd/a/b', '');
    const events = firstValueFrom(xs.watch('/wd/a').pipe(take(4), toArray()));
    await until(() => t.server.stats().watches === 1, 5000, 'watch');
    await xs.write('/wd/other', '1');
    await xs.write('/wd/a', 'v');
    await xs.write('/wd/a/b/c', 'deep');
    await xs.rm('/wd');
    expect((await events).map((e) => e.path)).toEqual(['/wd/a', '/wd/a', '/wd/a/b/c', '/wd/a']);
  });

  it('errors the observable when xenstored refuses the watch', async () => {
    const e = await firstValueFrom(xs.watch('/bad//path')).catch((err: unknown) => err);
    expect(isXsError(e, 'EINVAL')).toBe(true);
    expect(t.server.stats().watches).toBe(0);
  });
});

describe('reply matching', () => {
  it('matches replies sent out of order by req_id', async () => {
    const dir = tempDir();
    const sock = path.join(dir, 'reverse');
    // A peer that answers each batch of three READs in reverse order, echoing the path.
    const server = net.createServer((s) => {
      const d = new FrameDecoder();
      const batch: XsFrame[] = [];
      s.on('data', (chunk: Buffer) =>
        d.push(chunk, (f) => {
          batch.push({ ...f, payload: Buffer.from(f.payload) });
          if (batch.length < 3) return;
          for (const r of batch.splice(0).reverse()) {
            s.write(encodeFrame(XsType.READ, r.reqId, 0, r.payload.subarray(0, r.payload.length - 1)));
          }
        }),
      );
    });
    await new Promise<void>((r) => server.listen(sock, r));
    const c = await XenStore.connect({ path: sock, reconnect: false });
    expect(await Promise.all([c.read('/one'), c.read('/two'), c.read('/three')])).toEqual(['/one', '/two', '/three']);
    await c.close();
    await new Promise<void>((r) => server.close(() => r()));
    fs.rmSync(dir, { recursive: true, force: true });
  });
});
