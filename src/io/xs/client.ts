// The xenstore client the daemon uses: pipelined operations, transactions retried on EAGAIN,
// watches as Observables, and a connection that comes back by itself. Losing the connection is
// visible on connection$ ('disconnected', then 'connected' and 'resync'): watch events may have
// been lost meanwhile, so readers re-read what they care about.
import type { Duplex } from 'node:stream';
import { Subject, throwError, type Observable } from 'rxjs';
import { XsConnection, rawPayload, type Decode } from './connection';
import { XsError, isXsError } from './errors';
import { silentLogger, type XsLogger } from './logger';
import { XsOpsBase, type XsOps } from './ops';
import { replyString } from './payload';
import { openTransport, type XsTransportKind } from './transport';
import { WatchManager, type XsWatchEvent } from './watches';
import { XsType } from './wire';

export type { XsOps } from './ops';
export type { XsWatchEvent } from './watches';
export { XsError, type XsErrno } from './errors';
export type { XsPerm, XsAccess } from './perms';

export type XsConnectionEvent = 'connected' | 'disconnected' | 'resync';

export interface XsReconnectOptions {
  /** First delay after a loss, doubled (with jitter) up to maxDelayMs. Default 50. */
  initialDelayMs?: number;
  /** Default 5000. */
  maxDelayMs?: number;
}

export interface XsConnectOptions {
  /** Socket or device path; default: $XENSTORED_PATH, $XENSTORED_RUNDIR/socket, /var/run/xenstored/socket. */
  path?: string;
  /** 'auto' (default): a socket if one answers, else /dev/xen/xenbus. */
  transport?: XsTransportKind;
  /** In-process connection factory (the simulated host's guests); called again on reconnect. */
  duplex?: () => Duplex | Promise<Duplex>;
  /** Reconnect after a loss (default true); false makes a loss final. */
  reconnect?: boolean | XsReconnectOptions;
  logger?: XsLogger;
}

export interface XsTransactionOptions {
  /** Attempts before EAGAIN is given up on (default 16). */
  maxAttempts?: number;
}

const DEFAULT_TX_ATTEMPTS = 16;
const TX_BACKOFF_BASE_MS = 1;
const TX_BACKOFF_MAX_MS = 64;

/** Full-jitter exponential backoff: a random delay in [0, min(max, base * 2^(attempt-1))). */
function jittered(attempt: number, baseMs: number, maxMs: number): number {
  return Math.random() * Math.min(maxMs, baseMs * 2 ** Math.min(attempt - 1, 30));
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => (ms < 1 ? setImmediate(resolve) : setTimeout(resolve, ms)));
}

class TxHandle extends XsOpsBase {
  ended = false;

  constructor(
    readonly txId: number,
    private readonly conn: XsConnection,
  ) {
    super();
  }

  protected call<T>(type: number, parts: readonly (string | Uint8Array)[], lastRaw: boolean, decode: Decode<T>): Promise<T> {
    if (this.ended) return Promise.reject(new XsError('EINVAL', 'transaction already ended'));
    // A transaction lives on its connection: after a reconnect its id means nothing there.
    return this.conn.request(type, this.txId, parts, lastRaw, decode);
  }

  async end(commit: boolean): Promise<void> {
    if (this.ended) return;
    const p = this.call(XsType.TRANSACTION_END, [commit ? 'T' : 'F'], false, rawPayload);
    this.ended = true;
    await p;
  }
}

export class XenStore extends XsOpsBase implements XsOps {
  private readonly subject = new Subject<XsConnectionEvent>();
  readonly connection$: Observable<XsConnectionEvent> = this.subject.asObservable();
  private readonly watches: WatchManager;
  private readonly log: XsLogger;
  private readonly reconnect: Required<XsReconnectOptions> | undefined;
  private conn: XsConnection | undefined;
  private waiters: { resolve: (c: XsConnection) => void; reject: (e: Error) => void }[] = [];
  private reconnectTimer: NodeJS.Timeout | undefined;
  private isClosed = false;
  private description = '';

  private constructor(private readonly opts: XsConnectOptions) {
    super();
    this.log = opts.logger ?? silentLogger;
    const r = opts.reconnect ?? true;
    this.reconnect = r === false ? undefined : { initialDelayMs: 50, maxDelayMs: 5000, ...(r === true ? {} : r) };
    this.watches = new WatchManager({
      register: async (path, token) => {
        await this.call(XsType.WATCH, [path, token], false, rawPayload);
      },
      unregister: async (path, token) => {
        const c = this.conn;
        if (!c || c.closed) return;
        await c.request(XsType.UNWATCH, 0, [path, token]);
      },
      log: this.log,
    });
  }

  /** Connects (once; a failure here is thrown as ENOTCONN, not retried). */
  static async connect(opts: XsConnectOptions = {}): Promise<XenStore> {
    const xs = new XenStore(opts);
    await xs.open();
    return xs;
  }

  get connected(): boolean {
    return this.conn !== undefined && !this.conn.closed;
  }

  /** Where the client is connected (for logs). */
  get endpoint(): string {
    return this.description;
  }

  getDomainPath(domid: number): Promise<string> {
    return this.call(XsType.GET_DOMAIN_PATH, [String(domid)], false, replyString);
  }

  /**
   * Runs fn in a transaction and commits. EAGAIN (a conflict at commit, or from any operation)
   * retries the whole of fn after a bounded, jittered backoff, up to maxAttempts; any other error
   * aborts the transaction and is thrown. A connection lost before the commit was sent retries
   * too (nothing was committed); one lost during the commit is thrown as ECONNRESET, since the
   * outcome is unknown.
   */
  async transaction<T>(fn: (tx: XsOps) => Promise<T>, opts: XsTransactionOptions = {}): Promise<T> {
    const maxAttempts = opts.maxAttempts ?? DEFAULT_TX_ATTEMPTS;
    for (let attempt = 1; ; attempt++) {
      let tx: TxHandle | undefined;
      let committing = false;
      try {
        const conn = await this.connection();
        const id = Number(replyString(await conn.request(XsType.TRANSACTION_START, 0, [''])));
        if (!Number.isInteger(id) || id <= 0 || id > 0xffffffff) throw new XsError('EPROTO', 'bad transaction id');
        tx = new TxHandle(id, conn);
        const result = await fn(tx);
        if (tx.ended) throw new XsError('EINVAL', 'the transaction function ended its transaction');
        committing = true;
        await tx.end(true);
        return result;
      } catch (e) {
        if (tx && !tx.ended) await tx.end(false).catch(() => {});
        const retry = isXsError(e, 'EAGAIN') || (!committing && isXsError(e, 'ECONNRESET'));
        if (!retry || attempt >= maxAttempts) throw e;
      }
      await sleep(jittered(attempt, TX_BACKOFF_BASE_MS, TX_BACKOFF_MAX_MS));
    }
  }

  /**
   * Every watch event of path and below; see WatchManager. Errors with ENOTCONN when the client
   * is closed, or when the connection is lost and reconnecting is off.
   */
  watch(path: string): Observable<XsWatchEvent> {
    if (this.isClosed || (!this.reconnect && !this.connected)) {
      return throwError(() => new XsError('ENOTCONN', this.isClosed ? 'client closed' : 'connection to xenstored lost'));
    }
    return this.watches.watch(path);
  }

  async close(): Promise<void> {
    if (this.isClosed) return;
    this.isClosed = true;
    clearTimeout(this.reconnectTimer);
    const err = new XsError('ENOTCONN', 'client closed');
    for (const w of this.waiters.splice(0)) w.reject(err);
    this.watches.completeAll();
    this.conn?.close();
    this.subject.complete();
  }

  protected call<T>(type: number, parts: readonly (string | Uint8Array)[], lastRaw: boolean, decode: Decode<T>): Promise<T> {
    const c = this.conn;
    if (c && !c.closed) return c.request(type, 0, parts, lastRaw, decode);
    return this.connection().then((conn) => conn.request(type, 0, parts, lastRaw, decode));
  }

  /** The live connection, waiting for a reconnect if need be. */
  private connection(): Promise<XsConnection> {
    if (this.isClosed) return Promise.reject(new XsError('ENOTCONN', 'client closed'));
    const c = this.conn;
    if (c && !c.closed) return Promise.resolve(c);
    if (!this.reconnect) return Promise.reject(new XsError('ENOTCONN', 'connection to xenstored lost'));
    return new Promise((resolve, reject) => this.waiters.push({ resolve, reject }));
  }

  private async open(): Promise<void> {
    const { stream, description } = await openTransport(this.opts);
    if (this.isClosed) {
      stream.destroy();
      return;
    }
    this.description = description;
    const conn = new XsConnection(
      stream,
      {
        onWatchEvent: (path, token) => this.watches.dispatch(path, token),
        onClose: (err) => this.lost(conn, err),
      },
      this.log,
    );
    this.conn = conn;
    this.log.info({ endpoint: description }, 'xenstore: connected');
    this.subject.next('connected');
    for (const w of this.waiters.splice(0)) w.resolve(conn);
  }

  private lost(conn: XsConnection, err: Error | undefined): void {
    if (this.conn !== conn || this.isClosed) return;
    this.log.warn({ endpoint: this.description, err: err?.message }, 'xenstore: connection lost');
    this.subject.next('disconnected');
    if (!this.reconnect) {
      const e = new XsError('ENOTCONN', 'connection to xenstored lost');
      for (const w of this.waiters.splice(0)) w.reject(e);
      this.watches.failAll(e);
      return;
    }
    this.scheduleReconnect(1);
  }

  private scheduleReconnect(attempt: number): void {
    const { initialDelayMs, maxDelayMs } = this.reconnect!;
    const delay = Math.min(maxDelayMs, initialDelayMs * 2 ** Math.min(attempt - 1, 20)) * (0.5 + Math.random() / 2);
    this.reconnectTimer = setTimeout(() => {
      this.reconnectTimer = undefined;
      if (this.isClosed) return;
      this.open().then(
        () => {
          if (this.isClosed) return;
          this.watches.registerAll().then(
            () => {
              if (!this.isClosed) this.subject.next('resync');
            },
            () => {},
          );
        },
        (e: unknown) => {
          this.log.debug({ attempt, err: (e as Error).message }, 'xenstore: reconnect failed');
          this.scheduleReconnect(attempt + 1);
        },
      );
    }, delay);
  }
}
