// Target specs: where a disk lives, in the spellings the toolstack already uses (libxl's params
// with its format prefix, QEMU's rbd: and nbd: filenames, nbd:// URIs). Pure: no I/O here. The
// text is toolstack input (untrusted): every field is bounded and checked, errors are one line.

/** Image formats served through qemu-storage-daemon; libxl says "vhd" for QEMU's "vpc". */
export const QSD_FORMATS = ['qcow2', 'vhdx', 'vmdk', 'vpc'] as const;
export type QsdFormat = (typeof QSD_FORMATS)[number];

export type TargetSpec =
  | { readonly driver: 'raw'; readonly path: string }
  | {
      readonly driver: 'rbd';
      readonly pool: string;
      readonly namespace: string | null;
      readonly image: string;
      readonly snap: string | null;
      /** Ceph client id (the name without "client."); null: librados' default (admin). */
      readonly id: string | null;
      /** ceph.conf path; null: librados' default search. */
      readonly conf: string | null;
      /** Other key=value pairs: Ceph configuration options set on the cluster handle. */
      readonly options: Readonly<Record<string, string>>;
    }
  | { readonly driver: 'nbd'; readonly transport: 'unix'; readonly path: string; readonly exportName: string }
  | { readonly driver: 'nbd'; readonly transport: 'tcp'; readonly host: string; readonly port: number; readonly exportName: string }
  | { readonly driver: 'qsd'; readonly format: QsdFormat; readonly path: string };

export type TargetResult = { readonly ok: true; readonly value: TargetSpec } | { readonly ok: false; readonly message: string };

/** libxl's format names (libxl__device_disk_string_of_format) and their aliases. */
const RAW_PREFIXES = new Set(['raw', 'aio', 'file', 'phy']);
const FORMAT_ALIASES: Readonly<Record<string, QsdFormat>> = { qcow2: 'qcow2', vhdx: 'vhdx', vmdk: 'vmdk', vpc: 'vpc', vhd: 'vpc' };
const MAX_TARGET = 4096;
const NBD_DEFAULT_PORT = 10809;
/** NBD export names are at most 4096 bytes (NBD protocol, "Export name"). */
const MAX_EXPORT_NAME = 4096;
/** Ceph pool, namespace, image and snapshot names (librbd's RBD_MAX_IMAGE_NAME_SIZE is 96). */
const MAX_CEPH_NAME = 255;
const CEPH_NAME = /^[^\s/@:\\\0]+$/;
const OPTION_KEY = /^[a-z][a-z0-9_ ]*$/;
const HOST = /^(?:[A-Za-z0-9.-]+|\[[0-9A-Fa-f:.]+\])$/;

const bad = (message: string): TargetResult => ({ ok: false, message });
const good = (value: TargetSpec): TargetResult => ({ ok: true, value });

/** Printable, bounded: for error messages about toolstack input. */
function show(text: string): string {
  const printable = text.replace(/[^\x20-\x7e]/g, '?');
  return `'${printable.length > 60 ? `${printable.slice(0, 60)}...` : printable}'`;
}

/**
 * Splits at unescaped delimiter characters, removing the backslash escapes (QEMU's rbd
 * filename syntax: "\:" is a colon inside a name or value).
 */
function splitEscaped(text: string, delim: string, limit = Infinity): string[] {
  const parts: string[] = [];
  let cur = '';
  for (let i = 0; i < text.length; i++) {
    const c = text[i]!;
    if (c === '\\' && i + 1 < text.length) {
      cur += text[++i];
    } else if (c === delim && parts.length + 1 < limit) {
      parts.push(cur);
      cur = '';
    } else {
      cur += c;
    }
  }
  parts.push(cur);
  return parts;
}

/** Splits at the first unescaped delimiter, keeping escapes in the rest (parsed again later). */
function splitFirst(text: string, delim: string): [string, string | null] {
  for (let i = 0; i < text.length; i++) {
    if (text[i] === '\\') i++;
    else if (text[i] === delim) return [text.slice(0, i), text.slice(i + 1)];
  }
  return [text, null];
}

function unescape(text: string): string {
  return splitEscaped(text, '\0').join('');
}

function cephName(what: string, text: string): string | null {
  if (text.length === 0) return `${what} name is empty`;
  if (text.length > MAX_CEPH_NAME) return `${what} name is longer than ${MAX_CEPH_NAME} characters`;
  if (!CEPH_NAME.test(text)) return `${what} name ${show(text)} has a character Ceph does not allow`;
  return null;
}

function absolutePath(what: string, path: string): string | null {
  if (!path.startsWith('/')) return `${what} is not an absolute path: ${show(path)}`;
  if (path.includes('\0')) return `${what} contains a NUL byte`;
  return null;
}

/** rbd:POOL[/NAMESPACE]/IMAGE[@SNAP][:KEY=VALUE...] as QEMU's rbd driver reads it. */
function parseRbd(rest: string): TargetResult {
  const [location, optionText] = splitFirst(rest, ':');
  const [names, snapText] = splitFirst(location, '@');
  const parts = splitEscaped(names, '/');
  if (parts.length < 2 || parts.length > 3) return bad(`rbd target ${show(rest)} is not POOL/IMAGE or POOL/NAMESPACE/IMAGE`);
  const pool = parts[0]!;
  const namespace = parts.length === 3 ? parts[1]! : null;
  const image = parts[parts.length - 1]!;
  const snap = snapText === null ? null : unescape(snapText);
  for (const [what, name] of [['pool', pool], ['namespace', namespace], ['image', image], ['snapshot', snap]] as const) {
    if (name === null) continue;
    const why = cephName(`rbd ${what}`, name);
    if (why !== null) return bad(why);
  }
  let id: string | null = null;
  let conf: string | null = null;
  const options: Record<string, string> = {};
  if (optionText !== null) {
    for (const pair of splitEscaped(optionText, ':').map((p) => p)) {
      // splitEscaped removed the escapes: re-split each pair at its first '='.
      const eq = pair.indexOf('=');
      if (eq <= 0) return bad(`rbd option ${show(pair)} is not KEY=VALUE`);
      const key = pair.slice(0, eq);
      const value = pair.slice(eq + 1);
      if (!OPTION_KEY.test(key)) return bad(`rbd option name ${show(key)} is not a Ceph option name`);
      if (value.includes('\0') || value.length > MAX_TARGET) return bad(`rbd option ${key} has an invalid value`);
      if (key === 'id') id = value;
      else if (key === 'conf') {
        const why = absolutePath('rbd conf', value);
        if (why !== null) return bad(why);
        conf = value;
      } else if (key === 'keyring' || key === 'mon_host' || key === 'auth_supported' || key === 'client_mount_timeout' || key.startsWith('rbd_') || key.startsWith('rados_') || key.startsWith('ms_') || key.startsWith('log_')) {
        options[key] = value;
      } else {
        return bad(`rbd option ${show(key)} is not one xenblkd passes to Ceph (id, conf, keyring, mon_host, rbd_*, rados_*, ms_*, log_*)`);
      }
    }
  }
  if (id !== null && cephName('rbd client id', id) !== null) return bad(`rbd client id ${show(id)} is not a Ceph name`);
  return good({ driver: 'rbd', pool, namespace, image, snap, id, conf, options });
}

function exportName(name: string): string | null {
  if (Buffer.byteLength(name) > MAX_EXPORT_NAME) return `nbd export name is longer than ${MAX_EXPORT_NAME} bytes`;
  if (name.includes('\0')) return 'nbd export name contains a NUL byte';
  return null;
}

function port(text: string): number | null {
  if (!/^[0-9]{1,5}$/.test(text)) return null;
  const n = Number(text);
  return n >= 1 && n <= 65535 ? n : null;
}

/** nbd:unix:PATH[:exportname=NAME] and nbd:HOST:PORT[:exportname=NAME] (QEMU's legacy syntax). */
function parseNbdLegacy(rest: string): TargetResult {
  const EXPORT = ':exportname=';
  const at = rest.indexOf(EXPORT);
  const address = at < 0 ? rest : rest.slice(0, at);
  const name = at < 0 ? '' : rest.slice(at + EXPORT.length);
  const why = exportName(name);
  if (why !== null) return bad(why);
  if (address.startsWith('unix:')) {
    const path = address.slice('unix:'.length);
    const pathWhy = absolutePath('nbd socket', path);
    if (pathWhy !== null) return bad(pathWhy);
    return good({ driver: 'nbd', transport: 'unix', path, exportName: name });
  }
  const colon = address.lastIndexOf(':');
  if (colon <= 0) return bad(`nbd target ${show(rest)} is not unix:PATH or HOST:PORT`);
  const host = address.slice(0, colon);
  const p = port(address.slice(colon + 1));
  if (!HOST.test(host) || p === null) return bad(`nbd target ${show(rest)} is not unix:PATH or HOST:PORT`);
  return good({ driver: 'nbd', transport: 'tcp', host: host.replace(/^\[|\]$/g, ''), port: p, exportName: name });
}

/** nbd://HOST[:PORT]/[NAME] and nbd+unix:///[NAME]?socket=PATH (the NBD URI specification). */
function parseNbdUri(text: string): TargetResult {
  let url: URL;
  try {
    url = new URL(text);
  } catch {
    return bad(`nbd URI ${show(text)} is not a URI`);
  }
  const name = decodeURIComponent(url.pathname.replace(/^\//, ''));
  const why = exportName(name);
  if (why !== null) return bad(why);
  if (url.protocol === 'nbd+unix:') {
    const socket = url.searchParams.get('socket');
    if (socket === null) return bad(`nbd URI ${show(text)} has no socket= parameter`);
    const pathWhy = absolutePath('nbd socket', socket);
    if (pathWhy !== null) return bad(pathWhy);
    return good({ driver: 'nbd', transport: 'unix', path: socket, exportName: name });
  }
  if (url.protocol !== 'nbd:') return bad(`nbd URI ${show(text)}: only nbd:// and nbd+unix:// are served (no TLS)`);
  const p = url.port === '' ? NBD_DEFAULT_PORT : port(url.port);
  if (url.hostname === '' || p === null) return bad(`nbd URI ${show(text)} has no valid host and port`);
  return good({ driver: 'nbd', transport: 'tcp', host: url.hostname.replace(/^\[|\]$/g, ''), port: p, exportName: name });
}

/** The part after any format prefix: a protocol target or an absolute path. */
function parseLocation(text: string): TargetResult {
  if (text.startsWith('rbd:')) return parseRbd(text.slice(4));
  if (text.startsWith('nbd://') || text.startsWith('nbd+unix://')) return parseNbdUri(text);
  if (text.startsWith('nbd:')) return parseNbdLegacy(text.slice(4));
  const why = absolutePath('image', text);
  if (why !== null) return bad(why);
  return good({ driver: 'raw', path: text });
}

/**
 * Parses a target: the backend's params key (libxl writes FORMAT:TARGET for qdisk, the bare
 * path for vbd) or `xenblkd attach --image`. `format` is a separate format name where the caller
 * has one (it must agree with any prefix).
 */
export function parseTarget(text: string, format?: string): TargetResult {
  if (text.length === 0) return bad('the target is empty');
  if (text.length > MAX_TARGET) return bad(`the target is longer than ${MAX_TARGET} characters`);
  let rest = text;
  let fmt = format;
  const prefix = /^([a-z][a-z0-9]*):/.exec(text);
  if (prefix && prefix[1] !== 'rbd' && prefix[1] !== 'nbd' && !text.startsWith('nbd+unix:')) {
    const name = prefix[1]!;
    if (!RAW_PREFIXES.has(name) && !(name in FORMAT_ALIASES)) {
      return bad(`image format ${show(name)} is not served (raw, qcow2, vhdx, vmdk, vpc/vhd; rbd: and nbd: targets)`);
    }
    if (fmt !== undefined && fmt !== name && !(RAW_PREFIXES.has(fmt) && RAW_PREFIXES.has(name))) {
      return bad(`format ${show(fmt)} disagrees with the target's prefix ${show(name)}`);
    }
    fmt = name;
    rest = text.slice(prefix[0].length);
  }
  const location = parseLocation(rest);
  if (!location.ok || fmt === undefined || RAW_PREFIXES.has(fmt)) return location;
  const qsdFormat = FORMAT_ALIASES[fmt];
  if (qsdFormat === undefined) return bad(`image format ${show(fmt)} is not served (raw, qcow2, vhdx, vmdk, vpc/vhd)`);
  if (location.value.driver !== 'raw') return bad(`format ${fmt} is served from a file or block device only, not over ${location.value.driver}`);
  return good({ driver: 'qsd', format: qsdFormat, path: location.value.path });
}

/** The canonical text of a target: parseTarget(formatTarget(t)) equals t. */
export function formatTarget(t: TargetSpec): string {
  const esc = (s: string) => s.replace(/[\\:/@]/g, (c) => `\\${c}`);
  switch (t.driver) {
    case 'raw':
      return t.path;
    case 'qsd':
      return `${t.format}:${t.path}`;
    case 'nbd':
      if (t.transport === 'unix') return `nbd:unix:${t.path}${t.exportName ? `:exportname=${t.exportName}` : ''}`;
      return `nbd:${t.host.includes(':') ? `[${t.host}]` : t.host}:${t.port}${t.exportName ? `:exportname=${t.exportName}` : ''}`;
    case 'rbd': {
      let s = `rbd:${esc(t.pool)}/${t.namespace !== null ? `${esc(t.namespace)}/` : ''}${esc(t.image)}`;
      if (t.snap !== null) s += `@${esc(t.snap)}`;
      if (t.id !== null) s += `:id=${esc(t.id)}`;
      if (t.conf !== null) s += `:conf=${esc(t.conf)}`;
      for (const [k, v] of Object.entries(t.options)) s += `:${k}=${esc(v)}`;
      return s;
    }
  }
}

/** A short name for logs, ls and the dashboard: "rbd", "nbd", "qcow2", "raw". */
export function targetKind(t: TargetSpec): string {
  return t.driver === 'qsd' ? t.format : t.driver;
}
