// Bad frames from many connections: the embedded xenstored logs one line per connection at most,
// rate-limits those lines across connections, and counts every bad frame where anyone can see it
// (stats(), CONTROL stats).
import * as net from 'node:net';
import type { Duplex } from 'node:stream';
import { XsConnection } from '../../src/io/xs/connection';
import { silentLogger, type XsLogger } from '../../src/io/xs/logger';
import { replyString } from '../../src/io/xs/payload';
import { BadFrameLog } from '../../src/io/xs/server/bad-frames';
import { XenstoredServer } from '../../src/io/xs/server/server';
import { FrameDecoder, FrameTooLargeError, HEADER_SIZE, XsType, encodeFrame } from '../../src/io/xs/wire';
import { tempDir, until } from './helpers';

interface Line {
  level: string;
  fields: Record<string, unknown>;
  msg: string;
}

function collecting(lines: Line[]): XsLogger {
  const at = (level: string) => (o: object | string, msg?: string) =>
    lines.push({ level, fields: typeof o === 'string' ? {} : (o as Record<string, unknown>), msg: typeof o === 'string' ? o : (msg ?? '') });
  return { debug: () => {}, info: at('info'), warn: at('warn'), error: at('error') };
}

/** mulberry32: the same streams every run. */
function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** One fuzz connection's bytes: a few good frames, then a bad ending (or random garbage). */
function badStream(rnd: () => number): Buffer {
  const good = Array.from({ length: Math.floor(rnd() * 3) }, (_, i) => encodeFrame(XsType.READ, i + 1, 0, Buffer.from('/a\0')));
  const header = Buffer.alloc(HEADER_SIZE);
  header.writeUInt32LE(XsType.WRITE, 0);
  switch (Math.floor(rnd() * 3)) {
    case 0: // a header announcing more than a frame may carry
      header.writeUInt32LE(4097 + Math.floor(rnd() * 0xfffff000), 12);
      return Buffer.concat([...good, header]);
    case 1: {
      // a frame cut short, then the end of the stream
      const f = encodeFrame(XsType.WRITE, 9, 0, Buffer.from('/a\0value'));
      return Buffer.concat([...good, f.subarray(0, 1 + Math.floor(rnd() * (f.length - 1)))]);
    }
    default: // garbage
      return Buffer.from(Array.from({ length: 1 + Math.floor(rnd() * 40) }, () => Math.floor(rnd() * 256)));
  }
}

/** What the server must count for these bytes: the same decoder, client side. */
function badFramesIn(bytes: Buffer): number {
  const d = new FrameDecoder();
  try {
    d.push(bytes, () => {});
  } catch (e) {
    if (e instanceof FrameTooLargeError) return 1;
    throw e;
  }
  return d.hasPartial ? 1 : 0;
}

async function sendAndEnd(stream: Duplex, bytes: Buffer): Promise<void> {
  stream.on('data', () => {});
  stream.on('error', () => {});
  await new Promise<void>((resolve) => {
    stream.once('close', () => resolve());
    stream.end(bytes);
  });
}

async function sendOnSocket(path: string, bytes: Buffer): Promise<void> {
  const sock = net.connect(path);
  sock.on('data', () => {});
  sock.on('error', () => {});
  await new Promise<void>((resolve) => {
    sock.once('close', () => resolve());
    sock.once('connect', () => sock.end(bytes));
  });
}

describe('bad frames against the embedded xenstored', () => {
  it('10,000 fuzz connections: one line per connection at most, rate-limited, every bad frame counted', async () => {
    const lines: Line[] = [];
    const server = await XenstoredServer.open({ logger: collecting(lines) });
    const dir = tempDir('xs-bad-frames-');
    const socket = `${dir}/socket`;
    await server.listen(socket);
    const rnd = prng(12);
    const t0 = Date.now();
    let expected = 0;
    const CONNECTIONS = 10_000;
    // 50 at a time; every 20th over the unix socket, the rest in-process
    for (let i = 0; i < CONNECTIONS; i += 50) {
      const batch: Promise<void>[] = [];
      for (let j = i; j < i + 50; j++) {
        const bytes = badStream(rnd);
        expected += badFramesIn(bytes);
        batch.push(j % 20 === 0 ? sendOnSocket(socket, bytes) : sendAndEnd(server.connect(0), bytes));
      }
      await Promise.all(batch);
    }
    await until(() => server.stats().connections === 0, 10_000, 'every connection closed');
    const seconds = (Date.now() - t0) / 1000;

    const dom0 = new XsConnection(server.connect(0), { onWatchEvent: () => {}, onClose: () => {} }, silentLogger);
    const control = replyString(await dom0.request(XsType.CONTROL, 0, ['stats']));
    dom0.close();
    const stats = server.stats();
    await server.close();

    expect(expected).toBeGreaterThan(CONNECTIONS / 2);
    expect(stats.badFrames).toBe(expected);
    expect(stats.oversizedFrames + stats.partialFrames).toBe(expected);
    expect(control).toContain(`badFrames: ${expected}\n`);

    const frameLines = lines.filter((l) => /oversized frame|ended inside a frame/.test(l.msg));
    const summaries = lines.filter((l) => /bad-frame lines suppressed/.test(l.msg));
    // burst of 10, then 1 a second, plus the summary at close
    expect(lines.length).toBeLessThanOrEqual(10 + Math.ceil(seconds) + 1);
    expect(lines.length).toBe(frameLines.length + summaries.length);
    // nothing lost: every bad connection is a line or counted as suppressed, and every
    // suppressed line is told by a later line
    expect(frameLines.length + stats.badFrameLinesSuppressed).toBe(expected);
    const told = [...frameLines, ...summaries].reduce((s, l) => s + Number(l.fields.suppressed ?? 0), 0);
    expect(told).toBe(stats.badFrameLinesSuppressed);
    expect(summaries.at(-1)?.fields.badFrames).toBe(expected);
    // eslint-disable-next-line no-console
    console.log(`${CONNECTIONS} connections, ${expected} bad frames, ${lines.length} log lines in ${seconds.toFixed(1)} s`);
  }, 120_000);
});

describe('BadFrameLog', () => {
  const source = (label: string) => ({ label, badFrameLogged: false });

  it('logs a connection once however many bad frames it sends, and counts them all', () => {
    const lines: Line[] = [];
    const log = new BadFrameLog(collecting(lines), { burst: 10, perSecond: 1 }, () => 0);
    const c = source('c1');
    log.report(c, 'partial');
    log.report(c, 'oversized', { len: 99999 });
    expect(lines.map((l) => l.msg)).toEqual(['xenstored: connection ended inside a frame']);
    expect(log.stats).toEqual({ badFrames: 2, oversizedFrames: 1, partialFrames: 1, badFrameLinesSuppressed: 0 });
    log.close();
    expect(lines).toHaveLength(1);
  });

  it('lets a burst through, then one line per second, and the next line tells what was held back', () => {
    const lines: Line[] = [];
    let now = 0;
    const log = new BadFrameLog(collecting(lines), { burst: 3, perSecond: 1 }, () => now);
    for (let i = 0; i < 10; i++) log.report(source(`c${i}`), 'oversized');
    expect(lines).toHaveLength(3);
    now = 1000;
    log.report(source('late'), 'partial');
    expect(lines).toHaveLength(4);
    expect(lines[3].fields).toMatchObject({ conn: 'late', suppressed: 7, badFrames: 11 });
    log.report(source('held'), 'partial');
    expect(lines).toHaveLength(4);
    log.close();
    expect(lines[4].msg).toBe('xenstored: 1 more bad-frame lines suppressed (rate limit); 12 bad frames so far');
    expect(log.stats.badFrameLinesSuppressed).toBe(8);
  });

  it('tells what it held back in a summary line once the bucket refills', async () => {
    const lines: Line[] = [];
    const log = new BadFrameLog(collecting(lines), { burst: 1, perSecond: 20 });
    log.report(source('a'), 'oversized');
    log.report(source('b'), 'oversized');
    log.report(source('c'), 'oversized');
    expect(lines).toHaveLength(1);
    await until(() => lines.length === 2, 2000, 'the summary');
    expect(lines[1].fields).toEqual({ suppressed: 2, badFrames: 3 });
    log.close();
    expect(lines).toHaveLength(2);
  });
});
