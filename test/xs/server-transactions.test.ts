// Transaction semantics of the embedded xenstored, driven request by request.
import * as net from 'node:net';
import { XenStore, type XsWatchEvent } from '../../src/io/xs/client';
import { XsConnection } from '../../src/io/xs/connection';
import { isXsError } from '../../src/io/xs/errors';
import { silentLogger } from '../../src/io/xs/logger';
import { replyString } from '../../src/io/xs/payload';
import { XsType } from '../../src/io/xs/wire';
import { sleep, startServer, until, type TestServer } from './helpers';

let t: TestServer;
let xs: XenStore;
let c: XsConnection;

async function ask(type: number, txId: number, parts: (string | Uint8Array)[], lastRaw = false): Promise<string> {
  try {
    return replyString(await c.request(type, txId, parts, lastRaw));
  } catch (e) {
    if (isXsError(e)) return e.errno;
    throw e;
  }
}
const start = async () => Number(await ask(XsType.TRANSACTION_START, 0, ['']));
const read = (tx: number, p: string) => ask(XsType.READ, tx, [p]);
const write = (tx: number, p: string, v: string) => ask(XsType.WRITE, tx, [p, v], true);
const end = (tx: number, commit: boolean) => ask(XsType.TRANSACTION_END, tx, [commit ? 'T' : 'F']);

beforeEach(async () => {
  t = await startServer();
  xs = await XenStore.connect({ path: t.socket });
  c = new XsConnection(t.server.connect(0), { onWatchEvent: () => {}, onClose: () => {} }, silentLogger);
});

afterEach(async () => {
  c.close();
  await xs.close();
  await t.close();
});

describe('embedded xenstored transactions', () => {
  it('read a snapshot of what they touched and see their own writes', async () => {
    await xs.write('/s/a', 'a0');
    const tx = await start();
    expect(await read(tx, '/s/a')).toBe('a0');
    await xs.write('/s/a', 'a1');
    expect(await read(tx, '/s/a')).toBe('a0');
    expect(await write(tx, '/s/b', 'mine')).toBe('OK');
    expect(await read(tx, '/s/b')).toBe('mine');
    expect(await read(0, '/s/b')).toBe('ENOENT');
    expect(await end(tx, true)).toBe('EAGAIN');
    expect(await xs.read('/s/a')).toBe('a1');
    expect(await xs.tryRead('/s/b')).toBeUndefined();
  });

  it('conflict when another client adds a child to a directory they changed', async () => {
    await xs.mkdir('/d');
    const tx = await start();
    expect(await write(tx, '/d/x', '1')).toBe('OK');
    await xs.write('/d/y', '2');
    expect(await end(tx, true)).toBe('EAGAIN');
    expect(await xs.directory('/d')).toEqual(['y']);
  });

  it('conflict when something they read was removed, and not when untouched nodes change', async () => {
    await xs.write('/r/a', '1');
    await xs.write('/r/b', '1');
    const t1 = await start();
    await read(t1, '/r/a');
    await xs.rm('/r/a');
    expect(await end(t1, true)).toBe('EAGAIN');
    const t2 = await start();
    await read(t2, '/r/b');
    await write(t2, '/r/b', '2');
    await xs.write('/elsewhere', 'x');
    expect(await end(t2, true)).toBe('OK');
    expect(await xs.read('/r/b')).toBe('2');
  });

  it('remove subtrees and apply everything at commit', async () => {
    await xs.write('/rm/a/b/c', '1');
    await xs.write('/rm/keep', '1');
    const tx = await start();
    expect(await ask(XsType.RM, tx, ['/rm/a'])).toBe('OK');
    expect(await read(tx, '/rm/a/b/c')).toBe('ENOENT');
    expect(await xs.read('/rm/a/b/c')).toBe('1');
    expect(await end(tx, true)).toBe('OK');
    expect(await xs.directory('/rm')).toEqual(['keep']);
    expect(t.server.check()).toEqual([]);
  });

  it('discard everything on abort and fire no events', async () => {
    const events: XsWatchEvent[] = [];
    xs.watch('/ab').subscribe((e) => events.push(e));
    await until(() => events.length === 1, 5000, 'watch');
    const tx = await start();
    await write(tx, '/ab/x', '1');
    expect(await end(tx, false)).toBe('OK');
    await sleep(30);
    expect(events).toHaveLength(1);
    expect(await xs.tryRead('/ab/x')).toBeUndefined();
  });

  it('check transaction ids and arguments', async () => {
    expect(await read(12345, '/')).toBe('ENOENT');
    expect(await end(0, true)).toBe('ENOENT');
    const tx = await start();
    expect(await ask(XsType.TRANSACTION_START, tx, [''])).toBe('EBUSY');
    expect(await ask(XsType.TRANSACTION_END, tx, ['X'])).toBe('EINVAL');
    const other = await start();
    expect(other).not.toBe(tx);
    expect(await end(tx, true)).toBe('OK');
    // Ended: the id is gone.
    expect(await end(tx, true)).toBe('ENOENT');
    expect(await end(other, false)).toBe('OK');
    // Ids belong to their connection.
    const mine = await start();
    const otherConn = new XsConnection(t.server.connect(0), { onWatchEvent: () => {}, onClose: () => {} }, silentLogger);
    await expect(otherConn.request(XsType.READ, mine, ['/'])).rejects.toMatchObject({ errno: 'ENOENT' });
    otherConn.close();
  });

  it('are dropped, uncommitted, when their client vanishes', async () => {
    const sock = net.connect(t.socket);
    await new Promise((r) => sock.once('connect', r));
    const v = new XsConnection(sock, { onWatchEvent: () => {}, onClose: () => {} }, silentLogger);
    const tx = Number(replyString(await v.request(XsType.TRANSACTION_START, 0, [''])));
    await v.request(XsType.WRITE, tx, ['/vanish/x', '1'], true);
    expect(t.server.stats().transactions).toBe(1);
    sock.destroy();
    await until(() => t.server.stats().transactions === 0, 5000, 'transaction dropped');
    expect(await xs.tryRead('/vanish/x')).toBeUndefined();
    expect(t.server.check()).toEqual([]);
  });

  it('list and number directories consistently inside a transaction (DIRECTORY_PART)', async () => {
    await xs.write('/dp/a', '');
    const tx = await start();
    await write(tx, '/dp/b', '');
    expect(await ask(XsType.DIRECTORY, tx, ['/dp'])).toBe('a\0b');
    const part = await c.request(XsType.DIRECTORY_PART, tx, ['/dp', '0']);
    const [gen, ...names] = part.toString('latin1').split('\0');
    expect(Number(gen)).toBeGreaterThan(0);
    expect(names).toEqual(['a', 'b', '', '']);
    const past = await c.request(XsType.DIRECTORY_PART, tx, ['/dp', '100']);
    expect(past.toString('latin1')).toBe(`${gen}\0\0`);
    await end(tx, false);
  });
});
