// Opening an RBD image: connect to the cluster, open the image, take its exclusive lock over
// from this daemon's dead previous incarnation (owner.ts), learn the capabilities. Every call
// that may wait for the network runs on a worker thread (callAsync); every failure is a
// one-line StorageError and undoes what was done before it.
import koffi = require('koffi');
import { errnoName } from '../../libc';
import { StorageError } from '../errors';
import type { DiscardSupport, OpenImageOptions, StorageCapabilities } from '../port';
import { formatTarget, type TargetSpec } from '../target';
import { RbdImageHandle, type RbdImage, type RbdLogger, type RbdTakeover } from './image';
import {
  callAsync,
  rbdLib,
  RBD_FEATURE_EXCLUSIVE_LOCK,
  RBD_IMAGE_INFO_SIZE,
  RBD_LOCK_MODE_EXCLUSIVE,
  type RbdLib,
} from './lib';
import { readOwner, writeOwner } from './owner';

export type RbdTarget = Extract<TargetSpec, { driver: 'rbd' }>;

export interface RbdOptions {
  /** Where this daemon records which Ceph client holds the image (in its state folder). */
  ownerFile?: string;
  /**
   * How long a lost cluster stalls I/O before it fails with EIO, and how long connecting may
   * take (rados_osd_op_timeout, rados_mon_op_timeout, client_mount_timeout). Default 60000.
   */
  timeoutMs?: number;
  log?: RbdLogger;
  /** Library file names (tests: a missing library). */
  radosLibrary?: string;
  rbdLibrary?: string;
}

export const DEFAULT_RBD_TIMEOUT_MS = 60_000;
/** The largest read or write handed to librbd in one call (it splits at objects itself). */
const MAX_TRANSFER = 4 * 1024 * 1024;
const ENOENT = 2;
const ETIMEDOUT = 110;

class Undo {
  private readonly steps: (() => unknown)[] = [];
  push(step: () => unknown): void {
    this.steps.push(step);
  }
  async run(): Promise<void> {
    for (const step of this.steps.reverse()) {
      try {
        await step();
      } catch {
        // Undoing a failed open: the first error is the one reported.
      }
    }
  }
}

function confGet(lib: RbdLib, cluster: unknown, option: string): string | null {
  const buf = Buffer.alloc(256);
  if ((lib.confGet(cluster, option, buf, buf.length) as number) < 0) return null;
  const end = buf.indexOf(0);
  return buf.subarray(0, end < 0 ? buf.length : end).toString();
}

export async function openRbdImage(spec: RbdTarget, opts: OpenImageOptions & RbdOptions = {}): Promise<RbdImage> {
  const path = formatTarget(spec);
  const lib = rbdLib(opts.radosLibrary, opts.rbdLibrary);
  const log = opts.log ?? null;
  const timeoutMs = opts.timeoutMs ?? DEFAULT_RBD_TIMEOUT_MS;
  // A snapshot is read-only by nature.
  const readOnly = opts.readOnly === true || spec.snap !== null;
  const imageName = `${spec.pool}/${spec.namespace === null ? '' : `${spec.namespace}/`}${spec.image}`;
  const fail = (code: string, message: string): never => {
    throw new StorageError(code, `image ${path}: ${message}`, path);
  };
  const undo = new Undo();
  try {
    const out: unknown[] = [null];
    const clientName = `client.${spec.id ?? 'admin'}`;
    let rc = lib.create2(out, 'ceph', clientName, 0) as number;
    if (rc < 0) fail(errnoName(-rc), `rados_create2 for ${clientName} failed (${errnoName(-rc)})`);
    const cluster = out[0];
    undo.push(() => callAsync(lib.shutdown, cluster));

    rc = (await callAsync<number>(lib.confReadFile, cluster, spec.conf)) as number;
    if (rc < 0) {
      if (spec.conf !== null) fail(errnoName(-rc), `Ceph configuration ${spec.conf} cannot be read (${errnoName(-rc)})`);
      if (spec.options.mon_host === undefined) fail('ENOENT', 'no Ceph configuration found: give conf= or mon_host=');
    }
    const seconds = String(Math.max(1, Math.ceil(timeoutMs / 1000)));
    const settings: [string, string][] = [
      ['client_mount_timeout', seconds],
      ['rados_mon_op_timeout', seconds],
      ['rados_osd_op_timeout', seconds],
      ...Object.entries(spec.options),
    ];
    for (const [key, value] of settings) {
      rc = lib.confSet(cluster, key, value) as number;
      if (rc < 0) fail('EINVAL', `Ceph option ${key}=${value} refused (${errnoName(-rc)})`);
    }

    rc = await callAsync<number>(lib.connect, cluster);
    if (rc < 0) {
      const mons = confGet(lib, cluster, 'mon_host') ?? 'mon_host unset';
      if (-rc === ETIMEDOUT) fail('ETIMEDOUT', `Ceph monitors (${mons}) did not answer within ${seconds} s`);
      if (rc === -1 || -rc === 13) fail('EACCES', `Ceph refused ${clientName} (${errnoName(-rc)}): check its key and caps`);
      fail(errnoName(-rc), `cannot connect to the Ceph monitors (${mons}): ${errnoName(-rc)}`);
    }

    rc = await callAsync<number>(lib.ioctxCreate, cluster, spec.pool, out);
    if (rc < 0) fail(errnoName(-rc), -rc === ENOENT ? `pool ${spec.pool} not found` : `pool ${spec.pool} cannot be used (${errnoName(-rc)})`);
    const ioctx = out[0];
    undo.push(() => lib.ioctxDestroy(ioctx));
    if (spec.namespace !== null) lib.ioctxSetNamespace(ioctx, spec.namespace);

    rc = await callAsync<number>(readOnly ? lib.openReadOnly : lib.open, ioctx, spec.image, out, spec.snap);
    if (rc < 0) {
      const name = errnoName(-rc);
      if (-rc === ENOENT) fail('ENOENT', spec.snap === null ? `rbd image ${imageName} not found` : `rbd image ${imageName} or its snapshot ${spec.snap} not found`);
      if (name === 'EACCES' || name === 'EPERM') fail('EACCES', `permission denied opening ${imageName} as ${clientName} (${readOnly ? 'read-only' : 'read-write'})`);
      fail(name, `rbd image ${imageName} cannot be opened (${name})`);
    }
    const image = out[0];
    undo.push(() => callAsync(lib.close, image));

    const info = Buffer.alloc(RBD_IMAGE_INFO_SIZE);
    rc = await callAsync<number>(lib.stat, image, info, RBD_IMAGE_INFO_SIZE);
    if (rc < 0) fail(errnoName(-rc), `rbd_stat failed (${errnoName(-rc)})`);
    const rawSize = Number(info.readBigUInt64LE(0));
    const objectSize = Number(info.readBigUInt64LE(8));
    const features: unknown[] = [0n];
    rc = await callAsync<number>(lib.getFeatures, image, features);
    if (rc < 0) fail(errnoName(-rc), `rbd_get_features failed (${errnoName(-rc)})`);
    const exclusiveLock = (BigInt(features[0] as bigint) & RBD_FEATURE_EXCLUSIVE_LOCK) !== 0n;

    const addrs: unknown[] = [null];
    rc = lib.getAddrs(cluster, addrs) as number;
    const clientAddress = rc < 0 ? '' : String(addrs[0]);
    const clientId = `client.${String(lib.getInstanceId(cluster))}`;

    let takeover: RbdTakeover = 'none';
    let lockOwnerAtOpen: string | null = null;
    if (exclusiveLock && !readOnly) {
      lockOwnerAtOpen = await lockOwner(lib, image);
      if (lockOwnerAtOpen !== null) {
        const previous = opts.ownerFile ? await readOwner(opts.ownerFile) : null;
        if (previous !== null && previous.address === lockOwnerAtOpen && previous.image === imageName) {
          // This daemon's previous incarnation, dead: break (and blocklist) its lock now
          // rather than stall the first write for the watch timeout.
          rc = await callAsync<number>(lib.lockBreak, image, RBD_LOCK_MODE_EXCLUSIVE, lockOwnerAtOpen);
          if (rc < 0 && -rc !== ENOENT) fail(errnoName(-rc), `breaking the lock of this daemon's previous client ${lockOwnerAtOpen} failed (${errnoName(-rc)})`);
          takeover = 'broke-dead-owner';
          log?.info(
            { image: path, owner: lockOwnerAtOpen, client: previous.client, pid: previous.pid },
            'rbd exclusive lock of this daemon\'s killed previous client broken and blocklisted',
          );
        } else {
          takeover = 'cooperative';
          log?.info({ image: path, owner: lockOwnerAtOpen }, 'rbd exclusive lock held by another client: librbd asks it to hand over');
        }
      }
    }
    if (opts.ownerFile && !readOnly) {
      await writeOwner(opts.ownerFile, {
        address: clientAddress,
        client: clientId,
        image: imageName,
        pid: process.pid,
        at: new Date().toISOString(),
      });
    }

    const cache = (confGet(lib, cluster, 'rbd_cache') ?? 'true') === 'true';
    const capabilities: StorageCapabilities = {
      volatileCache: cache,
      // Without librbd's cache a write completes once the OSDs have committed it.
      fua: !cache,
      writeZeroes: lib.aioWriteZeroes !== null && !readOnly,
      maxTransferBytes: MAX_TRANSFER,
      bufferAlignment: 1,
    };
    // librbd drops the parts of a discard that are not aligned to rbd_discard_granularity_bytes
    // (64 KiB by default): offer that granularity so the guest's discards are not lost.
    const granularity = Math.max(4096, Number(confGet(lib, cluster, 'rbd_discard_granularity_bytes') ?? 65536) || 65536);
    const discard: DiscardSupport | null = readOnly ? null : { granularity, alignment: 0, secure: false };

    const handle = new RbdImageHandle(
      { lib, cluster, ioctx, image },
      {
        path,
        readOnly,
        sizeBytes: Math.floor(rawSize / 512) * 512,
        objectSize,
        exclusiveLock,
        capabilities,
        discard,
        takeover,
        lockOwnerAtOpen,
        clientAddress,
        clientName: clientId,
        timeoutMs,
        ownerFile: opts.ownerFile ?? null,
        log,
      },
    );
    try {
      await handle.start();
    } catch (e) {
      await handle.close().catch(() => undefined);
      throw e;
    }
    return handle;
  } catch (e) {
    await undo.run();
    if (e instanceof StorageError) throw e;
    throw new StorageError('EIO', `image ${path} cannot be opened: ${(e as Error).message.split('\n')[0]}`, path);
  }
}

/** The exclusive lock's current owner (an address), or null when nobody holds it. */
async function lockOwner(lib: RbdLib, image: unknown): Promise<string | null> {
  const mode: unknown[] = [0];
  const owners = new BigUint64Array(4);
  const count: unknown[] = [4];
  const rc = await callAsync<number>(lib.lockGetOwners, image, mode, owners, count);
  if (-rc === ENOENT) return null;
  if (rc < 0) throw new StorageError(errnoName(-rc), `rbd_lock_get_owners failed (${errnoName(-rc)})`);
  const n = Number(count[0]);
  let first: string | null = null;
  if (n > 0 && owners[0] !== 0n) first = koffi.decode(owners, 0, 'const char *') as string;
  lib.lockGetOwnersCleanup(owners, n);
  return first;
}

