// Opens a target spec with the driver that serves it, as the daemon will: a raw file, an NBD
// export (also what a qemu-storage-daemon serves qcow2 through), a Ceph RBD image. Used by the
// storage bench in both processes: the guest side (size and features) and the dataplane child.
import type { BlockImage, OpenImageOptions } from '../../io/storage/port';
import { openRawImage } from '../../io/storage/raw';
import { openRbdImage } from '../../io/storage/rbd';
import { parseTarget } from '../../io/storage/target';

/** A driver module of this build, or one line saying it is not part of it. */
function driverModule<T>(name: string): T {
  try {
    return require(`../../io/storage/${name}`) as T;
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'MODULE_NOT_FOUND') throw new Error(`the ${name} storage driver is not part of this build`);
    throw e;
  }
}

type Opener = (spec: never, opts: OpenImageOptions) => Promise<BlockImage>;

export async function openBenchTarget(text: string, opts: OpenImageOptions = {}): Promise<BlockImage> {
  const parsed = parseTarget(text);
  if (!parsed.ok) throw new Error(parsed.message);
  const spec = parsed.value;
  switch (spec.driver) {
    case 'raw':
      return openRawImage(spec.path, opts);
    case 'nbd':
      return (driverModule<{ openNbdImage: Opener }>('nbd').openNbdImage as (s: typeof spec, o: OpenImageOptions) => Promise<BlockImage>)(spec, opts);
    case 'rbd':
      return openRbdImage(spec, opts);
    case 'qsd':
      throw new Error(`${spec.format} images are measured through the NBD export of their qemu-storage-daemon`);
  }
}
