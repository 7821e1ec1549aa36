// Executes one request frame of one connection and sends its reply (same type, req_id and tx_id;
// ERROR with the errno name on failure). Order of checks as xenstored: message type, privilege,
// transaction id, payload.
import { XSD_ERRNOS, XsError } from '../errors';
import type { XsLogger } from '../logger';
import { canonicalize, domainPath, isKnownSpecialPath, isValidWatchPath, relativeTo } from '../paths';
import { PERM_OWNER, PERM_READ, PERM_WRITE, formatPerm, type XsPerm } from '../perms';
import { XENSTORE_PAYLOAD_MAX, XsType, type XsFrame } from '../wire';
import { DOMID_FIRST_RESERVED, DOMID_SELF, isPrivileged, permFor } from './access';
import type { ServerConnection } from './connection';
import type { Domains } from './domains';
import type { EventFirer } from './events';
import { QUOTA_WIRE_NAMES, overQuota } from './quotas';
import { NO_TX_TYPES, PRIVILEGED_TYPES, parseRequest, type XsRequest } from './requests';
import type { Store } from './store';
import { ServerTransaction } from './transaction';
import * as tree from './tree-ops';
import type { OpContext } from './tree-ops';
import type { WatchTable } from './watches';

export interface DispatchHost {
  readonly store: Store;
  readonly watches: WatchTable;
  readonly domains: Domains;
  readonly events: EventFirer;
  readonly log: XsLogger;
  connectionsOf(domid: number): Iterable<ServerConnection>;
  introduceDomain(domid: number): void;
  releaseDomain(domid: number): void;
  /** Drops a connection's watches and transactions (RESET_WATCHES, connection close). */
  resetConnection(conn: ServerConnection): void;
  /** Counters for CONTROL stats (sizes, bad frames). */
  stats(): object;
}

const OK = Buffer.from('OK\0', 'latin1');
const REQUEST_TYPES: ReadonlySet<number> = new Set([
  XsType.CONTROL,
  XsType.DIRECTORY,
  XsType.READ,
  XsType.GET_PERMS,
  XsType.WATCH,
  XsType.UNWATCH,
  XsType.TRANSACTION_START,
  XsType.TRANSACTION_END,
  XsType.INTRODUCE,
  XsType.RELEASE,
  XsType.GET_DOMAIN_PATH,
  XsType.WRITE,
  XsType.MKDIR,
  XsType.RM,
  XsType.SET_PERMS,
  XsType.IS_DOMAIN_INTRODUCED,
  XsType.RESUME,
  XsType.SET_TARGET,
  XsType.RESET_WATCHES,
  XsType.DIRECTORY_PART,
  XsType.GET_QUOTA,
  XsType.SET_QUOTA,
]);

function text(s: string): Buffer {
  return Buffer.from(`${s}\0`, 'latin1');
}

const ERROR_PAYLOADS = new Map<string, Buffer>(XSD_ERRNOS.map((e) => [e, text(e)]));

function permsPayload(perms: readonly XsPerm[]): Buffer {
  return Buffer.from(perms.map((p) => `${formatPerm(p)}\0`).join(''), 'latin1');
}

export class Dispatcher {
  constructor(private readonly host: DispatchHost) {}

  handleFrame(conn: ServerConnection, frame: XsFrame): void {
    const { type, reqId, txId } = frame;
    let reply: Buffer;
    try {
      if (!REQUEST_TYPES.has(type)) throw new XsError('ENOSYS', `unsupported message type ${type}`);
      if (PRIVILEGED_TYPES.has(type) && !isPrivileged(conn.domid)) throw new XsError('EACCES');
      let tx: ServerTransaction | undefined;
      if (txId !== 0 && !NO_TX_TYPES.has(type)) {
        tx = conn.transactions.get(txId);
        if (!tx) throw new XsError('ENOENT', `no transaction ${txId}`);
      }
      const req = parseRequest(type, frame.payload);
      reply = this.execute(conn, req, tx, txId);
      if (reply.length > XENSTORE_PAYLOAD_MAX) throw new XsError('E2BIG');
    } catch (e) {
      if (!(e instanceof XsError)) {
        this.host.log.error({ conn: conn.label, type, err: (e as Error)?.message }, 'xenstored: internal error handling request');
      }
      // Only wire errno names go out; anything else (a bug) is EIO.
      const payload = (e instanceof XsError && ERROR_PAYLOADS.get(e.errno)) || ERROR_PAYLOADS.get('EIO')!;
      conn.send(XsType.ERROR, reqId, txId, payload);
      return;
    }
    conn.send(type, reqId, txId, reply);
    // The first firing of a new watch follows its acknowledgement.
    if (type === XsType.WATCH) this.fireNewWatch(conn);
  }

  /** The operation context of a connection (or of one of its transactions), kept between requests. */
  private ctx(conn: ServerConnection, tx: ServerTransaction | undefined): OpContext {
    const { store, domains, events } = this.host;
    const holder: { opContext?: OpContext } = tx ?? conn;
    let c = holder.opContext;
    if (!c) {
      c = {
        domid: conn.domid,
        target: undefined,
        view: tx ?? store,
        quotas: domains.quotas,
        fire: tx ? (p, exact, node, old) => tx.queueEvent(p, exact, node, old) : (p, exact, node, old) => events.fire(p, exact, node, old),
      };
      holder.opContext = c;
    }
    // Both can change between requests (SET_TARGET, SET_QUOTA).
    c.target = domains.targetOf(conn.domid);
    c.quotas = domains.quotasFor(conn.domid);
    return c;
  }

  private execute(conn: ServerConnection, req: XsRequest, tx: ServerTransaction | undefined, txId: number): Buffer {
    const d = conn.domid;
    switch (req.op) {
      case 'read':
        return tree.read(this.ctx(conn, tx), canonicalize(req.path, d));
      case 'write':
        tree.write(this.ctx(conn, tx), canonicalize(req.path, d), req.value);
        return OK;
      case 'mkdir':
        tree.mkdir(this.ctx(conn, tx), canonicalize(req.path, d));
        return OK;
      case 'rm':
        tree.rm(this.ctx(conn, tx), canonicalize(req.path, d));
        return OK;
      case 'directory':
        return tree.directory(this.ctx(conn, tx), canonicalize(req.path, d));
      case 'directoryPart':
        return tree.directoryPart(this.ctx(conn, tx), canonicalize(req.path, d), req.offset);
      case 'getPerms':
        if (req.path.startsWith('@')) return permsPayload(this.specialPerms(conn, req.path, PERM_READ));
        return permsPayload(tree.getPerms(this.ctx(conn, tx), canonicalize(req.path, d)));
      case 'setPerms':
        return this.setPerms(conn, tx, req.path, req.perms);
      case 'watch':
        return this.watch(conn, req.path, req.token);
      case 'unwatch':
        return this.unwatch(conn, req.path, req.token);
      case 'transactionStart':
        return this.transactionStart(conn, txId);
      case 'transactionEnd':
        return this.transactionEnd(conn, tx, req.commit);
      case 'introduce':
        if (req.domid === 0 || req.domid >= DOMID_FIRST_RESERVED) throw new XsError('EINVAL', 'not a guest domain');
        if (req.port === 0) throw new XsError('EINVAL', 'bad event channel');
        this.host.introduceDomain(req.domid);
        return OK;
      case 'release':
        if (req.domid === 0 || req.domid >= DOMID_FIRST_RESERVED) throw new XsError('EINVAL', 'not a guest domain');
        if (!this.host.domains.isIntroduced(req.domid)) throw new XsError('ENOENT', 'domain not introduced');
        this.host.releaseDomain(req.domid);
        return OK;
      case 'getDomainPath':
        return text(domainPath(req.domid));
      case 'isDomainIntroduced':
        return text(req.domid === DOMID_SELF || this.host.domains.isIntroduced(req.domid) ? 'T' : 'F');
      case 'resume':
        if (req.domid === 0 || !this.host.domains.isIntroduced(req.domid)) throw new XsError('ENOENT', 'domain not introduced');
        return OK;
      case 'setTarget':
        if (!this.host.domains.isIntroduced(req.domid) || !this.host.domains.isIntroduced(req.target)) {
          throw new XsError('ENOENT', 'domain not introduced');
        }
        this.host.domains.setTarget(req.domid, req.target);
        return OK;
      case 'resetWatches':
        this.host.resetConnection(conn);
        return OK;
      case 'control':
        return this.control(req.command, req.args);
      case 'getQuota':
        return this.getQuota(req.domid, req.name);
      case 'setQuota': {
        const key = QUOTA_WIRE_NAMES[req.name];
        if (!key) throw new XsError('EINVAL', `unknown quota ${req.name}`);
        this.host.domains.setQuota(req.domid, key, req.value);
        return OK;
      }
    }
  }

  private specialPerms(conn: ServerConnection, path: string, need: number): readonly XsPerm[] {
    if (!isKnownSpecialPath(path)) throw new XsError('EINVAL', 'unknown special path');
    const perms = this.host.domains.specialPerms(path);
    if ((permFor(conn.domid, this.host.domains.targetOf(conn.domid), perms) & need) !== need) throw new XsError('EACCES');
    return perms;
  }

  private setPerms(conn: ServerConnection, tx: ServerTransaction | undefined, path: string, perms: XsPerm[]): Buffer {
    const quotas = this.host.domains.quotasFor(conn.domid);
    if (!isPrivileged(conn.domid) && overQuota(perms.length, quotas.permissions)) {
      throw new XsError('ENOSPC', 'too many permission entries');
    }
    if (path.startsWith('@')) {
      this.specialPerms(conn, path, PERM_WRITE | PERM_OWNER);
      this.host.domains.setSpecialPerms(path as '@introduceDomain', perms);
      return OK;
    }
    tree.setPerms(this.ctx(conn, tx), canonicalize(path, conn.domid), perms);
    return OK;
  }

  private watch(conn: ServerConnection, path: string, token: string): Buffer {
    const canonical = canonicalize(path, conn.domid);
    if (!isValidWatchPath(canonical)) throw new XsError('EINVAL', 'invalid watch path');
    if (conn.watches.some((w) => w.path === canonical && w.token === token)) throw new XsError('EEXIST');
    if (!isPrivileged(conn.domid)) {
      let held = 0;
      for (const c of this.host.connectionsOf(conn.domid)) held += c.watches.length;
      if (overQuota(held + 1, this.host.domains.quotasFor(conn.domid).watches)) throw new XsError('E2BIG', 'watch quota reached');
    }
    const relative = !path.startsWith('/') && !path.startsWith('@');
    const w = { owner: conn, path: canonical, token, relativeBase: relative ? domainPath(conn.domid) : undefined };
    conn.watches.push(w);
    this.host.watches.add(w);
    return OK;
  }

  private fireNewWatch(conn: ServerConnection): void {
    const w = conn.watches[conn.watches.length - 1];
    if (!w) return;
    conn.sendEvent(w.relativeBase === undefined ? w.path : relativeTo(w.path, w.relativeBase), w.token);
  }

  private unwatch(conn: ServerConnection, path: string, token: string): Buffer {
    const canonical = canonicalize(path, conn.domid);
    const i = conn.watches.findIndex((w) => w.path === canonical && w.token === token);
    if (i < 0) throw new XsError('ENOENT', 'no such watch');
    this.host.watches.remove(conn.watches[i]);
    conn.watches.splice(i, 1);
    return OK;
  }

  private transactionStart(conn: ServerConnection, txId: number): Buffer {
    if (txId !== 0) throw new XsError('EBUSY', 'nested transactions are not supported');
    if (!isPrivileged(conn.domid)) {
      let open = 0;
      for (const c of this.host.connectionsOf(conn.domid)) open += c.transactions.size;
      if (overQuota(open + 1, this.host.domains.quotasFor(conn.domid).transactions)) {
        throw new XsError('ENOSPC', 'transaction quota reached');
      }
    }
    const id = conn.allocTxId();
    conn.transactions.set(id, new ServerTransaction(id, this.host.store));
    return text(String(id));
  }

  private transactionEnd(conn: ServerConnection, tx: ServerTransaction | undefined, commit: boolean): Buffer {
    if (!tx) throw new XsError('ENOENT', 'not in a transaction');
    conn.transactions.delete(tx.id);
    return commit ? this.commit(conn, tx) : OK;
  }

  private commit(conn: ServerConnection, tx: ServerTransaction): Buffer {
    tx.checkConflicts();
    const d = conn.domid;
    const { store, events } = this.host;
    if (!isPrivileged(d) && tx.nodesOwnedBy(d) > store.nodesOwnedBy(d)) {
      if (overQuota(tx.nodesOwnedBy(d), this.host.domains.quotasFor(d).nodes)) throw new XsError('ENOSPC', 'node quota reached');
    }
    tx.apply();
    for (const [path, q] of tx.events) events.fire(path, q.exact, q.node, q.oldPerms);
    return OK;
  }

  private control(command: string, args: string[]): Buffer {
    switch (command) {
      case 'help':
        return text('check\nhelp\nprint\nquota\nstats\n');
      case 'check': {
        const problems = this.host.store.check();
        for (const p of problems) this.host.log.error({ problem: p }, 'xenstored: store check failed');
        return text(problems.length === 0 ? 'OK' : problems.join('\n').slice(0, 4000));
      }
      case 'print':
        this.host.log.info({ text: args.join(' ') }, 'xenstored: print');
        return OK;
      case 'stats':
        return text(Object.entries(this.host.stats()).map(([name, n]) => `${name}: ${n}`).join('\n') + '\n');
      case 'quota': {
        const q = this.host.domains.quotas;
        return text(Object.entries(QUOTA_WIRE_NAMES).map(([name, key]) => `${name}: ${q[key]}`).join('\n') + '\n');
      }
      default:
        throw new XsError('EINVAL', `unknown control command ${command}`);
    }
  }

  private getQuota(domid: number | undefined, name: string | undefined): Buffer {
    if (name === undefined) return text(Object.keys(QUOTA_WIRE_NAMES).join(' '));
    const key = QUOTA_WIRE_NAMES[name];
    if (!key) throw new XsError('EINVAL', `unknown quota ${name}`);
    const q = domid === undefined ? this.host.domains.quotas : this.host.domains.quotasFor(domid);
    return text(String(q[key]));
  }
}
