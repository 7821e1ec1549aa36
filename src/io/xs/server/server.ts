// The embedded xenstored: a xenstored-compatible server over unix sockets and in-process
// connections, so that everything runs without Xen. Each connection acts as one domain: a socket
// listened on with { domid: N } or connect(N) gives the simulated host a connection as guest N,
// subject to that domain's permissions and quotas.
import * as fs from 'node:fs';
import * as net from 'node:net';
import type { Duplex } from 'node:stream';
import { createDuplexPair } from '../duplex-pair';
import { silentLogger, type XsLogger } from '../logger';
import type { XsFrame } from '../wire';
import { BadFrameLog, type BadFrameCounts, type BadFrameKind, type BadFrameLimits } from './bad-frames';
import { ServerConnection, type ConnectionHost } from './connection';
import { Dispatcher, type DispatchHost } from './dispatch';
import { Domains } from './domains';
import { EventFirer } from './events';
import { OutputGate } from './output-gate';
import { TreePersistence } from './persist';
import type { XsQuotas } from './quotas';
import { Store } from './store';
import { WatchTable } from './watches';

export interface XenstoredOptions {
  /** Keep the tree in this LevelDB folder (created if missing) and load it at start. */
  persistDir?: string;
  quotas?: Partial<XsQuotas>;
  logger?: XsLogger;
  /** How many bad-frame lines may be logged (default: 10 at once, then 1 per second). */
  badFrameLogLimits?: BadFrameLimits;
}

export interface XenstoredStats extends BadFrameCounts {
  nodes: number;
  connections: number;
  watches: number;
  transactions: number;
}

export class XenstoredServer implements DispatchHost, ConnectionHost {
  readonly store = new Store();
  readonly watches = new WatchTable();
  readonly domains: Domains;
  readonly events: EventFirer;
  readonly log: XsLogger;
  private readonly dispatcher: Dispatcher;
  private readonly gate: OutputGate;
  private readonly badFrames: BadFrameLog;
  private readonly conns = new Set<ServerConnection>();
  private readonly byDomain = new Map<number, Set<ServerConnection>>();
  private readonly servers: { server: net.Server; path: string }[] = [];
  private nextConnId = 1;
  private isClosed = false;

  private constructor(
    opts: XenstoredOptions,
    private readonly persist: TreePersistence | undefined,
  ) {
    this.log = opts.logger ?? silentLogger;
    this.domains = new Domains(opts.quotas);
    this.events = new EventFirer(this.store, this.watches, this.domains);
    this.dispatcher = new Dispatcher(this);
    this.gate = new OutputGate(persist, this.log);
    this.badFrames = new BadFrameLog(this.log, opts.badFrameLogLimits);
  }

  static async open(opts: XenstoredOptions = {}): Promise<XenstoredServer> {
    const log = opts.logger ?? silentLogger;
    let persist: TreePersistence | undefined;
    if (opts.persistDir) {
      fs.mkdirSync(opts.persistDir, { recursive: true });
      persist = await TreePersistence.open(opts.persistDir, log);
    }
    const server = new XenstoredServer(opts, persist);
    if (persist) {
      const loaded = await persist.load();
      if (loaded.size > 0) {
        const dropped = server.store.load(loaded);
        if (dropped.length > 0) {
          log.error({ dropped: dropped.length }, 'xenstored: persisted nodes without a parent were dropped');
        }
        if (dropped.length > 0 || loaded.size !== server.store.size) await persist.rewrite(server.store.entries());
      } else {
        await persist.rewrite(server.store.entries());
      }
      server.store.onChange = (path, node) => {
        persist.stage(path, node);
        server.gate.changed();
      };
    }
    return server;
  }

  /**
   * Serves connections on a unix socket, each acting as domain `domid` (default 0). A stale socket
   * file (nobody listening) is replaced; a live one is an error (EADDRINUSE).
   */
  async listen(socketPath: string, opts: { domid?: number } = {}): Promise<void> {
    const domid = opts.domid ?? 0;
    this.checkDomid(domid);
    if (this.isClosed) throw new Error('server is closed');
    await removeStaleSocket(socketPath);
    const server = net.createServer((sock) => this.attach(sock, domid, `unix:${socketPath}#${this.nextConnId}`));
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(socketPath, () => {
        server.off('error', reject);
        resolve();
      });
    });
    server.on('error', (err) => this.log.error({ path: socketPath, err: err.message }, 'xenstored: socket error'));
    this.servers.push({ server, path: socketPath });
  }

  /** An in-process connection acting as domain `domid`. */
  connect(domid: number): Duplex {
    this.checkDomid(domid);
    if (this.isClosed) throw new Error('server is closed');
    const [mine, theirs] = createDuplexPair();
    this.attach(mine, domid, `inproc:dom${domid}#${this.nextConnId}`);
    return theirs;
  }

  /** Marks a domain introduced and fires @introduceDomain (once per introduction). */
  introduceDomain(domid: number): void {
    this.checkDomid(domid);
    if (this.domains.introduce(domid)) this.events.fire('@introduceDomain', false, undefined);
  }

  /** Fires @releaseDomain and drops that domain's connections (with their watches). */
  releaseDomain(domid: number): void {
    this.checkDomid(domid);
    if (domid === 0) throw new Error('dom0 cannot be released');
    this.domains.release(domid);
    for (const c of [...(this.byDomain.get(domid) ?? [])]) c.close();
    this.events.fire('@releaseDomain', false, undefined);
  }

  stats(): XenstoredStats {
    let transactions = 0;
    for (const c of this.conns) transactions += c.transactions.size;
    return { nodes: this.store.size, connections: this.conns.size, watches: this.watches.size, transactions, ...this.badFrames.stats };
  }

  /** Problems with the tree's invariants (empty when sound). */
  check(): string[] {
    return this.store.check();
  }

  async close(): Promise<void> {
    if (this.isClosed) return;
    this.isClosed = true;
    // Stop accepting first, then drop the connections: server.close() waits for them to end.
    const stopped = this.servers.map(
      ({ server, path }) =>
        new Promise<void>((resolve) => {
          server.close(() => resolve());
          fs.rm(path, { force: true }, () => {});
        }),
    );
    for (const c of [...this.conns]) c.close();
    this.badFrames.close();
    await Promise.all(stopped);
    await this.gate.drain();
    if (this.persist) {
      await this.persist.flush();
      await this.persist.close();
    }
  }

  // --- ConnectionHost / DispatchHost ---

  handleFrame(conn: ServerConnection, frame: XsFrame): void {
    this.dispatcher.handleFrame(conn, frame);
  }

  badFrame(conn: ServerConnection, kind: BadFrameKind, detail?: Record<string, unknown>): void {
    this.badFrames.report(conn, kind, detail);
  }

  queued(conn: ServerConnection, at: number): void {
    this.gate.queued(conn, at);
  }

  closed(conn: ServerConnection): void {
    this.resetConnection(conn);
    this.conns.delete(conn);
    const set = this.byDomain.get(conn.domid);
    set?.delete(conn);
    if (set && set.size === 0) this.byDomain.delete(conn.domid);
  }

  connectionsOf(domid: number): Iterable<ServerConnection> {
    return this.byDomain.get(domid) ?? [];
  }

  resetConnection(conn: ServerConnection): void {
    for (const w of conn.watches) this.watches.remove(w);
    conn.watches.length = 0;
    conn.transactions.clear();
  }

  private attach(stream: Duplex, domid: number, label: string): void {
    if (this.isClosed) {
      stream.destroy();
      return;
    }
    const conn = new ServerConnection(this.nextConnId++, domid, label, stream, this, this.domains.quotas.outputBytes);
    this.conns.add(conn);
    let set = this.byDomain.get(domid);
    if (!set) this.byDomain.set(domid, (set = new Set()));
    set.add(conn);
  }

  private checkDomid(domid: number): void {
    if (!Number.isInteger(domid) || domid < 0 || domid > 0x7fef) throw new RangeError(`bad domain id ${domid}`);
  }
}

/** Removes a socket file nobody listens on; throws EADDRINUSE when somebody does. */
async function removeStaleSocket(path: string): Promise<void> {
  let st: fs.Stats;
  try {
    st = fs.statSync(path);
  } catch {
    return;
  }
  if (!st.isSocket()) throw Object.assign(new Error(`${path} exists and is not a socket`), { code: 'EEXIST' });
  const live = await new Promise<boolean>((resolve) => {
    const s = net.connect(path);
    s.once('connect', () => {
      s.destroy();
      resolve(true);
    });
    s.once('error', () => resolve(false));
  });
  if (live) throw Object.assign(new Error(`${path}: a server is already listening`), { code: 'EADDRINUSE' });
  fs.rmSync(path, { force: true });
}
