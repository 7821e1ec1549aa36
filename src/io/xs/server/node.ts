// One node of the tree. Stored nodes are never mutated: a change stores a new object, so a
// transaction can keep a reference as its view of the node.
import type { XsPerm } from '../perms';

export interface XsNode {
  readonly value: Buffer;
  /** First entry: owner and default access. Never empty. */
  readonly perms: readonly XsPerm[];
  /** Child names in creation order (DIRECTORY returns them in this order). */
  readonly children: readonly string[];
  /** Changes whenever the node (value, permissions or child list) changes. */
  generation: number;
}

export const EMPTY = Buffer.alloc(0);

export function makeNode(value: Buffer, perms: readonly XsPerm[], children: readonly string[]): XsNode {
  return { value, perms, children, generation: 0 };
}

export function withValue(n: XsNode, value: Buffer): XsNode {
  return makeNode(value, n.perms, n.children);
}

export function withPerms(n: XsNode, perms: readonly XsPerm[]): XsNode {
  return makeNode(n.value, perms, n.children);
}

export function withChildAdded(n: XsNode, name: string): XsNode {
  return makeNode(n.value, n.perms, [...n.children, name]);
}

export function withChildRemoved(n: XsNode, name: string): XsNode {
  return makeNode(
    n.value,
    n.perms,
    n.children.filter((c) => c !== name),
  );
}

export function owner(n: XsNode): number {
  return n.perms[0].domid;
}

/** Bytes of the child list on the wire: every name NUL-terminated. */
export function childListBytes(children: readonly string[]): number {
  let n = 0;
  for (const c of children) n += Buffer.byteLength(c) + 1;
  return n;
}

/** Size as xenstored's node-size quota counts it (record header, 8 bytes a permission, data). */
export function nodeBytes(n: XsNode): number {
  return 20 + 8 * n.perms.length + n.value.length + childListBytes(n.children);
}
