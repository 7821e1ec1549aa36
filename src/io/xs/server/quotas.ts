// Limits that keep one domain from exhausting the store (xenstored's defaults). They apply to
// unprivileged domains only; 0 disables a limit. The 4096-byte payload limit is the protocol's
// and always applies.

export interface XsQuotas {
  /** Nodes a domain may own. */
  nodes: number;
  /** Watches a domain may hold (over all its connections). */
  watches: number;
  /** Transactions a domain may have open (over all its connections). */
  transactions: number;
  /** Bytes of one node as xenstored counts them: header, permissions, value and child names. */
  nodeSize: number;
  /** Permission entries of one node. */
  permissions: number;
  /** Replies and events queued for a connection that does not read before it is dropped. */
  outputBytes: number;
}

export const DEFAULT_QUOTAS: XsQuotas = {
  nodes: 1000,
  watches: 128,
  transactions: 10,
  nodeSize: 2048,
  permissions: 5,
  outputBytes: 4 * 1024 * 1024,
};

/** Names used by GET_QUOTA/SET_QUOTA (xenstore.txt) for the limits above. */
export const QUOTA_WIRE_NAMES: Readonly<Record<string, keyof XsQuotas>> = {
  nodes: 'nodes',
  watches: 'watches',
  transactions: 'transactions',
  'node-size': 'nodeSize',
  permissions: 'permissions',
};

/** Whether `used` more would exceed `limit` (0 means no limit). */
export function overQuota(used: number, limit: number): boolean {
  return limit > 0 && used > limit;
}
