// Opens a target with the driver its spec names: raw files and block devices, rbd through
// librbd, nbd exports, and image formats through a supervised qemu-storage-daemon over NBD.
import { StorageError } from './errors';
import { openNbdImage } from './nbd';
import type { BlockImage, OpenImageOptions } from './port';
import { openQsdImage, type QsdSupervisor } from './qsd';
import { openRawImage } from './raw';
import { openRbdImage } from './rbd';
import { parseTarget, type TargetSpec } from './target';

/** pino-like: what the drivers log (one line per fault, never one per request). */
export interface StorageLog {
  info(obj: object, msg: string): void;
  warn(obj: object, msg: string): void;
  error(obj: object, msg: string): void;
}

export interface StorageDeps {
  readonly log: StorageLog;
  /** Serves qcow2, vhdx, vmdk and vpc images; absent: those targets are refused. */
  readonly qsd?: QsdSupervisor;
  /** How long lost storage (an NBD server, a Ceph cluster) may stall requests before they fail. */
  readonly timeoutMs?: number;
  /** Where the rbd driver records which Ceph client holds an image (one file per image). */
  readonly rbdOwnerFile?: (spec: Extract<TargetSpec, { driver: 'rbd' }>) => string;
}

/** Opens the target `text` (params' canonical text); errors are StorageErrors of one line. */
export async function openTarget(text: string, opts: OpenImageOptions, deps: StorageDeps): Promise<BlockImage> {
  const parsed = parseTarget(text);
  if (!parsed.ok) throw new StorageError('EINVAL', parsed.message, text);
  const spec = parsed.value;
  const common = { timeoutMs: deps.timeoutMs, log: deps.log };
  switch (spec.driver) {
    case 'raw':
      return openRawImage(spec.path, opts);
    case 'nbd':
      return openNbdImage(spec, { ...opts, ...common });
    case 'rbd':
      return openRbdImage(spec, { ...opts, ...common, ownerFile: deps.rbdOwnerFile?.(spec) });
    case 'qsd': {
      const supervisor = deps.qsd;
      if (!supervisor) throw new StorageError('EOPNOTSUPP', `${spec.format} images need qemu-storage-daemon, which this daemon was started without`, text);
      return openQsdImage(spec, opts, { supervisor, openNbd: (nbd, o) => openNbdImage(nbd, { ...o, ...common, name: text }) });
    }
  }
}
