// What tree operations run against: the committed store, or a transaction's view of it.
import type { XsNode } from './node';

export interface TreeView {
  get(path: string): XsNode | undefined;
  /** Stores a new node object at path (stamping its generation). */
  set(path: string, node: XsNode): void;
  remove(path: string): void;
  /** Nodes owned by a domain as this view sees them (node quota). */
  nodesOwnedBy(domid: number): number;
}
