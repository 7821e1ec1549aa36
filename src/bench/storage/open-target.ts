// Opens a target spec with the driver that serves it, as the daemon will: a raw file, an NBD
// export (also what a qemu-storage-daemon serves qcow2 through), a Ceph RBD image. Used by the
// storage bench in both processes: the guest side (size and features) and the dataplane child.
import type { BlockImage, OpenImageOptions } from '../../io/storage/port';
import { openNbdImage } from '../../io/storage/nbd';
import { openRawImage } from '../../io/storage/raw';
import { openRbdImage } from '../../io/storage/rbd';
import { parseTarget } from '../../io/storage/target';

export async function openBenchTarget(text: string, opts: OpenImageOptions = {}): Promise<BlockImage> {
  const parsed = parseTarget(text);
  if (!parsed.ok) throw new Error(parsed.message);
  const spec = parsed.value;
  switch (spec.driver) {
    case 'raw':
      return openRawImage(spec.path, opts);
    case 'nbd':
      return openNbdImage(spec, opts);
    case 'rbd':
      return openRbdImage(spec, opts);
    case 'qsd':
      throw new Error(`${spec.format} images are measured through the NBD export of their qemu-storage-daemon`);
  }
}
