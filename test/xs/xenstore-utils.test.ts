// The embedded xenstored against Xen's own command-line clients (xenstore-utils, libxenstore).
import { spawn, type ChildProcess } from 'node:child_process';
import { XenStore } from '../../src/io/xs/client';
import { run, startServer, until, type TestServer } from './helpers';

let t: TestServer;
let xs: XenStore;
const children: ChildProcess[] = [];
const tool = (name: string, ...args: string[]) => run(`xenstore-${name}`, args, { env: t.env });

beforeEach(async () => {
  t = await startServer();
  xs = await XenStore.connect({ path: t.socket });
});

afterEach(async () => {
  for (const c of children.splice(0)) if (c.exitCode === null) c.kill('SIGKILL');
  await xs.close();
  await t.close();
});

describe('embedded xenstored with xenstore-utils', () => {
  it('writes, reads, lists and removes', async () => {
    expect((await tool('write', '/vm/1/name', 'guest-one', '/vm/1/uuid', 'abc')).code).toBe(0);
    expect((await tool('read', '/vm/1/name')).stdout).toBe('guest-one\n');
    expect((await tool('list', '/vm/1')).stdout.split('\n').filter(Boolean).sort()).toEqual(['name', 'uuid']);
    expect((await tool('exists', '/vm/1/uuid')).code).toBe(0);
    expect((await tool('exists', '/vm/1/nope')).code).toBe(1);
    expect((await tool('ls', '/vm')).stdout).toBe('1 = ""\n name = "guest-one"\n uuid = "abc"\n');
    expect((await tool('rm', '/vm/1')).code).toBe(0);
    expect((await tool('list', '/vm')).stdout).toBe('');
    expect(await xs.tryRead('/vm/1/name')).toBeUndefined();
  });

  it('shares data with our client both ways, byte for byte', async () => {
    await xs.write('/shared/bin', Buffer.from([0x61, 0x01, 0x00, 0x7f, 0x62]));
    // xenstore-read escapes what is not printable (octal below 0x20, hex above 0x7e).
    expect((await tool('read', '/shared/bin')).stdout).toBe('a\\001\\000\\x7fb\n');
    expect((await tool('write', '/shared/from-tool', 'x\\x02y')).code).toBe(0);
    expect([...(await xs.readBytes('/shared/from-tool'))]).toEqual([0x78, 0x02, 0x79]);
  });

  it('reports errors the way xenstored does', async () => {
    const missing = await tool('read', '/no/such/node');
    expect(missing.code).toBe(1);
    expect(missing.stderr).toMatch(/couldn't read path \/no\/such\/node/);
    // Removing a missing node is fine while its parent exists, an error otherwise.
    await xs.write('/parent', '');
    expect((await tool('rm', '/parent/missing')).code).toBe(0);
    const orphan = await tool('rm', '/nothing/here');
    expect(orphan.code).toBe(1);
    expect(orphan.stderr).toMatch(/could not remove path/);
    const bad = await tool('write', '/bad path', 'x');
    expect(bad.code).toBe(1);
  });

  it('sets and shows permissions', async () => {
    await xs.write('/perm/node', 'v');
    expect((await tool('chmod', '/perm/node', 'n3', 'r5', 'b7')).code).toBe(0);
    expect(await xs.getPerms('/perm/node')).toEqual([
      { access: 'n', domid: 3 },
      { access: 'r', domid: 5 },
      { access: 'b', domid: 7 },
    ]);
    expect((await tool('ls', '-p', '/perm')).stdout).toMatch(/node = "v" .*\(n3,r5,b7\)/);
    expect((await tool('chmod', '/perm/node', 'x1')).code).toBe(1);
  });

  it('lists a directory larger than one reply (DIRECTORY_PART)', async () => {
    const names = Array.from({ length: 300 }, (_, i) => `a-rather-long-child-name-number-${i}`);
    await Promise.all(names.map((n) => xs.write(`/big/${n}`, '')));
    const listed = await tool('list', '/big');
    expect(listed.code).toBe(0);
    expect(listed.stdout.split('\n').filter(Boolean)).toEqual(names);
    expect(await xs.directory('/big')).toEqual(names);
  });

  it('delivers watch events to xenstore-watch', async () => {
    const child = spawn('xenstore-watch', ['-n', '4', '/w'], { env: { ...process.env, ...t.env } });
    children.push(child);
    let out = '';
    child.stdout.setEncoding('utf8').on('data', (d: string) => (out += d));
    const exited = new Promise<number | null>((r) => child.on('close', r));
    // The first event is the watch firing on registration.
    await until(() => out.includes('/w\n'), 5000, 'xenstore-watch to register');
    await xs.write('/w/a', '1');
    await xs.transaction(async (tx) => {
      await tx.write('/w/b', '2');
    });
    await xs.rm('/w/a');
    expect(await exited).toBe(0);
    expect(out.split('\n').filter(Boolean)).toEqual(['/w', '/w/a', '/w/b', '/w/a']);
  });

  it('fires events of a transaction only when it commits', async () => {
    const child = spawn('xenstore-watch', ['-n', '2', '/txw'], { env: { ...process.env, ...t.env } });
    children.push(child);
    let out = '';
    child.stdout.setEncoding('utf8').on('data', (d: string) => (out += d));
    const exited = new Promise<number | null>((r) => child.on('close', r));
    await until(() => out.includes('/txw\n'), 5000, 'xenstore-watch to register');
    await xs.transaction(async (tx) => {
      await tx.write('/txw/inside', '1');
      // Had the write fired, the event would have reached xenstore-watch by now.
      await xs.directory('/');
      await new Promise((r) => setTimeout(r, 50));
      expect(out).toBe('/txw\n');
    });
    expect(await exited).toBe(0);
    expect(out).toBe('/txw\n/txw/inside\n');
  });
});
