// Client-side watches as Observables. Subscribers of one path share one XS_WATCH (one token);
// the last unsubscribe sends XS_UNWATCH. A subscriber joining a registered watch gets one
// immediate event, as if it had registered itself (xenstored fires every new watch once).
// Events are hints: readers re-read the state.
import { Observable, Subject } from 'rxjs';
import { XsError, isXsError } from './errors';
import type { XsLogger } from './logger';

export interface XsWatchEvent {
  /** The node that fired (relative if the watched path was relative). */
  path: string;
  /** The path given to watch(). */
  watched: string;
}

export interface WatchIo {
  register(path: string, token: string): Promise<void>;
  unregister(path: string, token: string): Promise<void>;
  readonly log: XsLogger;
}

class WatchEntry {
  readonly subject = new Subject<XsWatchEvent>();
  refs = 0;
  registered = false;
  /** Settles when the XS_WATCH in flight is answered. */
  registering: Promise<void> | undefined;

  constructor(
    readonly path: string,
    readonly token: string,
  ) {}
}

/** Errors meaning "no connection right now": the watch is registered again on reconnect. */
function isConnectionLoss(e: unknown): boolean {
  return isXsError(e, 'ECONNRESET') || isXsError(e, 'ENOTCONN');
}

export class WatchManager {
  private readonly byPath = new Map<string, WatchEntry>();
  private readonly byToken = new Map<string, WatchEntry>();
  private nextToken = 1;

  constructor(private readonly io: WatchIo) {}

  get paths(): string[] {
    return [...this.byPath.keys()];
  }

  watch(path: string): Observable<XsWatchEvent> {
    return new Observable<XsWatchEvent>((subscriber) => {
      let entry = this.byPath.get(path);
      const created = !entry;
      if (!entry) {
        entry = new WatchEntry(path, `xenblkd/${this.nextToken++}`);
        this.byPath.set(path, entry);
        this.byToken.set(entry.token, entry);
      }
      const e = entry;
      e.refs++;
      const inner = e.subject.subscribe(subscriber);
      if (created) this.register(e);
      else if (e.registered) subscriber.next({ path, watched: path });
      return () => {
        inner.unsubscribe();
        if (--e.refs > 0) return;
        this.drop(e);
        const unwatch = () => {
          if (!e.registered) return;
          e.registered = false;
          this.io.unregister(e.path, e.token).catch((err: unknown) => {
            if (!isConnectionLoss(err)) this.io.log.warn({ path: e.path, err: (err as Error).message }, 'xenstore: unwatch failed');
          });
        };
        if (e.registering) e.registering.then(unwatch, unwatch);
        else unwatch();
      };
    });
  }

  /** Routes a WATCH_EVENT; events of unknown tokens (already unwatched) are dropped. */
  dispatch(path: string, token: string): void {
    const e = this.byToken.get(token);
    if (e) e.subject.next({ path, watched: e.path });
  }

  /** After a reconnect: registers every watch again (each then fires once, a resync hint). */
  async registerAll(): Promise<void> {
    const todo: WatchEntry[] = [];
    for (const e of this.byPath.values()) {
      e.registered = false;
      // One still in flight was queued for the new connection already.
      if (!e.registering) todo.push(e);
    }
    await Promise.all(todo.map((e) => this.register(e)));
  }

  /** Ends every subscription (the client is closing). */
  completeAll(): void {
    for (const e of [...this.byPath.values()]) {
      this.drop(e);
      e.subject.complete();
    }
  }

  /** Fails every subscription (the connection is gone for good). */
  failAll(err: XsError): void {
    for (const e of [...this.byPath.values()]) {
      this.drop(e);
      e.subject.error(err);
    }
  }

  private register(e: WatchEntry): Promise<void> {
    const p = this.io.register(e.path, e.token).then(
      () => {
        if (e.registering === p) e.registering = undefined;
        e.registered = true;
      },
      (err: unknown) => {
        if (e.registering === p) e.registering = undefined;
        if (isConnectionLoss(err)) return;
        // Already registered on this connection: that is what we wanted.
        if (isXsError(err, 'EEXIST')) {
          e.registered = true;
          return;
        }
        this.drop(e);
        e.subject.error(err instanceof XsError ? err : new XsError('EPROTO', String(err)));
      },
    );
    e.registering = p;
    return p;
  }

  private drop(e: WatchEntry): void {
    if (this.byPath.get(e.path) === e) this.byPath.delete(e.path);
    if (this.byToken.get(e.token) === e) this.byToken.delete(e.token);
  }
}
