// Connections acting as guest domains: permissions, relative paths, special watches, domain
// management, with our client, xenstore-utils and pyxs on per-domain sockets.
import { spawn } from 'node:child_process';
import * as path from 'node:path';
import { firstValueFrom, take, toArray } from 'rxjs';
import { XenStore, type XsWatchEvent } from '../../src/io/xs/client';
import { XsConnection } from '../../src/io/xs/connection';
import { isXsError } from '../../src/io/xs/errors';
import { silentLogger } from '../../src/io/xs/logger';
import { replyString } from '../../src/io/xs/payload';
import { XsType } from '../../src/io/xs/wire';
import { python, run, sleep, startServer, until, type TestServer } from './helpers';

let t: TestServer;
let dom0: XenStore;
let guest: XenStore;
let guestSocket: string;

async function errnoOf(p: Promise<unknown>): Promise<string> {
  try {
    await p;
  } catch (e) {
    if (isXsError(e)) return e.errno;
    throw e;
  }
  return 'OK';
}

/** A raw connection as `domid`, for message types our client does not expose. */
function raw(domid: number): XsConnection {
  return new XsConnection(t.server.connect(domid), { onWatchEvent: () => {}, onClose: () => {} }, silentLogger);
}

beforeEach(async () => {
  t = await startServer();
  guestSocket = path.join(t.dir, 'dom5.sock');
  await t.server.listen(guestSocket, { domid: 5 });
  dom0 = await XenStore.connect({ path: t.socket });
  // What a toolstack sets up for guest 5: its home owned by it, dom0's tree private.
  await dom0.write('/local/domain/5/name', 'guest');
  await dom0.setPerms('/local/domain/5', [{ domid: 5, access: 'n' }]);
  await dom0.setPerms('/local/domain/5/name', [{ domid: 5, access: 'n' }]);
  await dom0.write('/local/domain/0/secret', 's3cret');
  t.server.introduceDomain(5);
  guest = await XenStore.connect({ duplex: () => t.server.connect(5), reconnect: false });
});

afterEach(async () => {
  await guest.close();
  await dom0.close();
  await t.close();
});

describe('guest domain connections', () => {
  it('confine a guest to what its permissions allow', async () => {
    expect(await guest.read('/local/domain/5/name')).toBe('guest');
    expect(await errnoOf(guest.read('/local/domain/0/secret'))).toBe('EACCES');
    expect(await errnoOf(guest.write('/local/domain/0/secret', 'mine'))).toBe('EACCES');
    expect(await errnoOf(guest.write('/elsewhere', 'x'))).toBe('EACCES');
    expect(await errnoOf(guest.rm('/local/domain/0'))).toBe('EACCES');
    expect(await errnoOf(guest.directory('/local/domain/0'))).toBe('EACCES');
    // A missing node below an unreadable one is EACCES, not ENOENT: nothing leaks.
    expect(await errnoOf(guest.read('/local/domain/0/no/such'))).toBe('EACCES');
    expect(await errnoOf(guest.read('/local/domain/5/no/such'))).toBe('ENOENT');
    expect(await dom0.read('/local/domain/0/secret')).toBe('s3cret');
  });

  it('take relative paths from the domain home and own what they create', async () => {
    await guest.write('device/vbd/51712/state', '1');
    expect(await dom0.read('/local/domain/5/device/vbd/51712/state')).toBe('1');
    expect(await guest.getPerms('device/vbd/51712')).toEqual([{ domid: 5, access: 'n' }]);
    // dom0 creating below the guest home keeps the inherited owner.
    await dom0.write('/local/domain/5/device/vbd/51712/backend', '/x');
    expect(await guest.read('device/vbd/51712/backend')).toBe('/x');
  });

  it('let a guest change the permissions of its nodes but not their owner', async () => {
    await guest.write('data', 'x');
    await guest.setPerms('data', [
      { domid: 5, access: 'n' },
      { domid: 0, access: 'r' },
      { domid: 7, access: 'b' },
    ]);
    expect(await errnoOf(guest.setPerms('data', [{ domid: 7, access: 'n' }]))).toBe('EPERM');
    await dom0.setPerms('/local/domain/5/data', [{ domid: 7, access: 'n' }]);
    expect(await errnoOf(guest.read('data'))).toBe('EACCES');
  });

  it('honour read-only and write-only grants', async () => {
    await dom0.write('/shared/ro', 'r');
    await dom0.write('/shared/wo', 'w');
    await dom0.setPerms('/shared/ro', [
      { domid: 0, access: 'n' },
      { domid: 5, access: 'r' },
    ]);
    await dom0.setPerms('/shared/wo', [
      { domid: 0, access: 'n' },
      { domid: 5, access: 'w' },
    ]);
    expect(await guest.read('/shared/ro')).toBe('r');
    expect(await errnoOf(guest.write('/shared/ro', 'x'))).toBe('EACCES');
    expect(await errnoOf(guest.read('/shared/wo'))).toBe('EACCES');
    await guest.write('/shared/wo', 'written');
    expect(await dom0.read('/shared/wo')).toBe('written');
  });

  it('apply to real clients on a per-domain socket', async () => {
    const env = { XENSTORED_PATH: guestSocket };
    const denied = await run('xenstore-write', ['/local/domain/0/secret', 'x'], { env });
    expect(denied.code).toBe(1);
    expect((await run('xenstore-write', ['/local/domain/5/from-tool', 'ok'], { env })).code).toBe(0);
    expect(await dom0.read('/local/domain/5/from-tool')).toBe('ok');
    const r = await python(
      `from pyxs import Client, PyXSError
with Client() as c:
    print(c.read(b"/local/domain/5/name").decode())
    for f in (lambda: c.read(b"/local/domain/0/secret"), lambda: c.introduce_domain(9, 1, 1)):
        try:
            f()
        except PyXSError as e:
            print("errno", e.args[0])
`,
      env,
    );
    expect(r.stderr).toBe('');
    expect(r.stdout).toBe('guest\nerrno 13\nerrno 13\n');
  });

  it('report relative watch paths to a relative watch, and hide events a guest cannot read', async () => {
    const rel = firstValueFrom(guest.watch('device').pipe(take(2), toArray()));
    const all: XsWatchEvent[] = [];
    const sub = guest.watch('/').subscribe((e) => all.push(e));
    await until(() => t.server.stats().watches === 2, 5000, 'watches');
    await dom0.write('/local/domain/0/secret', 'changed');
    await guest.write('device/x', '1');
    expect((await rel).map((e) => e.path)).toEqual(['device', 'device/x']);
    await until(() => all.some((e) => e.path === '/local/domain/5/device/x'), 5000, 'own event');
    expect(all.map((e) => e.path)).not.toContain('/local/domain/0/secret');
    sub.unsubscribe();
  });

  it('deliver @introduceDomain/@releaseDomain to dom0, and to a guest only when permitted', async () => {
    const child = spawn('xenstore-watch', ['-n', '3', '@introduceDomain'], { env: { ...process.env, ...t.env } });
    let out = '';
    child.stdout.setEncoding('utf8').on('data', (d: string) => (out += d));
    const exited = new Promise((r) => child.on('close', r));
    await until(() => out === '@introduceDomain\n', 5000, 'registration event');
    t.server.introduceDomain(8);
    t.server.introduceDomain(8); // already introduced: no event
    const r = raw(0);
    await r.request(XsType.INTRODUCE, 0, ['9', '0', '1']);
    expect(await exited).toBe(0);
    expect(out).toBe('@introduceDomain\n@introduceDomain\n@introduceDomain\n');

    const guestEvents: XsWatchEvent[] = [];
    guest.watch('@releaseDomain').subscribe((e) => guestEvents.push(e));
    await until(() => guestEvents.length === 1, 5000, 'guest registration event');
    t.server.releaseDomain(8);
    await sleep(30);
    expect(guestEvents).toHaveLength(1);
    await dom0.setPerms('@releaseDomain', [
      { domid: 0, access: 'n' },
      { domid: 5, access: 'r' },
    ]);
    expect(await dom0.getPerms('@releaseDomain')).toEqual([
      { domid: 0, access: 'n' },
      { domid: 5, access: 'r' },
    ]);
    await r.request(XsType.RELEASE, 0, ['9']);
    await until(() => guestEvents.length === 2, 5000, 'permitted @releaseDomain');
    expect(guestEvents[1].path).toBe('@releaseDomain');
    r.close();
  });

  it('answer domain queries and refuse privileged requests from guests', async () => {
    const r0 = raw(0);
    const r5 = raw(5);
    const ask = async (c: XsConnection, type: number, parts: string[]) => {
      try {
        return replyString(await c.request(type, 0, parts));
      } catch (e) {
        if (isXsError(e)) return e.errno;
        throw e;
      }
    };
    expect(await ask(r0, XsType.GET_DOMAIN_PATH, ['5'])).toBe('/local/domain/5');
    expect(await ask(r5, XsType.GET_DOMAIN_PATH, ['0'])).toBe('/local/domain/0');
    expect(await ask(r0, XsType.IS_DOMAIN_INTRODUCED, ['5'])).toBe('T');
    expect(await ask(r0, XsType.IS_DOMAIN_INTRODUCED, ['6'])).toBe('F');
    expect(await ask(r0, XsType.RELEASE, ['6'])).toBe('ENOENT');
    expect(await ask(r0, XsType.INTRODUCE, ['0', '0', '1'])).toBe('EINVAL');
    for (const [type, parts] of [
      [XsType.INTRODUCE, ['6', '0', '1']],
      [XsType.RELEASE, ['5']],
      [XsType.SET_TARGET, ['5', '6']],
      [XsType.IS_DOMAIN_INTRODUCED, ['5']],
      [XsType.CONTROL, ['check']],
      [XsType.SET_QUOTA, ['nodes', '1']],
    ] as [number, string[]][]) {
      expect(await ask(r5, type, parts)).toBe('EACCES');
    }
    expect(await ask(r0, XsType.CONTROL, ['check'])).toBe('OK');
    expect(await ask(r0, XsType.GET_QUOTA, ['nodes'])).toBe('1000');
    r0.close();
    r5.close();
  });

  it('let a domain targeting another act with its rights (SET_TARGET)', async () => {
    t.server.introduceDomain(6);
    const stub = await XenStore.connect({ duplex: () => t.server.connect(6), reconnect: false });
    expect(await errnoOf(stub.read('/local/domain/5/name'))).toBe('EACCES');
    const r0 = raw(0);
    await r0.request(XsType.SET_TARGET, 0, ['6', '5']);
    expect(await stub.read('/local/domain/5/name')).toBe('guest');
    await stub.write('/local/domain/5/by-stubdom', '1');
    expect(await dom0.read('/local/domain/5/by-stubdom')).toBe('1');
    // Like any unprivileged creator, the stub domain owns what it creates.
    expect((await dom0.getPerms('/local/domain/5/by-stubdom'))[0]).toEqual({ domid: 6, access: 'n' });
    r0.close();
    await stub.close();
  });

  it('drop the connections and watches of a released domain', async () => {
    const states: string[] = [];
    guest.connection$.subscribe((s) => states.push(s));
    let watchError: unknown;
    guest.watch('/local/domain/5').subscribe({ error: (e: unknown) => (watchError = e) });
    await until(() => t.server.stats().watches === 1, 5000, 'guest watch');
    t.server.releaseDomain(5);
    await until(() => states.includes('disconnected'), 5000, 'guest disconnected');
    expect(t.server.stats().watches).toBe(0);
    // The guest client does not reconnect, so its watch ends with ENOTCONN.
    expect(isXsError(watchError, 'ENOTCONN')).toBe(true);
    // The guest's data stays: the toolstack removes it.
    expect(await dom0.read('/local/domain/5/name')).toBe('guest');
  });
});
