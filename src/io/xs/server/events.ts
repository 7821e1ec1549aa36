// Turns a change of the committed tree into WATCH_EVENTs for the watchers allowed to see it
// (xenstored's fire_watches/watch_permitted): a watcher sees an event if it can read the node
// (before or after a permission change) or the node's parent; '@' events go to domains the
// special path's permissions let read.
import { isKnownSpecialPath, parentOf, relativeTo } from '../paths';
import { PERM_READ, type XsPerm } from '../perms';
import { permFor } from './access';
import type { Domains } from './domains';
import type { XsNode } from './node';
import type { Store } from './store';
import type { WatchOwner, WatchTable } from './watches';

export class EventFirer {
  constructor(
    private readonly store: Store,
    private readonly watches: WatchTable,
    private readonly domains: Domains,
  ) {}

  fire(path: string, exact: boolean, node: XsNode | undefined, oldPerms?: readonly XsPerm[]): void {
    this.watches.forEachMatch(path, exact, (w) => {
      if (!this.permitted(w.owner, path, node, oldPerms)) return;
      w.owner.sendEvent(w.relativeBase === undefined ? path : relativeTo(path, w.relativeBase), w.token);
    });
  }

  private permitted(who: WatchOwner, path: string, node: XsNode | undefined, oldPerms?: readonly XsPerm[]): boolean {
    const target = this.domains.targetOf(who.domid);
    const canRead = (perms: readonly XsPerm[]) => (permFor(who.domid, target, perms) & PERM_READ) !== 0;
    if (path.startsWith('@')) return isKnownSpecialPath(path) && canRead(this.domains.specialPerms(path));
    if (oldPerms && canRead(oldPerms)) return true;
    const n = node ?? this.store.get(path);
    if (!n) return false;
    if (canRead(n.perms)) return true;
    if (path === '/') return false;
    const parent = this.store.get(parentOf(path));
    return parent !== undefined && canRead(parent.perms);
  }
}
