// Xen's own conformance client, /usr/lib/xen-4.17/bin/test-xenstore, against the embedded
// xenstored: every one of its tests must pass.
import { XenStore } from '../../src/io/xs/client';
import { run, startServer, type TestServer } from './helpers';

const TEST_XENSTORE = '/usr/lib/xen-4.17/bin/test-xenstore';
let t: TestServer;

beforeEach(async () => {
  t = await startServer();
});

afterEach(async () => {
  await t.close();
});

async function listTests(): Promise<string[]> {
  const r = await run(TEST_XENSTORE, ['--list-tests'], { env: t.env });
  expect(r.code).toBe(0);
  return r.stdout
    .split('\n')
    .filter(Boolean)
    .map((l) => l.split(':')[0].trim());
}

describe('test-xenstore against the embedded xenstored', () => {
  it('passes every test', async () => {
    const names = await listTests();
    expect(names).toEqual(expect.arrayContaining(['read 1', 'write 2000', 'dir', 'rm dir', 'ta rmw', 'ta err']));
    const r = await run(TEST_XENSTORE, [], { env: t.env });
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    const lines = r.stdout.split('\n').filter(Boolean);
    for (const name of names) {
      const line = lines.find((l) => l.startsWith(name.padEnd(10) + ':'));
      expect(line).toBeDefined();
      expect(line).not.toMatch(/failed/);
      expect(line).toMatch(/\d+ ns/);
    }
    // It cleans up after itself, through a transaction.
    const xs = await XenStore.connect({ path: t.socket });
    expect(await xs.tryRead('/local/domain/0/xenstore-test')).toBeUndefined();
    await xs.close();
    expect(t.server.check()).toEqual([]);
  });

  it('passes every test repeatedly, in a random order, with two clients at once', async () => {
    const [a, b, c] = await Promise.all([
      run(TEST_XENSTORE, ['-i', '5'], { env: t.env }),
      run(TEST_XENSTORE, ['--random', '2'], { env: t.env }),
      run(TEST_XENSTORE, ['--random', '2'], { env: t.env }),
    ]);
    for (const r of [a, b, c]) {
      expect(r.stdout).not.toMatch(/failed/);
      expect(r.code).toBe(0);
    }
    expect(a.stdout).toMatch(/ta err\s*: avg: \d+ ns/);
    expect(t.server.check()).toEqual([]);
  });
});
