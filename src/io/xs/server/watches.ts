// Registered watches, indexed by watched path so an event finds its watchers by walking up its
// own path (xenstore.txt: an event on P matches watches on P and on every ancestor of P; '/'
// matches everything, including the special '@' events, as in xenstored).
import { parentOf } from '../paths';

export interface WatchOwner {
  readonly id: number;
  readonly domid: number;
  sendEvent(path: string, token: string): void;
}

export interface ServerWatch {
  readonly owner: WatchOwner;
  /** Canonical (absolute or '@') path. */
  readonly path: string;
  readonly token: string;
  /** Set for watches registered with a relative path: events are reported relative to it. */
  readonly relativeBase: string | undefined;
}

export class WatchTable {
  private readonly byPath = new Map<string, ServerWatch[]>();
  private count = 0;

  get size(): number {
    return this.count;
  }

  add(w: ServerWatch): void {
    const list = this.byPath.get(w.path);
    if (list) list.push(w);
    else this.byPath.set(w.path, [w]);
    this.count++;
  }

  remove(w: ServerWatch): void {
    const list = this.byPath.get(w.path);
    if (!list) return;
    const i = list.indexOf(w);
    if (i < 0) return;
    list.splice(i, 1);
    if (list.length === 0) this.byPath.delete(w.path);
    this.count--;
  }

  /**
   * Calls visit for each watch an event on `path` matches: only watches on exactly `path` when
   * `exact`, else those on path and every ancestor.
   */
  forEachMatch(path: string, exact: boolean, visit: (w: ServerWatch) => void): void {
    let p = path;
    for (;;) {
      const list = this.byPath.get(p);
      if (list) {
        // Copy: a visitor may drop a connection (output quota) and with it these watches.
        for (const w of list.length === 1 ? list : list.slice()) visit(w);
      }
      if (exact || p === '/') return;
      p = parentOf(p);
    }
  }
}
