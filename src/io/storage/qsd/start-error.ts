// A daemon that exits at start says why in its log: one line of it becomes the StorageError.
import { StorageError } from '../errors';

const PREFIX = 'qemu-storage-daemon: ';
const MAX_LINE = 300;

/** The daemon's reason from the log text it wrote during this start; null if it wrote none. */
export function reasonFromLog(text: string): string | null {
  const lines = text.split('\n').map((l) => l.trim()).filter((l) => l.length > 0);
  const at = lines.map((l) => l.startsWith(PREFIX)).lastIndexOf(true);
  if (at < 0) return lines.length > 0 ? lines[lines.length - 1]!.slice(0, MAX_LINE) : null;
  // Drop the echo of the option that failed ("--blockdev driver=...: "), keep QEMU's words.
  let reason = lines[at]!.slice(PREFIX.length).replace(/^--[a-z-]+ \S*: /, '');
  const hint = lines[at + 1];
  if (hint !== undefined && !hint.startsWith(PREFIX)) reason += ` (${hint.replace(/[.?]$/, '')})`;
  return reason.slice(0, MAX_LINE);
}

/** errno name for a start failure, from QEMU's wording. */
function codeOf(reason: string): string {
  if (/lock/i.test(reason)) return 'EBUSY';
  if (/No such file/i.test(reason)) return 'ENOENT';
  if (/Permission denied/i.test(reason)) return 'EACCES';
  if (/not in .* format|Unsupported|invalid|corrupt|header|magic|version/i.test(reason)) return 'EINVAL';
  return 'EIO';
}

export function startError(target: string, reason: string): StorageError {
  return new StorageError(codeOf(reason), `image ${target}: qemu-storage-daemon: ${reason}`, target);
}
