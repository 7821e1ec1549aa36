// The xenbus character-device transport (/dev/xen/xenbus carries the socket's framing). Without
// Xen, a raw-mode pseudo-terminal stands in for the device: a real character device, opened and
// read like the xenbus one, bridged to the embedded xenstored's socket.
import { spawn, type ChildProcess } from 'node:child_process';
import * as fs from 'node:fs';
import { firstValueFrom, take, toArray } from 'rxjs';
import { XenStore } from '../../src/io/xs/client';
import { run, startServer, until, type TestServer } from './helpers';

const BRIDGE = `
import os, pty, tty, socket, sys, select
master, slave = pty.openpty()
tty.setraw(slave)
s = socket.socket(socket.AF_UNIX)
s.connect(sys.argv[1])
print(os.ttyname(slave), flush=True)
while True:
    r, _, _ = select.select([master, s], [], [])
    if master in r:
        d = os.read(master, 65536)
        if not d: break
        s.sendall(d)
    if s in r:
        d = s.recv(65536)
        if not d: break
        os.write(master, d)
`;

let t: TestServer;
let bridge: ChildProcess;
let device: string;

beforeEach(async () => {
  t = await startServer();
  bridge = spawn('/usr/bin/python3', ['-c', BRIDGE, t.socket], { stdio: ['ignore', 'pipe', 'inherit'] });
  let out = '';
  bridge.stdout!.setEncoding('utf8').on('data', (d: string) => (out += d));
  await until(() => out.endsWith('\n'), 10000, 'the pty bridge');
  device = out.trim();
});

afterEach(async () => {
  const gone = new Promise((r) => bridge.on('close', r));
  bridge.kill('SIGTERM');
  await gone;
  await t.close();
});

describe('xenbus device transport', () => {
  it('speaks xenstore over a character device', async () => {
    expect(fs.statSync(device).isCharacterDevice()).toBe(true);
    const xs = await XenStore.connect({ path: device, transport: 'xenbus', reconnect: false });
    expect(xs.endpoint).toBe(`device ${device}`);
    await xs.write('/dev/test', Buffer.from([0, 10, 13, 3, 255]));
    expect([...(await xs.readBytes('/dev/test'))]).toEqual([0, 10, 13, 3, 255]);
    const events = firstValueFrom(xs.watch('/dev').pipe(take(2), toArray()));
    await until(() => t.server.stats().watches === 1, 5000, 'watch');
    await xs.transaction(async (tx) => tx.write('/dev/tx', 'ok'));
    expect((await events).map((e) => e.path)).toEqual(['/dev', '/dev/tx']);
    const values = await Promise.all(Array.from({ length: 200 }, (_, i) => xs.write(`/dev/p/${i}`, String(i)).then(() => xs.read(`/dev/p/${i}`))));
    expect(values).toEqual(Array.from({ length: 200 }, (_, i) => String(i)));
    await xs.close();
  });

  it('is chosen automatically for a path that is not a socket, as libxenstore does', async () => {
    const viaSocket = await XenStore.connect({ path: t.socket });
    await viaSocket.write('/auto', 'yes');
    await viaSocket.close();
    // libxenstore itself opens a non-socket XENSTORED_PATH as the xenbus device. (It goes first:
    // every opener of a pty shares one queue, unlike the real device.)
    const r = await run('xenstore-read', ['/auto'], { env: { XENSTORED_PATH: device } });
    expect(r.stdout).toBe('yes\n');
    const xs = await XenStore.connect({ path: device, reconnect: false });
    expect(xs.endpoint).toBe(`device ${device}`);
    expect(await xs.read('/auto')).toBe('yes');
    await xs.close();
  });
});
