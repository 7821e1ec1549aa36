// Parsing of request frames into typed requests (xenstore.txt payload formats). Pure: no state,
// no I/O. Malformed payloads are EINVAL; types a client may not send are ENOSYS. Strings are
// decoded as latin1 so that tokens and values round-trip byte for byte; paths with bytes outside
// ASCII then simply fail validation.
import { XsError } from '../errors';
import { oneString, splitStrings } from '../payload';
import { parsePerm, type XsPerm } from '../perms';
import { XsType } from '../wire';

export type XsRequest =
  | { op: 'read'; path: string }
  | { op: 'write'; path: string; value: Buffer }
  | { op: 'mkdir'; path: string }
  | { op: 'rm'; path: string }
  | { op: 'directory'; path: string }
  | { op: 'directoryPart'; path: string; offset: number }
  | { op: 'getPerms'; path: string }
  | { op: 'setPerms'; path: string; perms: XsPerm[] }
  | { op: 'watch'; path: string; token: string }
  | { op: 'unwatch'; path: string; token: string }
  | { op: 'transactionStart' }
  | { op: 'transactionEnd'; commit: boolean }
  | { op: 'introduce'; domid: number; port: number }
  | { op: 'release'; domid: number }
  | { op: 'getDomainPath'; domid: number }
  | { op: 'isDomainIntroduced'; domid: number }
  | { op: 'resume'; domid: number }
  | { op: 'setTarget'; domid: number; target: number }
  | { op: 'resetWatches' }
  | { op: 'control'; command: string; args: string[] }
  | { op: 'getQuota'; domid: number | undefined; name: string | undefined }
  | { op: 'setQuota'; domid: number | undefined; name: string; value: number };

export type XsOp = XsRequest['op'];

const ENC = 'latin1';

function inval(why: string): XsError {
  return new XsError('EINVAL', why);
}

function one(payload: Buffer): string {
  const s = oneString(payload, ENC);
  if (s === undefined) throw inval('expected exactly one NUL-terminated argument');
  return s;
}

/** Exactly `n` NUL-terminated strings (nothing after the last NUL). */
function exactly(payload: Buffer, n: number): string[] {
  const { strings, rest } = splitStrings(payload, ENC);
  if (strings.length !== n || rest.length !== 0) throw inval(`expected ${n} NUL-terminated arguments`);
  return strings;
}

/** At least `n` NUL-terminated strings; extra reserved arguments are ignored. */
function atLeast(payload: Buffer, n: number): string[] {
  const { strings } = splitStrings(payload, ENC);
  if (strings.length < n) throw inval(`expected at least ${n} NUL-terminated arguments`);
  return strings;
}

function uint(s: string, max: number, what: string): number {
  if (!/^\d{1,10}$/.test(s)) throw inval(`bad ${what} '${s.slice(0, 32)}'`);
  const n = Number(s);
  if (n > max) throw inval(`${what} ${n} out of range`);
  return n;
}

const domid = (s: string) => uint(s, 0xffff, 'domid');

export function parseRequest(type: number, payload: Buffer): XsRequest {
  switch (type) {
    case XsType.READ:
      return { op: 'read', path: one(payload) };
    case XsType.WRITE: {
      const nul = payload.indexOf(0);
      if (nul < 0) throw inval('WRITE needs path\\0value');
      return { op: 'write', path: payload.toString(ENC, 0, nul), value: Buffer.from(payload.subarray(nul + 1)) };
    }
    case XsType.MKDIR:
      return { op: 'mkdir', path: one(payload) };
    case XsType.RM:
      return { op: 'rm', path: one(payload) };
    case XsType.DIRECTORY:
      return { op: 'directory', path: one(payload) };
    case XsType.DIRECTORY_PART: {
      const [path, off] = exactly(payload, 2);
      return { op: 'directoryPart', path, offset: uint(off, 0xffffffff, 'offset') };
    }
    case XsType.GET_PERMS:
      return { op: 'getPerms', path: one(payload) };
    case XsType.SET_PERMS: {
      // path, then one or more perms; a trailing unterminated reserved part is tolerated.
      const { strings } = splitStrings(payload, ENC);
      if (strings.length < 2) throw inval('SET_PERMS needs a path and at least one permission');
      const perms: XsPerm[] = [];
      for (const s of strings.slice(1)) {
        const p = parsePerm(s);
        if (!p) throw inval(`bad permission '${s.slice(0, 32)}'`);
        perms.push(p);
      }
      return { op: 'setPerms', path: strings[0], perms };
    }
    case XsType.WATCH:
    case XsType.UNWATCH: {
      // A third argument (watch depth, newer xenstoreds) is ignored: extra events are allowed.
      const [path, token] = atLeast(payload, 2);
      return { op: type === XsType.WATCH ? 'watch' : 'unwatch', path, token };
    }
    case XsType.TRANSACTION_START:
      return { op: 'transactionStart' };
    case XsType.TRANSACTION_END: {
      const s = one(payload);
      if (s !== 'T' && s !== 'F') throw inval("TRANSACTION_END takes 'T' or 'F'");
      return { op: 'transactionEnd', commit: s === 'T' };
    }
    case XsType.INTRODUCE: {
      const [d, , port] = atLeast(payload, 3);
      return { op: 'introduce', domid: domid(d), port: uint(port, 0xffffffff, 'event channel') };
    }
    case XsType.RELEASE:
      return { op: 'release', domid: domid(one(payload)) };
    case XsType.GET_DOMAIN_PATH:
      return { op: 'getDomainPath', domid: domid(one(payload)) };
    case XsType.IS_DOMAIN_INTRODUCED:
      return { op: 'isDomainIntroduced', domid: domid(one(payload)) };
    case XsType.RESUME:
      return { op: 'resume', domid: domid(one(payload)) };
    case XsType.SET_TARGET: {
      const [d, t] = atLeast(payload, 2);
      return { op: 'setTarget', domid: domid(d), target: domid(t) };
    }
    case XsType.RESET_WATCHES:
      return { op: 'resetWatches' };
    case XsType.CONTROL: {
      const [command, ...args] = atLeast(payload, 1);
      return { op: 'control', command, args };
    }
    case XsType.GET_QUOTA: {
      const { strings, rest } = splitStrings(payload, ENC);
      if (rest.length !== 0 || strings.length > 2) throw inval('GET_QUOTA takes [[domid\\0]quota\\0]');
      if (strings.length === 2) return { op: 'getQuota', domid: domid(strings[0]), name: strings[1] };
      return { op: 'getQuota', domid: undefined, name: strings[0] };
    }
    case XsType.SET_QUOTA: {
      const { strings, rest } = splitStrings(payload, ENC);
      if (rest.length !== 0 || strings.length < 2 || strings.length > 3) {
        throw inval('SET_QUOTA takes [domid\\0]quota\\0value\\0');
      }
      const value = uint(strings[strings.length - 1], 0x7fffffff, 'quota value');
      if (strings.length === 3) return { op: 'setQuota', domid: domid(strings[0]), name: strings[1], value };
      return { op: 'setQuota', domid: undefined, name: strings[0], value };
    }
    default:
      // WATCH_EVENT and ERROR are replies only; 20 (RESTRICT) was removed; features unsupported.
      throw new XsError('ENOSYS', `unsupported message type ${type}`);
  }
}

/** Types only dom0 may send (xenstored's XS_FLAG_PRIV). */
export const PRIVILEGED_TYPES: ReadonlySet<number> = new Set([
  XsType.CONTROL,
  XsType.INTRODUCE,
  XsType.RELEASE,
  XsType.IS_DOMAIN_INTRODUCED,
  XsType.RESUME,
  XsType.SET_TARGET,
  XsType.GET_QUOTA,
  XsType.SET_QUOTA,
]);

/** Types that ignore the header's transaction id (xenstored's XS_FLAG_NOTID). */
export const NO_TX_TYPES: ReadonlySet<number> = new Set([XsType.WATCH, XsType.UNWATCH]);
