// The committed tree: path -> node, a global generation counter, and how many nodes each domain
// owns (for the node quota). Every change goes through set/remove so the counts, generations and
// the persistence hook stay right.
import { baseName, joinPath, parentOf } from '../paths';
import type { XsPerm } from '../perms';
import { EMPTY, makeNode, owner, type XsNode } from './node';
import type { TreeView } from './view';

/** Generation recorded for a node a transaction found missing. */
export const ABSENT = -1;

export type StoreChange = (path: string, node: XsNode | undefined) => void;

const ROOT_PERMS: readonly XsPerm[] = [{ domid: 0, access: 'n' }];

export class Store implements TreeView {
  private readonly nodes = new Map<string, XsNode>();
  private readonly owned = new Map<number, number>();
  private gen = 0;
  /** Called after every change (persistence). */
  onChange: StoreChange | undefined;

  constructor() {
    this.set('/', makeNode(EMPTY, ROOT_PERMS, []));
  }

  get size(): number {
    return this.nodes.size;
  }

  get(path: string): XsNode | undefined {
    return this.nodes.get(path);
  }

  generationOf(path: string): number {
    return this.nodes.get(path)?.generation ?? ABSENT;
  }

  /** A fresh generation number (also used for nodes written inside transactions). */
  nextGeneration(): number {
    return ++this.gen;
  }

  /** Stores `node` (which must not be stored elsewhere yet) at `path`, stamping a new generation. */
  set(path: string, node: XsNode): void {
    const old = this.nodes.get(path);
    if (old) this.count(owner(old), -1);
    this.count(owner(node), 1);
    node.generation = this.nextGeneration();
    this.nodes.set(path, node);
    this.onChange?.(path, node);
  }

  remove(path: string): void {
    const old = this.nodes.get(path);
    if (!old) return;
    this.count(owner(old), -1);
    this.nodes.delete(path);
    this.onChange?.(path, undefined);
  }

  nodesOwnedBy(domid: number): number {
    return this.owned.get(domid) ?? 0;
  }

  entries(): IterableIterator<[string, XsNode]> {
    return this.nodes.entries();
  }

  /**
   * Replaces the whole tree with loaded nodes (persistence), keeping their generations. Nodes
   * without a parent are dropped and child lists are made to match the nodes present, so a
   * damaged folder still yields a consistent tree. Returns the paths dropped.
   */
  load(loaded: Map<string, XsNode>): string[] {
    const dropped: string[] = [];
    this.nodes.clear();
    this.owned.clear();
    this.gen = 0;
    const root = loaded.get('/') ?? makeNode(EMPTY, ROOT_PERMS, []);
    const ok = new Map<string, XsNode>([['/', root]]);
    // Shortest paths first, so parents are placed before their children.
    const paths = [...loaded.keys()].filter((p) => p !== '/').sort((a, b) => a.length - b.length);
    for (const p of paths) {
      if (ok.has(parentOf(p))) ok.set(p, loaded.get(p)!);
      else dropped.push(p);
    }
    const childrenOf = new Map<string, string[]>();
    for (const q of ok.keys()) {
      if (q === '/') continue;
      const list = childrenOf.get(parentOf(q));
      if (list) list.push(baseName(q));
      else childrenOf.set(parentOf(q), [baseName(q)]);
    }
    for (const [p, n] of ok) {
      const present: string[] = [];
      const listed = new Set<string>();
      for (const c of n.children) {
        if (ok.has(joinPath(p, c)) && !listed.has(c)) {
          present.push(c);
          listed.add(c);
        }
      }
      for (const c of childrenOf.get(p) ?? []) if (!listed.has(c)) present.push(c);
      const same = present.length === n.children.length && present.every((c, i) => c === n.children[i]);
      const fixed = same ? n : makeNode(n.value, n.perms, present);
      fixed.generation = n.generation;
      this.nodes.set(p, fixed);
      this.count(owner(fixed), 1);
      if (n.generation > this.gen) this.gen = n.generation;
    }
    return dropped;
  }

  /** Checks the tree's invariants; returns a description of each violation (empty when sound). */
  check(): string[] {
    const problems: string[] = [];
    const counts = new Map<number, number>();
    for (const [p, n] of this.nodes) {
      counts.set(owner(n), (counts.get(owner(n)) ?? 0) + 1);
      if (n.perms.length === 0) problems.push(`${p}: no permissions`);
      if (p !== '/') {
        const parent = this.nodes.get(parentOf(p));
        if (!parent) problems.push(`${p}: parent missing`);
        else if (!parent.children.includes(baseName(p))) problems.push(`${p}: not listed in its parent`);
      }
      const seen = new Set<string>();
      for (const c of n.children) {
        if (seen.has(c)) problems.push(`${p}: child ${c} listed twice`);
        seen.add(c);
        if (!this.nodes.has(joinPath(p, c))) problems.push(`${p}: child ${c} missing`);
      }
    }
    for (const [d, c] of counts) {
      if (this.nodesOwnedBy(d) !== c) problems.push(`domain ${d}: counted ${this.nodesOwnedBy(d)} nodes, owns ${c}`);
    }
    return problems;
  }

  private count(domid: number, delta: number): void {
    const n = (this.owned.get(domid) ?? 0) + delta;
    if (n === 0) this.owned.delete(domid);
    else this.owned.set(domid, n);
  }
}
