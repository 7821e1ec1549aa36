// Quotas and bad input: the embedded xenstored answers with an error or closes the offending
// connection with one log line; it never crashes and never loses committed data.
import * as net from 'node:net';
import { XenStore } from '../../src/io/xs/client';
import { XsConnection } from '../../src/io/xs/connection';
import { isXsError } from '../../src/io/xs/errors';
import { silentLogger, type XsLogger } from '../../src/io/xs/logger';
import { replyString } from '../../src/io/xs/payload';
import { FrameDecoder, HEADER_SIZE, XsType, encodeFrame, type XsFrame } from '../../src/io/xs/wire';
import { startServer, until, type TestServer } from './helpers';

interface LogLine {
  level: string;
  msg: string;
}

function collectingLogger(lines: LogLine[]): XsLogger {
  const at = (level: string) => (o: object | string, msg?: string) => lines.push({ level, msg: typeof o === 'string' ? o : (msg ?? '') });
  return { debug: () => {}, info: at('info'), warn: at('warn'), error: at('error') };
}

let t: TestServer;
let logs: LogLine[];
let dom0: XenStore;

beforeEach(async () => {
  logs = [];
  t = await startServer({
    logger: collectingLogger(logs),
    quotas: { nodes: 10, watches: 3, transactions: 2, permissions: 3, outputBytes: 64 * 1024 },
  });
  dom0 = await XenStore.connect({ path: t.socket });
  await dom0.mkdir('/local/domain/7');
  await dom0.setPerms('/local/domain/7', [{ domid: 7, access: 'n' }]);
  await dom0.write('/committed/a', 'precious');
});

afterEach(async () => {
  await dom0.close();
  await t.close();
});

function guestConn(domid = 7): XsConnection {
  return new XsConnection(t.server.connect(domid), { onWatchEvent: () => {}, onClose: () => {} }, silentLogger);
}

async function ask(c: XsConnection, type: number, parts: (string | Uint8Array)[], txId = 0, lastRaw = false): Promise<string> {
  try {
    return replyString(await c.request(type, txId, parts, lastRaw));
  } catch (e) {
    if (isXsError(e)) return e.errno;
    throw e;
  }
}

/** A raw socket to the dom0 socket that records the frames it receives. */
async function rawSocket(): Promise<{ sock: net.Socket; frames: XsFrame[]; closed: Promise<void> }> {
  const sock = net.connect(t.socket);
  await new Promise((r) => sock.once('connect', r));
  const frames: XsFrame[] = [];
  const d = new FrameDecoder();
  sock.on('data', (chunk: Buffer) => d.push(chunk, (f) => frames.push({ ...f, payload: Buffer.from(f.payload) })));
  const closed = new Promise<void>((r) => sock.on('close', () => r()));
  sock.on('error', () => {});
  return { sock, frames, closed };
}

async function stillSound(): Promise<void> {
  expect(await dom0.read('/committed/a')).toBe('precious');
  expect(t.server.check()).toEqual([]);
}

describe('embedded xenstored quotas (unprivileged domains)', () => {
  it('limits the nodes a domain owns', async () => {
    const g = guestConn();
    // The domain's home (owned by it) is one of its 10 nodes.
    for (let i = 1; i < 10; i++) expect(await ask(g, XsType.WRITE, [`n${i}`, 'x'], 0, true)).toBe('OK');
    expect(await ask(g, XsType.WRITE, ['n10', 'x'], 0, true)).toBe('ENOSPC');
    // Creating several missing parents at once counts them all, and changes nothing on failure.
    expect(await ask(g, XsType.RM, ['n9'])).toBe('OK');
    expect(await ask(g, XsType.WRITE, ['deep/er', 'x'], 0, true)).toBe('ENOSPC');
    expect(await ask(g, XsType.READ, ['deep'])).toBe('ENOENT');
    // Overwriting is fine; dom0 is not limited.
    expect(await ask(g, XsType.WRITE, ['n1', 'y'], 0, true)).toBe('OK');
    for (let i = 0; i < 20; i++) await dom0.write(`/dom0/n${i}`, 'x');
    // In a transaction the quota is checked too.
    const tx = Number(await ask(g, XsType.TRANSACTION_START, ['']));
    expect(await ask(g, XsType.WRITE, ['t1', 'x'], tx, true)).toBe('OK');
    expect(await ask(g, XsType.WRITE, ['t2', 'x'], tx, true)).toBe('ENOSPC');
    expect(await ask(g, XsType.TRANSACTION_END, ['T'], tx)).toBe('OK');
    g.close();
    await stillSound();
  });

  it('limits watches, transactions, permission entries and node size', async () => {
    const g = guestConn();
    for (let i = 0; i < 3; i++) expect(await ask(g, XsType.WATCH, [`w${i}`, 'tok'])).toBe('OK');
    expect(await ask(g, XsType.WATCH, ['w3', 'tok'])).toBe('E2BIG');
    expect(await ask(g, XsType.WATCH, ['w0', 'tok'])).toBe('EEXIST');
    // The limit is per domain, over all its connections.
    const g2 = guestConn();
    expect(await ask(g2, XsType.WATCH, ['w4', 'tok'])).toBe('E2BIG');
    expect(await ask(g2, XsType.RESET_WATCHES, [''])).toBe('OK');
    expect(await ask(g, XsType.TRANSACTION_START, [''])).toMatch(/^\d+$/);
    expect(await ask(g2, XsType.TRANSACTION_START, [''])).toMatch(/^\d+$/);
    expect(await ask(g, XsType.TRANSACTION_START, [''])).toBe('ENOSPC');
    expect(await ask(g, XsType.WRITE, ['p', ''], 0, true)).toBe('OK');
    expect(await ask(g, XsType.SET_PERMS, ['p', 'n7', 'r1', 'r2', 'r3'])).toBe('ENOSPC');
    expect(await ask(g, XsType.SET_PERMS, ['p', 'n7', 'r1', 'r2'])).toBe('OK');
    expect(await ask(g, XsType.WRITE, ['big', Buffer.alloc(2100, 0x61)], 0, true)).toBe('ENOSPC');
    await dom0.write('/big', Buffer.alloc(4000, 0x61));
    g.close();
    g2.close();
    await stillSound();
  });
});

describe('embedded xenstored bad input', () => {
  it('answers unknown and reply-only message types with ENOSYS and carries on', async () => {
    const { sock, frames } = await rawSocket();
    for (const [i, type] of [20, 15, 16, 23, 99, 0xffff].entries()) sock.write(encodeFrame(type, 100 + i, 0, Buffer.from('x\0')));
    sock.write(encodeFrame(XsType.READ, 200, 0, Buffer.from('/committed/a\0')));
    await until(() => frames.length === 7, 5000, 'replies');
    expect(frames.slice(0, 6).map((f) => [f.type, f.reqId, f.payload.toString()])).toEqual(
      [100, 101, 102, 103, 104, 105].map((id) => [XsType.ERROR, id, 'ENOSYS\0']),
    );
    expect(frames[6].payload.toString()).toBe('precious');
    sock.destroy();
  });

  it('answers malformed payloads and invalid paths with EINVAL', async () => {
    const { sock, frames } = await rawSocket();
    const bad: [number, string][] = [
      [XsType.READ, '/committed/a'], // no NUL
      [XsType.READ, '/a\0/b\0'], // two arguments
      [XsType.READ, ''],
      [XsType.WRITE, '/no-nul-at-all'],
      [XsType.WRITE, 'bad path\0v'],
      [XsType.MKDIR, '/a//b\0'],
      [XsType.RM, '/trailing/\0'],
      [XsType.DIRECTORY_PART, '/\0x\0'],
      [XsType.SET_PERMS, '/committed/a\0q5\0'],
      [XsType.SET_PERMS, '/committed/a\0'],
      [XsType.WATCH, '/only-path\0'],
      [XsType.GET_DOMAIN_PATH, 'abc\0'],
      [XsType.INTRODUCE, '99999\0' + '0\0' + '1\0'],
      [XsType.TRANSACTION_END, 'T\0'],
      [XsType.READ, '/' + 'a'.repeat(3100) + '\0'],
      [XsType.READ, '/caf\u00e9\0'],
    ];
    bad.forEach(([type, payload], i) => sock.write(encodeFrame(type, i + 1, 0, Buffer.from(payload, 'latin1'))));
    await until(() => frames.length === bad.length, 5000, 'replies');
    const answers = frames.map((f) => [f.reqId, f.type === XsType.ERROR ? f.payload.toString() : 'ok']);
    expect(answers).toEqual(bad.map((b, i) => [i + 1, b[0] === XsType.TRANSACTION_END ? 'ENOENT\0' : 'EINVAL\0']));
    sock.destroy();
    await stillSound();
  });

  it('closes a connection that announces an oversized payload, with one log line', async () => {
    const { sock, closed } = await rawSocket();
    const header = Buffer.alloc(HEADER_SIZE);
    header.writeUInt32LE(XsType.WRITE, 0);
    header.writeUInt32LE(4097, 12);
    sock.write(header);
    await closed;
    expect(logs.filter((l) => /oversized/.test(l.msg))).toHaveLength(1);
    await stillSound();
  });

  it('logs one line for a client that stops inside a frame', async () => {
    const { sock } = await rawSocket();
    const f = encodeFrame(XsType.WRITE, 1, 0, Buffer.from('/committed/a\0overwritten'));
    sock.end(f.subarray(0, f.length - 3));
    await until(() => t.server.stats().connections === 1, 5000, 'connection gone');
    expect(logs.filter((l) => /inside a frame/.test(l.msg))).toHaveLength(1);
    await stillSound();
  });

  it('drops a client that does not read its replies', async () => {
    await dom0.write('/fat', Buffer.alloc(4000, 0x62));
    const { sock } = await rawSocket();
    sock.pause();
    const req = encodeFrame(XsType.READ, 1, 0, Buffer.from('/fat\0'));
    const burst = Buffer.concat(Array.from({ length: 400 }, () => req));
    for (let i = 0; i < 5; i++) sock.write(burst);
    await until(() => t.server.stats().connections === 1, 10000, 'the connection to be dropped');
    expect(logs.filter((l) => /does not read/.test(l.msg))).toHaveLength(1);
    sock.destroy();
    await stillSound();
  });

  it('survives garbage bytes on many connections at once', async () => {
    const socks = await Promise.all(Array.from({ length: 5 }, () => rawSocket()));
    for (const [i, { sock }] of socks.entries()) {
      const junk = Buffer.alloc(3000);
      for (let j = 0; j < junk.length; j++) junk[j] = (j * 131 + i * 17) & 0xff;
      sock.end(junk);
    }
    await Promise.all(socks.map((s) => s.closed));
    await stillSound();
  });
});
