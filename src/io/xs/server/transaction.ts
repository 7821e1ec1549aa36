// A transaction: a private view over the store. The first access to a node copies the reference
// of its committed version (nodes are immutable) and records its generation; later accesses see
// that copy, so the transaction reads a consistent snapshot of what it touched. Commit fails with
// EAGAIN if any node it touched has changed since; otherwise its changes become the store's.
import { XsError } from '../errors';
import type { XsPerm } from '../perms';
import { owner, type XsNode } from './node';
import { ABSENT, type Store } from './store';
import type { OpContext } from './tree-ops';
import type { TreeView } from './view';

export interface QueuedEvent {
  exact: boolean;
  /** The node as it was when the event was queued (permission check for deleted nodes). */
  node: XsNode | undefined;
  oldPerms: readonly XsPerm[] | undefined;
}

export class ServerTransaction implements TreeView {
  private readonly seen = new Map<string, number>();
  private readonly overlay = new Map<string, XsNode | null>();
  private readonly modified = new Set<string>();
  private readonly ownedDelta = new Map<number, number>();
  /** Watch events to fire at commit, one per path; a non-exact event wins over an exact one. */
  readonly events = new Map<string, QueuedEvent>();
  /** Cached by the dispatcher. */
  opContext: OpContext | undefined;

  constructor(
    readonly id: number,
    private readonly store: Store,
  ) {}

  get(path: string): XsNode | undefined {
    const mine = this.overlay.get(path);
    if (mine !== undefined) return mine ?? undefined;
    const n = this.store.get(path);
    this.seen.set(path, n ? n.generation : ABSENT);
    this.overlay.set(path, n ?? null);
    return n;
  }

  set(path: string, node: XsNode): void {
    const old = this.get(path);
    if (old) this.delta(owner(old), -1);
    this.delta(owner(node), 1);
    node.generation = this.store.nextGeneration();
    this.overlay.set(path, node);
    this.modified.add(path);
  }

  remove(path: string): void {
    const old = this.get(path);
    if (!old) return;
    this.delta(owner(old), -1);
    this.overlay.set(path, null);
    this.modified.add(path);
  }

  nodesOwnedBy(domid: number): number {
    return this.store.nodesOwnedBy(domid) + (this.ownedDelta.get(domid) ?? 0);
  }

  queueEvent(path: string, exact: boolean, node: XsNode | undefined, oldPerms?: readonly XsPerm[]): void {
    const q = this.events.get(path);
    if (!q) this.events.set(path, { exact, node, oldPerms });
    else if (!exact) q.exact = false;
  }

  /** Throws EAGAIN when something this transaction touched changed meanwhile. */
  checkConflicts(): void {
    for (const [path, gen] of this.seen) {
      if (this.store.generationOf(path) !== gen) throw new XsError('EAGAIN', `${path} changed`);
    }
  }

  /** Writes this transaction's changes to the store (after checkConflicts). */
  apply(): void {
    for (const path of this.modified) {
      const n = this.overlay.get(path);
      if (n) this.store.set(path, n);
      else this.store.remove(path);
    }
  }

  get modifiedCount(): number {
    return this.modified.size;
  }

  private delta(domid: number, d: number): void {
    this.ownedDelta.set(domid, (this.ownedDelta.get(domid) ?? 0) + d);
  }
}
