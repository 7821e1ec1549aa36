// The embedded xenstored against pyxs, an independent pure-Python client that pipelines by
// req_id, and against our client and xenstore-utils in the same scenarios.
import { XenStore } from '../../src/io/xs/client';
import { python, startServer, until, type TestServer } from './helpers';

let t: TestServer;

beforeEach(async () => {
  t = await startServer();
});

afterEach(async () => {
  await t.close();
});

const py = (body: string) => python(`import sys, threading, subprocess\nfrom pyxs import Client, PyXSError\n${body}`, t.env);

describe('embedded xenstored with pyxs', () => {
  it('reads, writes, lists, checks and removes', async () => {
    const r = await py(`
with Client() as c:
    c.write(b"/py/a", b"1")
    c.write(b"/py/b", b"two")
    c.mkdir(b"/py/dir")
    print(c.read(b"/py/b").decode())
    print(",".join(sorted(x.decode() for x in c.list(b"/py"))))
    print(c.exists(b"/py/a"), c.exists(b"/py/none"))
    c.delete(b"/py/a")
    print(c.exists(b"/py/a"))
    print(c.read(b"/py/none", b"default").decode())
    try:
        c.read(b"/py/none")
    except PyXSError as e:
        print("error", e.args[0])
`);
    expect(r.stderr).toBe('');
    expect(r.stdout.split('\n')).toEqual(['two', 'a,b,dir', 'True False', 'False', 'default', 'error 2', '']);
  });

  it('sets and gets permissions, and answers domain queries', async () => {
    const r = await py(`
with Client() as c:
    c.write(b"/perm/x", b"")
    c.set_perms(b"/perm/x", [b"n4", b"r6"])
    print(b",".join(c.get_perms(b"/perm/x")).decode())
    print(c.get_domain_path(7).decode())
    print(c.is_domain_introduced(0), c.is_domain_introduced(9))
`);
    expect(r.stderr).toBe('');
    expect(r.stdout.split('\n')).toEqual(['n4,r6', '/local/domain/7', 'True False', '']);
  });

  it('commits a transaction and fails the one that conflicts with another client', async () => {
    const r = await py(`
with Client() as c1, Client() as c2:
    c1.write(b"/tx/counter", b"0")
    c1.transaction()
    v = int(c1.read(b"/tx/counter"))
    c1.write(b"/tx/counter", str(v + 1).encode())
    # A second client changes what the first one read: its commit must fail.
    c2.write(b"/tx/counter", b"100")
    print("inside", c1.read(b"/tx/counter").decode())
    print("commit", c1.commit())
    print("after", c1.read(b"/tx/counter").decode())
    c1.transaction()
    c1.write(b"/tx/counter", b"101")
    print("commit", c1.commit())
    print("after", c2.read(b"/tx/counter").decode())
`);
    expect(r.stderr).toBe('');
    expect(r.stdout.split('\n')).toEqual(['inside 1', 'commit False', 'after 100', 'commit True', 'after 101', '']);
  });

  it('fails a pyxs transaction when xenstore-write changes what it read', async () => {
    const r = await py(`
with Client() as c:
    c.write(b"/tx2/k", b"a")
    c.transaction()
    c.read(b"/tx2/k")
    subprocess.run(["xenstore-write", "/tx2/k", "b"], check=True)
    c.write(b"/tx2/other", b"x")
    print(c.commit())
    print(c.read(b"/tx2/k").decode(), c.exists(b"/tx2/other"))
`);
    expect(r.stderr).toBe('');
    expect(r.stdout).toBe('False\nb False\n');
  });

  it('delivers watch events, including for writes of our client and at commit only', async () => {
    const xs = await XenStore.connect({ path: t.socket });
    const done = py(`
with Client() as c:
    m = c.monitor()
    m.watch(b"/pw", b"tok")
    events = m.wait()
    print(next(events).path.decode(), flush=True)   # fires once on registration
    for _ in range(3):
        e = next(events)
        print(e.path.decode(), e.token.decode(), flush=True)
`);
    await until(() => t.server.stats().watches === 1, 5000, 'the pyxs watch');
    await xs.write('/pw/one', '1');
    await xs.transaction(async (tx) => {
      await tx.write('/pw/two', '2');
      await tx.write('/pw/three', '3');
    });
    const r = await done;
    await xs.close();
    expect(r.stderr).toBe('');
    expect(r.stdout.split('\n')).toEqual(['/pw', '/pw/one tok', '/pw/two tok', '/pw/three tok', '']);
  });

  it('matches replies to pipelined requests of several threads by req_id', async () => {
    const r = await py(`
with Client() as c:
    errors = []
    def worker(n):
        cc = c.__copy__()   # shares the router: requests of all threads interleave on one socket
        try:
            for i in range(200):
                p = ("/pipe/%d/%d" % (n, i)).encode()
                cc.write(p, str(i * n).encode())
                if cc.read(p) != str(i * n).encode():
                    errors.append(p)
        except Exception as e:
            errors.append(repr(e))
    ts = [threading.Thread(target=worker, args=(n,)) for n in range(1, 5)]
    for th in ts: th.start()
    for th in ts: th.join()
    print(len(errors), len(c.list(b"/pipe")), len(c.list(b"/pipe/3")))
`);
    expect(r.stderr).toBe('');
    expect(r.stdout).toBe('0 4 200\n');
  });
});
