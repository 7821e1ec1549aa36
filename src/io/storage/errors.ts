// The one error type of the storage layer: opening an image, and I/O refused or failed.
// Shaped like NodeJS.ErrnoException (code = errno name) so IoCallback can carry it.

export class StorageError extends Error implements NodeJS.ErrnoException {
  constructor(
    /** errno name: ENOENT, EACCES, EROFS, EOPNOTSUPP, ERANGE, EIO... */
    readonly code: string,
    message: string,
    readonly path?: string,
  ) {
    super(message);
    this.name = 'StorageError';
  }
}

/** One line for a failed open, per errno. */
export function openErrorMessage(path: string, code: string | undefined, readOnly: boolean): string {
  switch (code) {
    case 'ENOENT':
      return `image ${path} not found`;
    case 'EACCES':
    case 'EPERM':
      return `image ${path}: permission denied (opening ${readOnly ? 'read-only' : 'read-write'})`;
    case 'EROFS':
      return `image ${path} is on a read-only file system: attach it read-only`;
    case 'EISDIR':
      return `image ${path} is a directory`;
    case 'EBUSY':
      return `image ${path} is in use (mounted or opened exclusively elsewhere)`;
    case 'ENOTDIR':
      return `image ${path}: a component of the path is not a directory`;
    case 'ELOOP':
      return `image ${path}: too many symbolic links`;
    default:
      return `image ${path} cannot be opened: ${code ?? 'unknown error'}`;
  }
}
