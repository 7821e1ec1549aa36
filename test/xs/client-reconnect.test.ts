// Losing xenstored is an event: the client reconnects with backoff, registers its watches again
// (each fires once: the resync hint) and says so on connection$.
import type { Duplex } from 'node:stream';
import { firstValueFrom } from 'rxjs';
import { XenStore, type XsConnectionEvent, type XsWatchEvent } from '../../src/io/xs/client';
import { isXsError } from '../../src/io/xs/errors';
import { XenstoredServer } from '../../src/io/xs/server/server';
import { sleep, tempDir, until } from './helpers';
import * as fs from 'node:fs';
import * as path from 'node:path';

const fast = { initialDelayMs: 10, maxDelayMs: 50 };

describe('XenStore reconnection', () => {
  let dir: string;
  let sock: string;
  beforeEach(() => {
    dir = tempDir();
    sock = path.join(dir, 'socket');
  });
  afterEach(() => fs.rmSync(dir, { recursive: true, force: true }));

  it('reconnects to a restarted xenstored, re-registers watches and emits resync', async () => {
    const persistDir = path.join(dir, 'db');
    let server = await XenstoredServer.open({ persistDir });
    await server.listen(sock);
    const xs = await XenStore.connect({ path: sock, reconnect: fast });
    const states: XsConnectionEvent[] = [];
    xs.connection$.subscribe((s) => states.push(s));
    const events: XsWatchEvent[] = [];
    xs.watch('/r').subscribe((e) => events.push(e));
    await until(() => events.length === 1, 5000, 'first event');
    await xs.write('/r/kept', 'before');
    await until(() => events.length === 2, 5000, 'write event');

    await server.close();
    await until(() => states.includes('disconnected'), 5000, 'disconnected');
    expect(xs.connected).toBe(false);
    // Requests made while disconnected wait for the connection.
    const pending = xs.read('/r/kept');

    server = await XenstoredServer.open({ persistDir });
    await server.listen(sock);
    expect(await pending).toBe('before');
    await until(() => states.includes('resync'), 5000, 'resync');
    expect(states).toEqual(['disconnected', 'connected', 'resync']);
    expect(server.stats().watches).toBe(1);
    // The re-registered watch fired once (the resync hint) and keeps delivering.
    await until(() => events.length === 3, 5000, 'resync event');
    await xs.write('/r/after', '1');
    await until(() => events.length === 4, 5000, 'event after reconnect');
    expect(events.map((e) => e.path)).toEqual(['/r', '/r/kept', '/r', '/r/after']);
    await xs.close();
    await server.close();
  });

  it('fails requests in flight with ECONNRESET, and all calls with ENOTCONN when reconnect is off', async () => {
    const server = await XenstoredServer.open();
    let stream: Duplex | undefined;
    const xs = await XenStore.connect({ duplex: () => (stream = server.connect(0)), reconnect: false });
    await xs.write('/a', '1');
    const inFlight = xs.read('/a');
    stream!.destroy();
    const e1 = await inFlight.catch((e: unknown) => e);
    expect(isXsError(e1, 'ECONNRESET') || isXsError(e1, 'ENOTCONN')).toBe(true);
    const e2 = await xs.read('/a').catch((e: unknown) => e);
    expect(isXsError(e2, 'ENOTCONN')).toBe(true);
    const e3 = await firstValueFrom(xs.watch('/a')).catch((e: unknown) => e);
    expect(isXsError(e3, 'ENOTCONN')).toBe(true);
    await xs.close();
    await server.close();
  });

  it('fails watch subscribers with ENOTCONN when the connection is lost and reconnect is off', async () => {
    const server = await XenstoredServer.open();
    let stream: Duplex | undefined;
    const xs = await XenStore.connect({ duplex: () => (stream = server.connect(0)), reconnect: false });
    const events: XsWatchEvent[] = [];
    let failed: unknown;
    xs.watch('/gone').subscribe({ next: (e) => events.push(e), error: (e: unknown) => (failed = e) });
    await until(() => events.length === 1, 5000, 'first event');
    stream!.destroy();
    await until(() => failed !== undefined, 5000, 'the watch to fail');
    expect(isXsError(failed, 'ENOTCONN')).toBe(true);
    await xs.close();
    await server.close();
  });

  it('reconnects through the duplex factory and retries a transaction cut before commit', async () => {
    const server = await XenstoredServer.open();
    let stream: Duplex | undefined;
    let opened = 0;
    const xs = await XenStore.connect({
      duplex: () => {
        opened++;
        return (stream = server.connect(0));
      },
      reconnect: fast,
    });
    await xs.write('/tx/v', '0');
    let calls = 0;
    await xs.transaction(async (tx) => {
      calls++;
      const v = await tx.read('/tx/v');
      if (calls === 1) {
        stream!.destroy();
        await sleep(5);
      }
      await tx.write('/tx/v', String(Number(v) + 1));
    });
    expect(calls).toBe(2);
    expect(opened).toBe(2);
    expect(await xs.read('/tx/v')).toBe('1');
    expect(server.stats().transactions).toBe(0);
    await xs.close();
    await server.close();
  });

  it('registers a watch subscribed while disconnected once, when the connection is back', async () => {
    const server = await XenstoredServer.open();
    await server.listen(sock);
    const xs = await XenStore.connect({ path: sock, reconnect: fast });
    const states: XsConnectionEvent[] = [];
    xs.connection$.subscribe((s) => states.push(s));
    await server.close();
    await until(() => states.includes('disconnected'), 5000, 'disconnected');
    const events: XsWatchEvent[] = [];
    let failed: unknown;
    xs.watch('/late').subscribe({ next: (e) => events.push(e), error: (e: unknown) => (failed = e) });
    const again = await XenstoredServer.open();
    await again.listen(sock);
    await until(() => states.includes('resync'), 5000, 'resync');
    await until(() => events.length >= 1, 5000, 'first event');
    await xs.write('/late/x', '1');
    await until(() => events.some((e) => e.path === '/late/x'), 5000, 'event');
    expect(failed).toBeUndefined();
    expect(again.stats().watches).toBe(1);
    await xs.close();
    await again.close();
  });

  it('keeps trying with backoff while nothing listens', async () => {
    const server = await XenstoredServer.open();
    await server.listen(sock);
    const xs = await XenStore.connect({ path: sock, reconnect: fast });
    const states: XsConnectionEvent[] = [];
    xs.connection$.subscribe((s) => states.push(s));
    await server.close();
    await sleep(200);
    expect(states).toEqual(['disconnected']);
    const again = await XenstoredServer.open();
    await again.listen(sock);
    await until(() => states.includes('resync'), 5000, 'resync');
    expect(await xs.tryRead('/nothing')).toBeUndefined();
    await xs.close();
    await again.close();
  });
});
