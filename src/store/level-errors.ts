// What a LevelDB (or file system) error means for the store: corruption, or an I/O condition of the
// state folder (full, read-only, no permission, failing disk) that passes when the folder is fixed.
import { StoreError } from './events';

// LevelDB reports errno as strerror text ("IO error: <file>: No space left on device").
const ERRNO_TEXT: readonly [RegExp, string][] = [
  [/No space left on device/i, 'ENOSPC'],
  [/Read-only file system/i, 'EROFS'],
  [/Permission denied/i, 'EACCES'],
  [/Operation not permitted/i, 'EPERM'],
  [/(Disk )?quota exceeded/i, 'EDQUOT'],
  [/Input\/output error/i, 'EIO'],
  [/Too many open files/i, 'EMFILE'],
];

/** The errno name of an fs or LevelDB error, if it names one. */
export function errnoOf(err: unknown): string | undefined {
  const e = err as { code?: unknown; cause?: unknown; message?: unknown } | undefined;
  if (typeof e?.code === 'string' && /^E[A-Z]+$/.test(e.code)) return e.code;
  const text = messageOf(err);
  for (const [re, code] of ERRNO_TEXT) if (re.test(text)) return code;
  return undefined;
}

/** The innermost message (abstract-level wraps the binding's error as `cause`). */
function messageOf(err: unknown): string {
  let e = err as { message?: unknown; cause?: unknown } | undefined;
  const parts: string[] = [];
  for (let depth = 0; e && depth < 4; depth++) {
    if (typeof e.message === 'string') parts.push(e.message);
    e = e.cause as typeof e;
  }
  return parts.join(' / ');
}

function innermost(err: unknown): { code?: string; message: string } {
  let e = err as { message?: string; code?: string; cause?: unknown };
  while (e?.cause) e = e.cause as typeof e;
  return { code: e?.code, message: (e?.message ?? String(err)).split('\n')[0] };
}

/** Every LevelDB corruption is 'corrupt'; everything else the folder did is 'io' with its errno. */
export function classifyStoreError(err: unknown, dir: string, doing: string): StoreError {
  if (err instanceof StoreError) return err;
  const inner = innermost(err);
  const all = messageOf(err);
  if (inner.code === 'LEVEL_LOCKED') return new StoreError(`state folder ${dir} is in use by another xenblkd`, 'locked');
  if (inner.code === 'LEVEL_CORRUPTION' || /\bCorruption:/.test(all)) {
    return new StoreError(`state folder ${dir} is corrupt (${doing}): ${inner.message}`, 'corrupt');
  }
  const code = errnoOf(err);
  // A file the database refers to (the MANIFEST CURRENT names, a table) is gone, or shorter than
  // its index says (a read past its end: EINVAL): damage, not a folder condition.
  if (/IO error/.test(all) && /No such file or directory|Invalid argument/i.test(all)) {
    return new StoreError(`state folder ${dir} is corrupt (${doing}): ${inner.message}`, 'corrupt');
  }
  return new StoreError(`state folder ${dir}: cannot ${doing}: ${inner.message}`, 'io', code);
}
