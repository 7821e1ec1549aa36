// Driver 'qsd': the image is served by a supervised qemu-storage-daemon and read and written
// over NBD on its unix socket. close() only disconnects (the daemon keeps serving, for the next
// xenblkd too); retire() also stops the daemon (the disk is gone for good).
import type { BlockImage, OpenImageOptions } from '../port';
import { formatTarget, type TargetSpec } from '../target';
import { qsdId, type QsdTarget } from './command';
import type { QsdSupervisor } from './supervisor';

export type NbdTarget = Extract<TargetSpec, { driver: 'nbd' }>;

export interface OpenQsdDeps {
  readonly supervisor: QsdSupervisor;
  readonly openNbd: (nbd: NbdTarget, opts: OpenImageOptions) => Promise<BlockImage>;
}

export async function openQsdImage(spec: QsdTarget, opts: OpenImageOptions, deps: OpenQsdDeps): Promise<BlockImage> {
  const { supervisor } = deps;
  const readOnly = opts.readOnly ?? false;
  const wasRunning = supervisor.has(qsdId(formatTarget(spec)));
  const record = await supervisor.ensure(spec, readOnly);
  let nbd: BlockImage;
  try {
    nbd = await deps.openNbd({ driver: 'nbd', transport: 'unix', path: record.socket, exportName: record.id }, { ...opts, readOnly });
  } catch (e) {
    // A daemon started for this open alone would serve nobody.
    if (!wasRunning) await supervisor.stop(record.id).catch(() => undefined);
    throw e;
  }
  return new QsdImage(formatTarget(spec), record.id, nbd, supervisor);
}

/** The NBD image under the qsd name; every call goes straight to it (bound once). */
class QsdImage implements BlockImage {
  readonly driver = 'qsd' as const;
  readonly read: BlockImage['read'];
  readonly write: BlockImage['write'];
  readonly flush: BlockImage['flush'];
  readonly discard: BlockImage['discard'];
  readonly writeZeroes?: BlockImage['writeZeroes'];
  readonly plug?: BlockImage['plug'];
  readonly unplug?: BlockImage['unplug'];
  readonly onResize?: BlockImage['onResize'];

  constructor(
    readonly path: string,
    private readonly id: string,
    private readonly nbd: BlockImage,
    private readonly supervisor: QsdSupervisor,
  ) {
    this.read = nbd.read.bind(nbd);
    this.write = nbd.write.bind(nbd);
    this.flush = nbd.flush.bind(nbd);
    this.discard = nbd.discard.bind(nbd);
    if (nbd.writeZeroes) this.writeZeroes = nbd.writeZeroes.bind(nbd);
    if (nbd.plug) this.plug = nbd.plug.bind(nbd);
    if (nbd.unplug) this.unplug = nbd.unplug.bind(nbd);
    if (nbd.onResize) this.onResize = nbd.onResize.bind(nbd);
  }

  get capabilities() {
    return this.nbd.capabilities;
  }
  get sizeBytes() {
    return this.nbd.sizeBytes;
  }
  get readOnly() {
    return this.nbd.readOnly;
  }
  get sectorSize() {
    return this.nbd.sectorSize;
  }
  get physicalSectorSize() {
    return this.nbd.physicalSectorSize;
  }
  get discardSupport() {
    return this.nbd.discardSupport;
  }
  get direct() {
    return this.nbd.direct;
  }

  refreshSize(): Promise<number> {
    return this.nbd.refreshSize();
  }

  close(): Promise<void> {
    return this.nbd.close();
  }

  async retire(): Promise<void> {
    await this.nbd.close();
    await this.supervisor.stop(this.id);
  }
}
