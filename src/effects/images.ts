// The images this daemon has open, one per device: realize opens it, the connection uses it,
// destroying the device retires it (a storage daemon serving it stops). A daemon that stops or
// dies only closes them: after a restart the connection opens them again.
import type { BlockImage, OpenImageOptions } from '../io/storage/port';

export type ImageOpener = (path: string, opts: OpenImageOptions) => Promise<BlockImage>;

export class ImageRegistry {
  private readonly images = new Map<string, Promise<BlockImage>>();

  constructor(private readonly open: ImageOpener) {}

  /** The device's image, opened once; a failed open is forgotten so that a later call retries. */
  get(key: string, path: string, opts: OpenImageOptions): Promise<BlockImage> {
    let image = this.images.get(key);
    if (!image) {
      image = this.open(path, opts);
      this.images.set(key, image);
      image.catch(() => {
        if (this.images.get(key) === image) this.images.delete(key);
      });
    }
    return image;
  }

  async close(key: string): Promise<void> {
    const image = this.images.get(key);
    if (!image) return;
    this.images.delete(key);
    await image.then((i) => i.close()).catch(() => undefined);
  }

  /** The device is gone for good: close the image and end what serves it (retire). */
  async retire(key: string): Promise<void> {
    const image = this.images.get(key);
    if (!image) return;
    this.images.delete(key);
    const opened = await image.catch(() => null);
    if (opened === null) return;
    await (opened.retire ? opened.retire() : opened.close());
  }

  async closeAll(): Promise<void> {
    await Promise.all([...this.images.keys()].map((k) => this.close(k)));
  }
}
