// The node operations (READ, WRITE, MKDIR, RM, DIRECTORY, DIRECTORY_PART, GET/SET_PERMS) as
// xenstore.txt and xenstored define them, over a TreeView (the store or a transaction). Each
// checks everything before it changes anything, so a failed operation leaves the view untouched.
import { XsError } from '../errors';
import { baseName, isValidNodePath, joinPath, parentOf } from '../paths';
import { PERM_OWNER, PERM_READ, PERM_WRITE, type XsPerm } from '../perms';
import { XENSTORE_PAYLOAD_MAX } from '../wire';
import { isPrivileged, permFor } from './access';
import { EMPTY, makeNode, nodeBytes, withChildAdded, withChildRemoved, withPerms, withValue, type XsNode } from './node';
import { overQuota, type XsQuotas } from './quotas';
import type { TreeView } from './view';

export type FireWatches = (path: string, exact: boolean, node: XsNode | undefined, oldPerms?: readonly XsPerm[]) => void;

export interface OpContext {
  domid: number;
  /** Domain whose rights this one also has (SET_TARGET). */
  target: number | undefined;
  view: TreeView;
  quotas: XsQuotas;
  fire: FireWatches;
}

/**
 * Finds a node the caller may access with `need`. A missing node is ENOENT only if its nearest
 * existing ancestor grants `need`, else EACCES, so a domain learns nothing about nodes it cannot
 * see (xenstored's errno_from_parents).
 */
export function lookup(ctx: OpContext, path: string, need: number): XsNode {
  if (!isValidNodePath(path)) throw new XsError('EINVAL', 'invalid path');
  const node = ctx.view.get(path);
  if (node) {
    if ((permFor(ctx.domid, ctx.target, node.perms) & need) !== need) throw new XsError('EACCES');
    return node;
  }
  let p = path;
  while (p !== '/') {
    p = parentOf(p);
    const a = ctx.view.get(p);
    if (a) throw new XsError(permFor(ctx.domid, ctx.target, a.perms) & need ? 'ENOENT' : 'EACCES');
  }
  throw new XsError('ENOENT');
}

function isEnoent(e: unknown): boolean {
  return e instanceof XsError && e.errno === 'ENOENT';
}

function checkSize(ctx: OpContext, node: XsNode): void {
  if (!isPrivileged(ctx.domid) && overQuota(nodeBytes(node), ctx.quotas.nodeSize - 1)) {
    throw new XsError('ENOSPC', 'node too large');
  }
}

export function read(ctx: OpContext, path: string): Buffer {
  return lookup(ctx, path, PERM_READ).value;
}

/** Creates path and its missing ancestors (empty values). Ancestors inherit their parent's perms. */
function create(ctx: OpContext, path: string, value: Buffer): XsNode {
  const missing: string[] = [path];
  let parentPath = parentOf(path);
  let parent = ctx.view.get(parentPath);
  while (!parent) {
    missing.push(parentPath);
    parentPath = parentOf(parentPath);
    parent = ctx.view.get(parentPath);
  }
  const unpriv = !isPrivileged(ctx.domid);
  if (unpriv && overQuota(ctx.view.nodesOwnedBy(ctx.domid) + missing.length, ctx.quotas.nodes)) {
    throw new XsError('ENOSPC', 'node quota reached');
  }
  // Build every new node top down (each parent with its new child), check them, then store.
  const planned: [string, XsNode][] = [];
  let up = parent;
  let upPath = parentPath;
  for (let i = missing.length - 1; i >= 0; i--) {
    const p = missing[i];
    const grown = withChildAdded(up, baseName(p));
    checkSize(ctx, grown);
    planned.push([upPath, grown]);
    // Unprivileged domains own what they create (xenstored's construct_node).
    const perms: readonly XsPerm[] = unpriv ? [{ domid: ctx.domid, access: up.perms[0].access }, ...up.perms.slice(1)] : up.perms;
    const node = makeNode(i === 0 ? value : EMPTY, perms, []);
    checkSize(ctx, node);
    up = node;
    upPath = p;
  }
  planned.push([upPath, up]);
  for (const [p, n] of planned) ctx.view.set(p, n);
  return up;
}

export function write(ctx: OpContext, path: string, value: Buffer): void {
  let node: XsNode;
  try {
    node = lookup(ctx, path, PERM_WRITE);
  } catch (e) {
    if (!isEnoent(e)) throw e;
    ctx.fire(path, false, create(ctx, path, value));
    return;
  }
  const next = withValue(node, value);
  checkSize(ctx, next);
  ctx.view.set(path, next);
  ctx.fire(path, false, next);
}

export function mkdir(ctx: OpContext, path: string): void {
  try {
    lookup(ctx, path, PERM_WRITE);
  } catch (e) {
    if (!isEnoent(e)) throw e;
    ctx.fire(path, false, create(ctx, path, EMPTY));
  }
}

/** Removes path and everything below it; a missing path is fine if its parent exists. */
export function rm(ctx: OpContext, path: string): void {
  let node: XsNode;
  try {
    node = lookup(ctx, path, PERM_WRITE);
  } catch (e) {
    if (isEnoent(e) && path !== '/' && ctx.view.get(parentOf(path))) return;
    throw e;
  }
  if (path === '/') throw new XsError('EINVAL', 'cannot remove /');
  const parentPath = parentOf(path);
  const parent = ctx.view.get(parentPath)!;
  removeSubtree(ctx, path, node, path);
  ctx.view.set(parentPath, withChildRemoved(parent, baseName(path)));
}

function removeSubtree(ctx: OpContext, path: string, node: XsNode, root: string): void {
  for (const c of node.children) {
    const cp = joinPath(path, c);
    const child = ctx.view.get(cp);
    if (child) removeSubtree(ctx, cp, child, root);
  }
  ctx.view.remove(path);
  // Below the removed root only watches on exactly that node fire (xenstored's delnode_sub).
  ctx.fire(path, path !== root, node);
}

function childList(children: readonly string[]): Buffer {
  let len = 0;
  for (const c of children) len += Buffer.byteLength(c, 'latin1') + 1;
  const buf = Buffer.allocUnsafe(len);
  let off = 0;
  for (const c of children) {
    off += buf.write(c, off, 'latin1');
    buf[off++] = 0;
  }
  return buf;
}

/** DIRECTORY: child names, each NUL-terminated; E2BIG when that exceeds the payload limit. */
export function directory(ctx: OpContext, path: string): Buffer {
  const list = childList(lookup(ctx, path, PERM_READ).children);
  if (list.length > XENSTORE_PAYLOAD_MAX) throw new XsError('E2BIG');
  return list;
}

/**
 * DIRECTORY_PART: `<generation>\0` then as many whole names (from byte `offset` of the full list)
 * as fit; the list's end is marked by an extra NUL. An offset past the end yields just the
 * generation and the end mark.
 */
export function directoryPart(ctx: OpContext, path: string, offset: number): Buffer {
  const node = lookup(ctx, path, PERM_READ);
  const list = childList(node.children);
  const gen = Buffer.from(`${node.generation}\0`, 'latin1');
  if (offset >= list.length) return Buffer.concat([gen, Buffer.from([0])]);
  const max = XENSTORE_PAYLOAD_MAX - gen.length - 1;
  let end = offset;
  for (;;) {
    const nul = list.indexOf(0, end);
    if (nul + 1 - offset > max) break;
    end = nul + 1;
    if (end === list.length) break;
  }
  // A name cut at a non-boundary offset is the client's problem; we never split one.
  if (end === offset) throw new XsError('E2BIG');
  const parts = [gen, list.subarray(offset, end)];
  if (end === list.length) parts.push(Buffer.from([0]));
  return Buffer.concat(parts);
}

export function getPerms(ctx: OpContext, path: string): readonly XsPerm[] {
  return lookup(ctx, path, PERM_READ).perms;
}

export function setPerms(ctx: OpContext, path: string, perms: readonly XsPerm[]): void {
  const node = lookup(ctx, path, PERM_WRITE | PERM_OWNER);
  if (!isPrivileged(ctx.domid) && perms[0].domid !== node.perms[0].domid) {
    throw new XsError('EPERM', 'only dom0 may change the owner');
  }
  const next = withPerms(node, perms);
  checkSize(ctx, next);
  ctx.view.set(path, next);
  ctx.fire(path, false, next, node.perms);
}
