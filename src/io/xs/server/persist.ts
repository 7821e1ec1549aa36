// Optional persistence of the tree in a LevelDB folder (classic-level): one record per node,
// written in batches. Transactions, watches and connections are not kept: clients reconnect and
// register again.
import { ClassicLevel } from 'classic-level';
import type { XsLogger } from '../logger';
import { formatPerm, parsePerm, type XsPerm } from '../perms';
import { makeNode, type XsNode } from './node';

const NODE_PREFIX = 'node:';

interface NodeRecord {
  v: string; // value, base64
  p: string[]; // permissions
  c: string[]; // child names, in order
  g: number; // generation
}

function encode(n: XsNode): string {
  const r: NodeRecord = { v: n.value.toString('base64'), p: n.perms.map(formatPerm), c: [...n.children], g: n.generation };
  return JSON.stringify(r);
}

function decode(json: string): XsNode | undefined {
  let r: NodeRecord;
  try {
    r = JSON.parse(json) as NodeRecord;
  } catch {
    return undefined;
  }
  if (typeof r !== 'object' || r === null || typeof r.v !== 'string' || !Array.isArray(r.p) || !Array.isArray(r.c)) return undefined;
  if (!Number.isSafeInteger(r.g) || r.g < 0) return undefined;
  const perms: XsPerm[] = [];
  for (const s of r.p) {
    const p = typeof s === 'string' ? parsePerm(s) : undefined;
    if (!p) return undefined;
    perms.push(p);
  }
  if (perms.length === 0 || !r.c.every((c) => typeof c === 'string' && c.length > 0 && !c.includes('/'))) return undefined;
  const n = makeNode(Buffer.from(r.v, 'base64'), perms, r.c);
  n.generation = r.g;
  return n;
}

export class TreePersistence {
  private staged = new Map<string, XsNode | undefined>();

  private constructor(
    private readonly db: ClassicLevel<string, string>,
    private readonly log: XsLogger,
  ) {}

  static async open(dir: string, log: XsLogger): Promise<TreePersistence> {
    const db = new ClassicLevel<string, string>(dir, { keyEncoding: 'utf8', valueEncoding: 'utf8' });
    await db.open();
    return new TreePersistence(db, log);
  }

  /** Every stored node; records that do not decode are logged and left out. */
  async load(): Promise<Map<string, XsNode>> {
    const nodes = new Map<string, XsNode>();
    for await (const [key, value] of this.db.iterator({ gte: NODE_PREFIX, lt: 'node;' })) {
      const path = key.slice(NODE_PREFIX.length);
      const n = decode(value);
      if (n && path.startsWith('/')) nodes.set(path, n);
      else this.log.error({ key }, 'xenstored: unreadable node record in the persistence folder, skipped');
    }
    return nodes;
  }

  get dirty(): boolean {
    return this.staged.size > 0;
  }

  /** Records a change to write with the next flush (the latest change of a path wins). */
  stage(path: string, node: XsNode | undefined): void {
    this.staged.set(path, node);
  }

  /** Writes everything staged so far in one batch. On failure the changes stay staged. */
  async flush(): Promise<void> {
    if (this.staged.size === 0) return;
    const batch = this.staged;
    this.staged = new Map();
    const ops = [...batch].map(([path, n]) =>
      n ? { type: 'put' as const, key: NODE_PREFIX + path, value: encode(n) } : { type: 'del' as const, key: NODE_PREFIX + path },
    );
    try {
      await this.db.batch(ops);
    } catch (e) {
      for (const [p, n] of batch) if (!this.staged.has(p)) this.staged.set(p, n);
      throw e;
    }
  }

  /** Replaces the stored tree with `nodes` (after loading repaired a damaged folder). */
  async rewrite(nodes: Iterable<[string, XsNode]>): Promise<void> {
    await this.db.clear();
    const ops = [...nodes].map(([path, n]) => ({ type: 'put' as const, key: NODE_PREFIX + path, value: encode(n) }));
    await this.db.batch(ops);
  }

  async close(): Promise<void> {
    await this.db.close();
  }
}
