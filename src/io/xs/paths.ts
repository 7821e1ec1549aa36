// xenstore path rules (docs/misc/xenstore.txt): absolute paths start with '/', relative ones are
// taken relative to /local/domain/<domid>; characters are alphanumerics and -/_@; no doubled or
// trailing slashes; '@'-paths name special watches. Pure.
import { XENSTORE_ABS_PATH_MAX, XENSTORE_REL_PATH_MAX } from './wire';

const VALID_CHARS = /^[A-Za-z0-9\-/_@]*$/;
const LOCAL_DOMAIN_PREFIX = /^\/local\/domain\/\d{1,5}\//;

export const SPECIAL_PATHS = ['@introduceDomain', '@releaseDomain'] as const;
export type SpecialPath = (typeof SPECIAL_PATHS)[number];

export function domainPath(domid: number): string {
  return `/local/domain/${domid}`;
}

export function isSpecialPath(path: string): boolean {
  return path.startsWith('@');
}

export function isKnownSpecialPath(path: string): path is SpecialPath {
  return (SPECIAL_PATHS as readonly string[]).includes(path);
}

/** Absolute form of a path as sent by domain `domid` ('@' paths are left alone). */
export function canonicalize(path: string, domid: number): string {
  if (path.startsWith('/') || path.startsWith('@')) return path;
  return `${domainPath(domid)}/${path}`;
}

/**
 * Whether an absolute node path is well formed. Below /local/domain/<id>/ the part after that
 * prefix may be XENSTORE_REL_PATH_MAX long, as xenstored counts it; anything else is bounded by
 * XENSTORE_ABS_PATH_MAX.
 */
export function isValidNodePath(path: string): boolean {
  if (!path.startsWith('/')) return false;
  if (path.length > 1 && path.endsWith('/')) return false;
  if (path.includes('//')) return false;
  if (!VALID_CHARS.test(path)) return false;
  if (path.length > XENSTORE_ABS_PATH_MAX) return false;
  if (path.length <= XENSTORE_REL_PATH_MAX) return true;
  const m = LOCAL_DOMAIN_PREFIX.exec(path);
  const localOff = m ? m[0].length : 0;
  return path.length - localOff <= XENSTORE_REL_PATH_MAX;
}

/** Whether a watch path is acceptable: a valid node path (after canonicalization) or '@...'. */
export function isValidWatchPath(path: string): boolean {
  if (path.startsWith('@')) return path.length <= XENSTORE_REL_PATH_MAX && VALID_CHARS.test(path);
  return isValidNodePath(path);
}

/** Parent of a valid absolute path other than '/'. */
export function parentOf(path: string): string {
  const slash = path.lastIndexOf('/');
  return slash <= 0 ? '/' : path.slice(0, slash);
}

export function baseName(path: string): string {
  return path.slice(path.lastIndexOf('/') + 1);
}

export function joinPath(parent: string, name: string): string {
  return parent === '/' ? `/${name}` : `${parent}/${name}`;
}

/** Whether `child` is `parent` or lies below it (xenstore.txt's <child>/<parent> relation). */
export function isChildOrSelf(child: string, parent: string): boolean {
  if (parent === '/') return child.startsWith('/');
  if (!child.startsWith(parent)) return false;
  return child.length === parent.length || child.charCodeAt(parent.length) === 0x2f;
}

/** The path as the watcher named it: relative watches see paths relative to their domain. */
export function relativeTo(path: string, base: string): string {
  if (path === base) return '';
  return path.startsWith(base + '/') ? path.slice(base.length + 1) : path;
}
